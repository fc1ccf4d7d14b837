"""Placing calls: an abandoned call is CANCELled while it rings (a bridge whose first leg hung up
must not leave the target ringing), and a call that rings out is recorded as no_answer."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from core.call import Call
from tests.integration.engine_harness import running_engine
from tests.netutil import free_port
from tests.sipp import SippServer

pytestmark = [pytest.mark.sipp, pytest.mark.xdist_group("sipp")]
FIXTURES = Path(__file__).parent.parent / "fixtures" / "sipp"


async def _never(call: Call) -> None:
    raise AssertionError("the call must not be answered")


@pytest.mark.parametrize("how", ["abandoned", "rang_out"])
async def test_ringing_call_is_cancelled(tmp_path: Path, how: str) -> None:
    port = free_port()
    async with running_engine(tmp_path, lambda c: _never) as engine, SippServer(
            FIXTURES / "uas_ring_expect_cancel.xml", local_port=port, workdir=tmp_path,
            extra=["-m", "1"]) as uas:
        assert engine.controller is not None
        loop = asyncio.get_running_loop()
        abandon: asyncio.Future[None] = loop.create_future()
        if how == "abandoned":
            loop.call_later(0.5, abandon.set_result, None)
        rec = await asyncio.wait_for(engine.controller.originate(
            f"sip:agent@127.0.0.1:{port}", _never, abandon=abandon,
            ring_timeout_s=60 if how == "abandoned" else 1.0), 15)
        assert uas.proc is not None
        await asyncio.wait_for(uas.proc.wait(), 10)
        result = uas.result()
    assert rec.disposition == "no_answer" and rec.answer_at is None
    assert result.successful == 1, result  # SIPp saw the CANCEL and our ACK of its 487


async def test_outbound_proxy_carries_the_call(tmp_path: Path) -> None:
    """sip.outbound_proxy: the INVITE for sip:agent@127.0.0.2 (nobody listens there) goes to
    the proxy with its Request-URI unchanged; the in-dialog BYE follows the proxy too."""
    port = free_port()
    answered: list[bool] = []

    async def app(call: Call) -> None:
        answered.append(True)
        await call.hangup()

    async with SippServer(FIXTURES / "proxy_uas.xml", local_port=port, workdir=tmp_path,
                          extra=["-m", "1"]) as proxy:
        async with running_engine(tmp_path, lambda c: _never,
                                  IVR_SIP__OUTBOUND_PROXY=f"127.0.0.1:{port}") as engine:
            assert engine.controller is not None
            rec = await asyncio.wait_for(
                engine.controller.originate("sip:agent@127.0.0.2", app), 15)
            assert proxy.proc is not None
            await asyncio.wait_for(proxy.proc.wait(), 10)
        result = proxy.result()
    assert answered == [True] and rec.disposition == "answered"
    assert result.successful == 1, result  # the Request-URI check passed and BYE arrived
