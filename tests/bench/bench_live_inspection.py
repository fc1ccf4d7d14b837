"""Do live calls keep their turn latency while the post-call inspection queue works? (issue 17)

    PYTHONPATH=. .venv/bin/python -m tests.bench.bench_live_inspection [--calls 50]
        [--minutes 2] [--turn-every 12] [--backlog 12] [--rounds 2]

``--calls`` live callers for ``--minutes`` each: a caller hears a prompt (a random
0.5-1.5 x ``--turn-every`` seconds), answers a menu with a real recording (the evaluation set's
grammar clips, fed in real time through the real listen driver: silero VAD, endpointer,
whisper tiny.en forced scoring in one 2-worker pool), and so on until the time is up. That is
what 50 calls in menus look like, rather than ``bench_turns``' 50 answers to one prompt within
10 s (a burst that alone saturates 2 cores here). Each round runs the calls twice, without and
then with the inspection queue working through ``--backlog`` real-recording calls in the same
process (``bench_turns.with_inspection``: its own thread, its model's decode threads at
``[inspection] nice``), alternating so a drifting box load hits both alike.

Reported per run: turns, right answers, end-of-speech -> final p50/p95/p99, the process's CPU
and the load average; the queue's progress is printed by ``with_inspection``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import time
from collections.abc import Awaitable

from asr.ledger import percentile
from asr.models import get_engine
from asr.pool import InferencePool
from asr.recognizer import Engine
from core.clock import SystemClock
from tests.bench.bench_turns import Item, grammar_items, one_turn, with_inspection


async def caller(items: list[Item], engine: Engine, pool: InferencePool, rnd: random.Random,
                 *, deadline: float, turn_every_s: float, out: list[tuple[bool, float]]) -> None:
    while time.monotonic() < deadline:
        item = items[rnd.randrange(len(items))]
        out.append(await one_turn(item, engine, pool, hangover_ms=200,
                                  stagger_s=rnd.uniform(0.5, 1.5) * turn_every_s))


async def live_calls(label: str, items: list[Item], engine: Engine, *, calls: int,
                     minutes: float, turn_every_s: float, seed: int) -> None:
    pool = InferencePool(2, clock=SystemClock())
    rnd = random.Random(seed)
    load0 = os.getloadavg()[0]
    out: list[tuple[bool, float]] = []
    deadline = time.monotonic() + minutes * 60
    cpu0, wall0 = time.process_time(), time.perf_counter()
    await asyncio.gather(*[
        caller(items, engine, pool, random.Random(rnd.random()), deadline=deadline,
               turn_every_s=turn_every_s, out=out) for _ in range(calls)])
    wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
    pool.shutdown()
    finals = [r[1] for r in out]
    print(f"{label:16s} {calls} calls {minutes:.1f} min: {len(out)} turns "
          f"({len(out) / wall:.1f}/s), right {sum(r[0] for r in out)}/{len(out)}, final "
          f"p50/p95/p99 {percentile(finals, 50):5.0f}/{percentile(finals, 95):5.0f}/"
          f"{percentile(finals, 99):5.0f} ms, cpu {100 * cpu / wall:3.0f}%, "
          f"loadavg {load0:.1f}->{os.getloadavg()[0]:.1f}", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--calls", type=int, default=50)
    ap.add_argument("--minutes", type=float, default=2.0)
    ap.add_argument("--turn-every", type=float, default=12.0,
                    help="mean seconds of prompt between a caller's answers")
    ap.add_argument("--backlog", type=int, default=12)
    ap.add_argument("--rounds", type=int, default=2)
    args = ap.parse_args()
    print(f"machine: {os.cpu_count()} cores (shared), load average {os.getloadavg()[0]:.2f}")
    engine = get_engine("whisper", workers=2)
    items = grammar_items()
    for k in range(args.rounds):
        for backlog in (0, args.backlog):
            run: Awaitable[None] = live_calls(
                "alone" if not backlog else "+inspection queue", items, engine,
                calls=args.calls, minutes=args.minutes, turn_every_s=args.turn_every, seed=k)
            asyncio.run(with_inspection(backlog, run) if backlog else run)


if __name__ == "__main__":
    main()
