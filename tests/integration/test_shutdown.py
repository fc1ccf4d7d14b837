"""Orderly shutdown with a call up: new INVITEs get 503, the running call may finish during the
drain time, then it is hung up with BYE (cause 'shutdown') and its record is written."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from app.config import load_settings
from app.engine import Engine
from core.call import Call
from storage.tenancy import EVERY_TENANT
from tests.netutil import free_port, free_port_block
from tests.sipp import run_sipp_async

pytestmark = [pytest.mark.sipp, pytest.mark.xdist_group("sipp")]


async def test_stop_drains_then_hangs_up_and_records(tmp_path: Path) -> None:
    async def app(call: Call) -> None:
        await call.answer()
        await asyncio.sleep(60)  # a long call: the caller never hangs up

    rtp = free_port_block(20)
    settings = load_settings(environ={
        "IVR_SIP__LISTEN": f"127.0.0.1:{free_port()}",
        "IVR_STORAGE__URL": f"sqlite:///{tmp_path}/ivr.sqlite",
        "IVR_STORAGE__RECORDINGS_DIR": str(tmp_path / "rec"),
        "IVR_RTP__PORT_MIN": str(rtp), "IVR_RTP__PORT_MAX": str(rtp + 18),
        "IVR_METRICS__LISTEN": "127.0.0.1:0",
    })
    engine = Engine(settings, router=lambda c: app)
    await engine.start()
    host, port = engine.addresses["udp"]
    answered = engine.bus.subscribe("call.answered")
    caller = asyncio.ensure_future(run_sipp_async(
        f"{host}:{port}", "uac", local_port=free_port(), workdir=tmp_path,
        extra=["-m", "1", "-d", "20000"], limit_s=30))
    await asyncio.wait_for(answered.queue.get(), 10)
    stopping = asyncio.ensure_future(engine.stop(drain_s=1.0))
    await asyncio.sleep(0.3)
    (tmp_path / "late").mkdir()
    late = await run_sipp_async(f"{host}:{port}", "uac", local_port=free_port(),
                                workdir=tmp_path / "late", extra=["-m", "1", "-timeout", "5"],
                                limit_s=15)
    await asyncio.wait_for(stopping, 15)
    result = await asyncio.wait_for(caller, 30)
    assert engine.records is not None
    (rec,) = engine.records.list(tenants=EVERY_TENANT)
    assert rec.hangup_cause == "shutdown" and rec.hangup_side == "engine"
    assert 0.9 <= rec.duration_s <= 5  # ran through the drain time, not cut at once
    assert result.successful == 0 and "BYE" in result.stdout + result.errors, result.errors
    assert "503" in late.stdout + late.errors  # the engine refused new calls while stopping
