"""Turn latency on real recordings, 1/10/50 callers at once: grammar, free text and Mandarin.

    PYTHONPATH=. nice -n 10 .venv/bin/python -m tests.bench.bench_turns [--quick]

Each caller is a real recording from the evaluation set (tests/speech_data.py, 8 kHz G.711), fed
in real time on an absolute 20 ms clock through the real listen driver (silero VAD, endpointer,
the recogniser in one 2-worker pool, lanes as in a call), starting at a random offset within
``spread`` seconds (2 s: a burst, everybody answering the same prompt; 10 s: steady state).

- grammar: whisper tiny.en, the clip's menu sentences scored by forced decoding (the default
  English grammar path);
- free: whisper tiny.en free text on whole real sentences of 2-6 s;
- mandarin: whisper base on Mandarin phrase clips with a Chinese business menu;
- pocketsphinx: the former menu recogniser, for comparison.

``final`` is true end of speech (last frame above -50 dBFS) -> recogniser final; the figures
include the endpointer's hangover (200 ms for menus, 300 ms free text).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import time
from collections.abc import AsyncIterator, Awaitable
from pathlib import Path

import numpy as np

from asr.backends.sphinx import keywords_jsgf
from asr.endpoint import EndpointConfig
from asr.ledger import percentile
from asr.listen import ListenConfig, listen_turn
from asr.models import get_engine
from asr.pool import InferencePool
from asr.recognizer import Engine, RecognizerOptions
from asr.vad import SileroVad
from audio.pcm import Pcm, frames
from core.call import AudioFrameEvent, CallEvent
from core.clock import SystemClock
from tests import speech_data as sd

LEAD_S = 0.6
TAIL_S = 1.0
Item = tuple[str | None, RecognizerOptions, Pcm]


def speech_end_s(pcm: Pcm) -> float:
    n = len(pcm) // 80
    rms = np.sqrt(np.mean(pcm[: n * 80].astype(np.float64).reshape(n, 80) ** 2, axis=1))
    loud = np.nonzero(rms > 32768 * 10 ** (-50 / 20))[0]
    return (loud[-1] + 1) * 0.01 if len(loud) else 0.0


async def caller(pcm: Pcm, t0: float, clock: SystemClock) -> AsyncIterator[CallEvent]:
    for i, f in enumerate(frames(pcm)):
        await clock.sleep_until(t0 + (i + 1) * 0.02)
        yield AudioFrameEvent(f, clock.now())


async def one_turn(item: Item, engine: Engine, pool: InferencePool, *, hangover_ms: int,
                   stagger_s: float) -> tuple[bool, float]:
    clock = SystemClock()
    expected, opts, speech = item
    pcm = np.concatenate([np.zeros(int(LEAD_S * 8000), np.int16), speech,
                          np.zeros(int(TAIL_S * 8000), np.int16)])
    await asyncio.sleep(stagger_s)
    t0 = clock.now()
    true_end = t0 + LEAD_S + speech_end_s(speech)
    cfg = ListenConfig(endpoint=EndpointConfig(hangover_ms=hangover_ms), options=opts,
                       final_timeout_s=60.0, feed_timeout_s=60.0)
    r = await listen_turn(caller(pcm, t0, clock), engine, SileroVad(), pool, clock, config=cfg)
    final_at = r.timings.get("final", clock.now())
    right = expected is None or (r.status == "ok" and r.text == expected)
    return right, (final_at - true_end) * 1000


async def load_run(label: str, n: int, items: list[Item], engine: Engine, *,
                   hangover_ms: int, spread_s: float) -> None:
    pool = InferencePool(2, clock=SystemClock())
    load0 = os.getloadavg()[0]
    rnd = random.Random(n)
    picks = [items[rnd.randrange(len(items))] for _ in range(n)]
    cpu0, wall0 = time.process_time(), time.perf_counter()
    res = await asyncio.gather(*[one_turn(it, engine, pool, hangover_ms=hangover_ms,
                                          stagger_s=rnd.uniform(0, spread_s)) for it in picks])
    wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
    pool.shutdown()
    finals = [r[1] for r in res]
    ok = sum(r[0] for r in res)
    print(f"{label:13s} N={n:3d} within {spread_s:2.0f}s  final p50/p95/p99 "
          f"{percentile(finals, 50):5.0f}/{percentile(finals, 95):5.0f}/"
          f"{percentile(finals, 99):5.0f} ms  right {ok}/{n}  "
          f"cpu {100 * cpu / wall:3.0f}%  loadavg {load0:.1f}->{os.getloadavg()[0]:.1f}")


def grammar_items() -> list[Item]:
    clips = sd.clips()
    out: list[Item] = []
    for it, menu, _ in sd.menu_grammars(clips):
        out.append((it.text, RecognizerOptions(mode="grammar", grammar="\n".join(menu)), it.pcm))
    return out


def sphinx_items() -> list[Item]:
    from asr.recognizer import RecognizerError

    sph = get_engine("pocketsphinx")
    out: list[Item] = []
    for it, menu, _ in sd.menu_grammars(sd.clips()):
        opts = RecognizerOptions(mode="grammar", grammar=keywords_jsgf(tuple(menu)))
        try:
            sph.open(opts).close()
        except RecognizerError:
            continue  # a menu word pocketsphinx's dictionary lacks
        out.append((it.text, opts, it.pcm))
    return out


def free_items() -> list[Item]:
    return [(None, RecognizerOptions(), s.pcm) for s in sd.sentences()
            if s.text and 2.0 <= len(s.pcm) / 8000 <= 6.0]


def mandarin_items() -> list[Item]:
    menu = list(sd.ZH_MENU[:4])
    return [(c.text, RecognizerOptions(mode="keywords", keywords=(*menu, c.text or ""),
                                       language="zh-CN"), c.pcm) for c in sd.zh_clips()]


async def with_inspection(backlog: int, run: Awaitable[None]) -> None:
    """``run`` (a load run) while the post-call inspection queue works through ``backlog``
    calls in this process, as ``ivr run`` with ``[inspection] enabled`` does (its own
    1-thread pool, whisper tiny.en on both channels of real-recording calls, jobs claimed
    from SQLite): do live turns keep their latency while the queue transcribes?"""
    import tempfile

    from inspection.inspector import Inspector
    from inspection.queue import JobQueue
    from inspection.worker import InspectionWorker
    from storage import open_database
    from tests.bench.bench_inspection import build

    tmp = Path(tempfile.mkdtemp(prefix="ivr-turns-inspect-"))
    url, audio_s = build(tmp, backlog, "en")
    db = open_database(url)
    queue = JobQueue(db)
    inspector = Inspector(db, default_language="en")
    inspector.inspect("en-0", store=False)  # the model loaded before the clock starts
    worker = InspectionWorker(queue, inspector, SystemClock(), owner="bench", workers=1,
                              poll_s=0.2, sweep_window_s=0)
    for i in range(backlog):
        queue.enqueue(f"en-{i}", "", time.time(), force=True)
    await worker.start()
    await asyncio.sleep(2.0)  # the queue is busy transcribing when the callers start
    await run
    done = len(queue.jobs("done", limit=backlog))
    await worker.stop()
    print(f"{'':13s} (inspection queue: {done} of {backlog} calls, {audio_s:.0f} s of stereo "
          "audio, inspected meanwhile by 1 worker thread)")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="N=1,10 only")
    ap.add_argument("--kinds", default="grammar,free,mandarin,pocketsphinx")
    ap.add_argument("--inspect-backlog", type=int, default=0,
                    help="also run N=50 (10 s) while the inspection queue works through this "
                    "many calls (issue 17)")
    args = ap.parse_args()
    print(f"machine: {os.cpu_count()} cores (shared), load average {os.getloadavg()[0]:.2f}")
    if args.inspect_backlog:
        engine = get_engine("whisper", workers=2)
        items = grammar_items()
        for backlog in (0, args.inspect_backlog):
            run = load_run("grammar" + ("+inspect" if backlog else ""), 50, items, engine,
                           hangover_ms=200, spread_s=10.0)
            asyncio.run(with_inspection(backlog, run) if backlog else run)
        return
    ns = (1, 10) if args.quick else (1, 10, 50)
    runs = [(n, 2.0) for n in ns] + ([] if args.quick else [(50, 10.0)])
    kinds = {
        "grammar": ("whisper", grammar_items, 200),
        "free": ("whisper", free_items, 300),
        "mandarin": ("whisper-base", mandarin_items, 200),
        "pocketsphinx": ("pocketsphinx", sphinx_items, 200),
    }
    for kind in args.kinds.split(","):
        name, build, hangover = kinds[kind]
        engine = get_engine(name, workers=2)
        items = build()
        for n, spread in runs:
            asyncio.run(load_run(kind, n, items, engine, hangover_ms=hangover, spread_s=spread))


if __name__ == "__main__":
    main()
