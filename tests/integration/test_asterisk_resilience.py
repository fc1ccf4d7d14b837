"""The Asterisk backend when Asterisk misbehaves, against the real one.

* Asterisk stopped (``core stop now``) and killed (SIGKILL) while a call is in progress: the
  call's record says why it ended (``asterisk_shutdown``, ``asterisk_lost``); the AMI client
  logs in again when Asterisk is back, and the next call works.
* A flood of AMI events (a dialplan loop setting a variable hundreds of thousands of times, with
  the engine's event filters off so all of it reaches the engine): calls on the engine's own SIP
  backend go on, their keys are heard, the AMI session survives.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import pytest

from audio.tones import silence
from core.call import Call, CallHungUp, DigitSpec
from core.clock import SystemClock
from engine.ami.client import AmiClient, AmiSettings
from engine.cdr import CallRecord
from tests.asterisk import TESTER_SECRET, TESTER_USER, Asterisk
from tests.integration.asterisk_harness import (
    asterisk_engine,
    call_asterisk,
    caller_scenario,
    open_caller_sink,
)
from tests.integration.engine_harness import Seen, collecting_app, sip_target
from tests.netutil import free_port, free_port_block, wait_until
from tests.rtp_pcap import caller_pcap
from tests.sipp import dump_builtin, run_sipp_async

pytestmark = [pytest.mark.sipp, pytest.mark.asterisk, pytest.mark.xdist_group("asterisk"),
              pytest.mark.slow]


async def one_key_then_hang_up(call: Call) -> None:
    """Waits for one key (a minute at most), then hangs up."""
    try:
        await call.collect_digits(DigitSpec(max_digits=1, terminator=None,
                                            first_digit_timeout_s=60))
        await call.hangup()
    except CallHungUp:
        pass


def records_by_time(engine: Any) -> list[CallRecord]:
    return sorted(engine.records.list(), key=lambda r: r.invite_at)


async def start_held_call(tmp_path: Path, asterisk: Asterisk, name: str,
                          key_at: float | None = None, hold_s: float = 60,
                          ) -> tuple[asyncio.Future[Any], Any]:
    keys = ((key_at, "5"),) if key_at is not None else ()
    pcap = caller_pcap(tmp_path / f"{name}.pcap", silence(hold_s), keys)
    _, sink_transport, sink_port = await open_caller_sink()
    scenario = caller_scenario(tmp_path, pcap=pcap, hold_ms=int(hold_s * 1000),
                               sink_port=sink_port)
    call = asyncio.ensure_future(call_asterisk(asterisk, tmp_path, scenario,
                                               limit_s=hold_s + 30))
    return call, sink_transport


async def test_asterisk_stopped_and_killed_mid_call(tmp_path: Path, asterisk: Asterisk) -> None:
    async with asterisk_engine(tmp_path, asterisk, lambda c: one_key_then_hang_up) as engine:
        assert engine.asterisk is not None and engine.ami is not None
        for how, cause in (("stop", "asterisk_shutdown"), ("kill", "asterisk_lost")):
            sipp, sink = await start_held_call(tmp_path, asterisk, f"held-{how}")
            await wait_until(lambda: len(engine.asterisk.calls) == 1, 30, "the held call")
            ended = len(engine.records.list())  # type: ignore[union-attr]
            await asyncio.to_thread(asterisk.stop if how == "stop" else asterisk.kill)
            await wait_until(lambda n=ended: len(engine.records.list()) == n + 1,  # type: ignore[misc,union-attr]
                             15, f"the record of the call Asterisk dropped ({how})")
            await asyncio.wait_for(sipp, 60)
            sink.close()
            rec = records_by_time(engine)[-1]
            assert (rec.hangup_cause, rec.hangup_side) == (cause, "system"), (how, rec.trace)
            assert rec.backend == "asterisk" and rec.disposition == "answered"
            assert not engine.ami.connected
            await asyncio.to_thread(asterisk.start)
            assert await engine.ami.wait_connected(30), engine.ami.stats.last_error
            # a new call works: key 5 after a second, the flow hangs up
            sipp, sink = await start_held_call(tmp_path, asterisk, f"after-{how}", key_at=1.0,
                                               hold_s=15)
            res = await asyncio.wait_for(sipp, 60)
            sink.close()
            assert res.successful == 1, res.stdout[-1500:]
            await engine.wait_idle()
            rec = records_by_time(engine)[-1]
            assert (rec.digits, rec.hangup_side, rec.hangup_cause) == ("5", "engine", "normal")
        assert engine.ami.stats.disconnects == 2 and engine.ami.stats.connects == 3


async def flood(asterisk: Asterisk, iterations: int) -> AmiClient:
    """A dialplan loop on a Local channel, set going by the tests' own AMI user."""
    tester = AmiClient(AmiSettings(port=asterisk.ami_port, username=TESTER_USER,
                                   secret=TESTER_SECRET, events="off", filters=()),
                       SystemClock(), name="flood")
    tester.start()
    assert await tester.wait_connected(10)
    await tester.send("Originate", [("Channel", "Local/s@flood"), ("Application", "Wait"),
                                    ("Data", "120"), ("Async", "true"),
                                    ("Variable", f"FLOOD_N={iterations}")])
    return tester


async def test_ami_event_flood_does_not_stall_sip_calls(tmp_path: Path,
                                                        asterisk: Asterisk) -> None:
    seen = Seen()
    scenario = dump_builtin("uac_pcap", tmp_path / "uac_pcap.xml")
    async with asterisk_engine(tmp_path, asterisk, lambda c: collecting_app(seen),
                               IVR_ASTERISK__EVENT_FILTERS="[]") as engine:
        assert engine.ami is not None
        stats = engine.ami.stats
        base = stats.events_delivered + stats.events_dropped
        tester = await flood(asterisk, 400_000)
        try:
            await wait_until(lambda: stats.events_delivered + stats.events_dropped > base + 1000,
                             20, "the flood reaching the engine")
            t0 = time.monotonic()
            lateness_before = engine.pacer.late_ticks
            res = await run_sipp_async(
                sip_target(engine), scenario, local_port=free_port(), workdir=tmp_path,
                extra=["-m", "6", "-l", "6", "-r", "6", "-mp", str(free_port_block(40))],
                limit_s=90)
            during = stats.events_delivered + stats.events_dropped - base
            elapsed = time.monotonic() - t0
        finally:
            await tester.close()
        await engine.wait_idle()
        late = engine.pacer.late_ticks - lateness_before
        lateness = engine.pacer.lateness_ms()
    print(f"flood: {during} AMI events in {elapsed:.1f} s ({during / elapsed:.0f}/s) while 6 "
          f"SIP calls ran; pacer lateness p50 {lateness['p50']:.2f} ms, p99 "
          f"{lateness['p99']:.2f} ms, max {lateness['max']:.1f} ms, {late} late ticks")
    assert res.successful == 6, res.stdout[-1500:]
    assert seen.digits == ["1"] * 6  # every caller's key was heard
    assert during > 50_000  # it was a flood, and it reached the engine
    assert stats.disconnects == 0  # the engine kept up: Asterisk never dropped the session
