"""Placing calls: an abandoned call is CANCELled while it rings (a bridge whose first leg hung up
must not leave the target ringing), and a call that rings out is recorded as no_answer."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from core.call import Call
from storage.tenancy import EVERY_TENANT
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


@pytest.mark.parametrize(("status", "reason", "disposition", "cause"), [
    (486, "Busy Here", "busy", "busy"),
    (480, "Temporarily Unavailable", "no_answer", "no_answer"),
    (503, "Service Unavailable", "failed", "rejected"),
    (404, "Not Found", "failed", "not_found"),
    (603, "Decline", "rejected", "declined"),
])
async def test_refused_outbound_calls_get_their_disposition(
        tmp_path: Path, status: int, reason: str, disposition: str, cause: str) -> None:
    """A SIPp callee refuses the call; the record (returned, on the bus and in the database)
    says why, in the vocabulary campaigns retry by (engine/dispositions.py)."""
    scenario = tmp_path / "uas_reject.xml"
    scenario.write_text((FIXTURES / "uas_reject.xml.tmpl").read_text()
                        .replace("STATUS", str(status)).replace("REASON", reason))
    port = free_port()
    async with running_engine(tmp_path, lambda c: _never) as engine, SippServer(
            scenario, local_port=port, workdir=tmp_path, extra=["-m", "1"]) as uas:
        assert engine.controller is not None and engine.records is not None
        ended = engine.bus.subscribe("call.ended")
        rec = await asyncio.wait_for(engine.controller.originate(
            f"sip:agent@127.0.0.1:{port}", _never), 15)
        assert uas.proc is not None
        await asyncio.wait_for(uas.proc.wait(), 10)
        await engine.wait_idle()
        stored = engine.records.get(rec.id, tenants=EVERY_TENANT)
        event = ended.queue.get_nowait()
    assert (rec.disposition, rec.hangup_cause, rec.sip_status) == (disposition, cause, status)
    assert stored is not None and stored.disposition == disposition
    assert event.data["disposition"] == disposition and event.call_id == rec.id
    assert uas.result().successful == 1  # SIPp got its ACK


async def test_unresolvable_target_is_a_failed_call_on_the_bus(tmp_path: Path) -> None:
    """A target the engine cannot reach still ends as a call: record, bus event, cause."""
    async with running_engine(tmp_path, lambda c: _never) as engine:
        assert engine.controller is not None
        ended = engine.bus.subscribe("call.ended")
        rec = await asyncio.wait_for(engine.controller.originate(
            "sip:agent@no-such-host.invalid", _never), 30)
        event = ended.queue.get_nowait()
    assert rec.disposition == "failed" and rec.hangup_cause.startswith("network_error")
    assert event.data["disposition"] == "failed" and event.call_id == rec.id
