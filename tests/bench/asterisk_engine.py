"""One engine process for ``bench_asterisk``: both backends (its own SIP/RTP and Asterisk over
AMI + AudioSocket) answer every call with the same turn-taking app: wait for a key, answer it
at once with a 300 ms tone, again until the caller hangs up. The caller's key is the end of
its turn; the tone's first packet at the caller is the answer, so key-to-tone is the turn
latency a caller experiences through each backend.

Why a separate process: its CPU is read from /proc without the load generator, the capture or
the analysis sharing it. Prints ``ready`` once both backends are up (AMI logged in); on SIGTERM
prints one JSON line of counters and exits.

    python -m tests.bench.asterisk_engine CONFIG_JSON
"""

from __future__ import annotations

import asyncio
import json
import os
import resource
import signal
import sys

from app.config import load_settings
from app.engine import Engine
from audio.tones import tone
from core.call import Call, CallHungUp, DigitSpec

ANSWER = tone(1000, 0.3)


class Counters:
    calls = 0
    keys = 0


def turn_app(counters: Counters):  # type: ignore[no-untyped-def]
    async def app(call: Call) -> None:
        counters.calls += 1
        try:
            while True:
                got = await call.collect_digits(DigitSpec(max_digits=1, terminator=None,
                                                          first_digit_timeout_s=600))
                if got.digits:
                    counters.keys += 1
                    await call.play(ANSWER)
        except CallHungUp:
            pass

    return app


async def main(env: dict[str, str]) -> None:
    counters = Counters()
    app = turn_app(counters)
    engine = Engine(load_settings(environ=env), router=lambda call: app)
    await engine.start()
    assert engine.ami is not None
    if not await engine.ami.wait_connected(30):
        print(json.dumps({"error": engine.ami.stats.last_error}), flush=True)
        os._exit(1)
    print("ready", flush=True)
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    await stop.wait()
    ru = resource.getrusage(resource.RUSAGE_SELF)
    late = engine.pacer.lateness_ms()
    print(json.dumps({
        "cpu_s": ru.ru_utime + ru.ru_stime, "maxrss_mb": ru.ru_maxrss / 1024,
        "calls": counters.calls, "keys": counters.keys, "late_ticks": engine.pacer.late_ticks,
        "tick_late_p99_ms": late["p99"], "tick_late_max_ms": late["max"],
        "ami_events": engine.ami.stats.events_delivered}), flush=True)
    os._exit(0)  # the benchmark is over; skip the orderly drain


if __name__ == "__main__":
    asyncio.run(main(json.loads(sys.argv[1])))
