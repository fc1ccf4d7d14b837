"""Trunk registration on a running engine: registers at start, refreshes before the registrar's
short expiry within the same binding (same Call-ID), reports it in /metrics, unregisters on
stop; a wrong password leaves the trunk 'failed' with the registrar's status."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from core.clock import FakeClock
from tests.integration.engine_harness import running_engine
from tests.netutil import free_port, wait_until
from tests.sipp import SippServer

pytestmark = [pytest.mark.sipp, pytest.mark.xdist_group("sipp")]
FIXTURES = Path(__file__).parent.parent / "fixtures" / "sipp"


async def _never(call) -> None:  # type: ignore[no-untyped-def]
    raise AssertionError("no calls in this test")


@pytest.mark.parametrize("password", ["regpw", "wrong"])
async def test_trunk_registers_refreshes_and_unregisters(tmp_path: Path, password: str) -> None:
    port = free_port()
    trunks = json.dumps([{"name": "carrier", "registrar": f"sip:127.0.0.1:{port}",
                          "username": "trunk", "password": password, "expires": 60}])
    async with SippServer(FIXTURES / "registrar_loop.xml", local_port=port, workdir=tmp_path,
                          extra=["-m", "1"]):
        clock = FakeClock()
        async with running_engine(tmp_path, lambda c: _never, clock=clock,
                                  IVR_SIP__TRUNKS=trunks) as engine:
            (reg,) = engine.registrations
            await wait_until(lambda: reg.state in ("registered", "failed"), 10, "registration")
            if password == "regpw":  # the registrar grants 2 s: the refresh is due at 80 %
                await clock.advance(1.7)
                await wait_until(lambda: reg.successes >= 2, 10, "the refresh")
            assert engine.metrics is not None
            shown = engine.metrics.render()
            state, successes, status = reg.state, reg.successes, reg.last_status
            assert reg.ids is not None
            call_id = reg.ids.call_id
        after_stop = (reg.state, reg.last_status)
    if password == "regpw":
        assert state == "registered" and status == 200
        assert successes >= 2, successes  # start + refresh(es), all in one SIPp call
        assert 'ivr_sip_trunk_registered{trunk="carrier"} 1' in shown
        assert after_stop == ("unregistered", 200)  # Expires: 0 accepted
        assert call_id
    else:
        assert state == "failed" and status == 403 and successes == 0
        assert 'ivr_sip_trunk_registered{trunk="carrier"} 0' in shown
