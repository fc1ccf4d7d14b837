"""One engine process for the media benchmark (``bench_media``): answers every call with a
small IVR (prompt, then digits; each digit is acknowledged with RFC 4733 digit ``2``).

Why a separate process: the benchmark must measure the engine's RTP from outside (a capture),
and its CPU from /proc, without the load generator or the analysis sharing its event loop.
Prints ``ready`` once listening; on SIGTERM prints one JSON line of counters and exits.

    python -m tests.bench.media_engine SIP_PORT RTP_MIN RTP_MAX WORKDIR
"""

from __future__ import annotations

import asyncio
import gc
import json
import os
import resource
import signal
import sys
import time
from pathlib import Path
from typing import Any

from app.config import load_settings
from app.engine import Engine
from app.loop import space_full_collections
from audio.tones import tone
from core.call import CallHungUp, DigitSpec
from core.tasks import spawn
from engine.controller import CallApp
from engine.sipcall import SipCall
from storage.tenancy import Tenants

PROMPT_S = 3.0
ACK_DIGIT = "2"


class Counters:
    def __init__(self) -> None:
        self.calls = 0
        self.digits_rx = 0
        self.digits_tx = 0
        self.gc_max_ms = [0.0, 0.0, 0.0]  # longest collection per generation
        self.gc_runs = [0, 0, 0]
        self._gc_t0 = 0.0

    def on_gc(self, phase: str, info: dict[str, int]) -> None:
        """gc callback: a full collection stops the loop, and with it every call's audio."""
        if phase == "start":
            self._gc_t0 = time.perf_counter()
            return
        g = info["generation"]
        self.gc_runs[g] += 1
        self.gc_max_ms[g] = max(self.gc_max_ms[g], (time.perf_counter() - self._gc_t0) * 1000)


def ivr_app(counters: Counters) -> CallApp:
    prompt = tone(440, PROMPT_S)

    async def app(call: SipCall) -> None:
        counters.calls += 1
        try:
            await call.answer()
            await call.play(prompt)
            while True:
                got = await call.collect_digits(DigitSpec(max_digits=1, terminator=None,
                                                          first_digit_timeout_s=600))
                if got.digits:
                    counters.digits_rx += len(got.digits)
                    await call.send_digits(ACK_DIGIT)
                    counters.digits_tx += 1
        except CallHungUp:
            pass

    return app


async def watch_stalls(out: list[tuple[float, float, float]], t0: float) -> None:
    """Diagnostic (BENCH_STALLS=1): every loop stall over 40 ms as (at s, wall ms, CPU ms).
    CPU close to wall means the loop was busy; far below it, the process was not running."""
    last_w, last_c = time.monotonic(), time.thread_time()
    while True:
        await asyncio.sleep(0.005)
        w, c = time.monotonic(), time.thread_time()
        if w - last_w > 0.040:
            out.append((round(w - t0, 2), round((w - last_w) * 1000, 1),
                        round((c - last_c) * 1000, 1)))
        last_w, last_c = w, c


async def start_console(engine: Engine, port: int) -> tuple[Any, str]:
    """The console on the engine's bus, with an ops user; the ready line carries its URL and
    an API token for the viewers."""
    from app.console_setup import build_console
    from console.api.app import ConsoleServer

    assert engine.db is not None
    svc = build_console(engine.settings, engine.db, clock=engine.clock, bus=engine.bus)
    svc.identity.ensure_tenant("default")
    user = svc.identity.create_user("bench", "bench password", "ops")
    token, _ = svc.identity.create_token(user.id, "bench", tenants=Tenants.every())
    server = ConsoleServer(svc)
    host, bound = await server.start("127.0.0.1", port)
    gc.freeze()  # as `ivr run` does once the console is up
    return server, f"ready console=http://{host}:{bound} token={token}"


def hub_stats(console: Any) -> dict[str, object]:
    hub = console.services.hub if console is not None else None
    if hub is None:
        return {}
    return {"hub_events": hub.handled, "hub_longest_slice_ms": round(hub.longest_slice_ms, 2),
            "viewers_dropped": hub.dropped_viewers}


async def node_events(engine: Engine, per_call_per_s: float) -> None:
    """A flow's node events for every call in progress, ``per_call_per_s`` times a second (the
    benchmark's IVR runs no flow, so this stands in for one that steps through nodes)."""
    while True:
        await engine.clock.sleep(1.0 / per_call_per_s)
        calls = engine.controller.calls if engine.controller is not None else {}
        for call_id in list(calls):
            engine.bus.publish("flow.node", call_id, tenant="default", node_id="menu",
                               outcome="next", duration_ms=200)


async def main(sip_port: int, rtp_min: int, rtp_max: int, workdir: Path) -> None:
    env = {
        "IVR_SIP__LISTEN": f"127.0.0.1:{sip_port}",
        "IVR_STORAGE__URL": f"sqlite:///{workdir}/ivr-{sip_port}.sqlite",
        "IVR_STORAGE__RECORDINGS_DIR": str(workdir / "recordings"),
        "IVR_RTP__PORT_MIN": str(rtp_min),
        "IVR_RTP__PORT_MAX": str(rtp_max),
        "IVR_RTP__RECORD_CALLS": "false",
        "IVR_SIP__MAX_CALLS": "20000",
        "IVR_SIP__DRAIN_S": "1",
    }
    counters = Counters()
    gc.callbacks.append(counters.on_gc)
    app = ivr_app(counters)
    for key, value in os.environ.items():  # other settings the benchmark gives, e.g.
        if key.startswith("IVR_"):  # IVR_SIP__MAX_CPS (bench_nodes); ours above win
            env.setdefault(key, value)
    env.setdefault("IVR_METRICS__LISTEN", "127.0.0.1:0")  # several engines run side by side
    settings = load_settings(environ=env)
    space_full_collections(settings.runtime.gc_full_every)  # as `ivr run` does
    engine = Engine(settings, router=lambda call: app)
    await engine.start()
    objects0 = len(gc.get_objects())
    if os.environ.get("BENCH_GC_FREEZE") == "1":
        gc.freeze()  # startup objects (imports, config, models) leave the collector's scans
    stalls: list[tuple[float, float, float]] = []
    watcher = None
    if os.environ.get("BENCH_STALLS") == "1":
        watcher = spawn(watch_stalls(stalls, time.monotonic()), "stall-watch")
    ready = "ready"
    console = None
    if os.environ.get("BENCH_CONSOLE_PORT"):  # bench_console_fanout: live events to viewers
        console, ready = await start_console(engine, int(os.environ["BENCH_CONSOLE_PORT"]))
    if float(os.environ.get("BENCH_EVENTS_PER_S", "0")) > 0:
        spawn(node_events(engine, float(os.environ["BENCH_EVENTS_PER_S"])), "node-events")
    print(ready, flush=True)
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    await stop.wait()
    ru = resource.getrusage(resource.RUSAGE_SELF)
    late = engine.pacer.lateness_ms()
    print(json.dumps({
        "cpu_s": ru.ru_utime + ru.ru_stime, "maxrss_mb": ru.ru_maxrss / 1024,
        "calls": counters.calls, "digits_rx": counters.digits_rx,
        "digits_tx": counters.digits_tx, "late_ticks": engine.pacer.late_ticks,
        "skipped_ticks": engine.pacer.skipped_ticks, "tick_late_p99_ms": late["p99"],
        "tick_late_max_ms": late["max"], "reanchors": engine.pacer.reanchors,
        "objects_start": objects0, "objects_end": len(gc.get_objects()),
        "stalls": stalls[:40], "watcher": watcher is not None,
        "gc_runs": counters.gc_runs, "gc_max_ms": [round(x, 1) for x in counters.gc_max_ms],
        **hub_stats(console)}),
        flush=True)
    os._exit(0)  # the benchmark is over; skip the orderly drain


if __name__ == "__main__":
    coro = main(int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), Path(sys.argv[4]))
    from app.loop import run

    run(coro, os.environ.get("BENCH_LOOP", "auto"))  # the engine's default unless told
