"""Inspection throughput: calls per CPU-minute and real-time factor, by recogniser, and the
queue's hang-up-to-result latency.

Calls are stereo recordings built from the real recordings of the evaluation set
(tests/fixtures/speech/manifest.json): the caller channel strings several real utterances with
pauses, the engine channel real read speech (English) or the same Mandarin readings, so both
channels have turns to transcribe. Each call is inspected with the built-in scorecard.

1. ``direct``: ``Inspector.inspect`` one call after another in this process: wall and process
   CPU time (every thread, CTranslate2's included), audio seconds -> RTF (CPU / audio) and
   calls per CPU-minute, per language (en: whisper tiny.en, zh: whisper base).
2. ``queue``: the same calls enqueued at once behind a running ``InspectionWorker``
   (``workers`` threads): enqueue -> result stored, p50/p95/max, and calls per wall minute.

Run: ``python -m tests.bench.bench_inspection [--calls 6] [--workers 1]`` (a few minutes on
2 cores). Needs var/testdata and var/models/whisper-base.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from audio.resample import to_8k
from audio.tones import silence
from audio.wavio import read_wav, write_stereo_wav
from core.clock import SystemClock
from engine.cdr import CallRecord, CallRecords
from inspection.inspector import Inspector
from inspection.queue import JobQueue
from inspection.store import ResultStore
from inspection.worker import InspectionWorker
from storage import open_database
from storage.tenancy import EVERY_TENANT
from tests.speech_data import REAL_DIR

EN_CALLER = ("ps_librivox_0880.wav", "ps_goforward.wav", "ps_librivox_0890.wav",
             "ps_cards_005.wav", "ps_forever_2.wav")
EN_ENGINE = ("../arctic_a0007.wav", "../arctic_a0009.wav", "ps_librivox_0920.wav")
ZH = ("zh_weiwei.wav", "zh_shenyi.wav", "zh_xiaoyan.wav")


def _voice(name: str) -> np.ndarray:
    pcm, rate = read_wav(REAL_DIR / name)
    return to_8k(pcm, rate)


def make_call(path: Path, caller: tuple[str, ...], engine: tuple[str, ...]) -> float:
    """Alternating turns: engine, caller, engine, ... with 0.6 s gaps; returns seconds."""
    left: list[np.ndarray] = []
    right: list[np.ndarray] = []
    for i in range(max(len(caller), len(engine))):
        for names, mine, other in ((engine, right, left), (caller, left, right)):
            pcm = np.concatenate([_voice(names[i % len(names)]), silence(0.6)])
            mine.append(pcm)
            other.append(np.zeros(len(pcm), np.int16))
    lpcm, rpcm = np.concatenate(left), np.concatenate(right)
    write_stereo_wav(path, lpcm, rpcm)
    return len(lpcm) / 8000


def build(tmp: Path, n: int, language: str) -> tuple[str, float]:
    url = f"sqlite:///{tmp}/{language}.sqlite"
    db = open_database(url)
    now = time.time()
    total = 0.0
    for i in range(n):
        wav = tmp / f"{language}-{i}.wav"
        if language == "zh":
            total += make_call(wav, ZH[i % 3:] + ZH[:i % 3], ZH[::-1])
        else:
            total += make_call(wav, EN_CALLER[i % 5:] + EN_CALLER[:i % 5], EN_ENGINE)
        CallRecords(db).save_many([CallRecord(
            f"sip-{i}", "inbound", "1000", "2000", id=f"{language}-{i}", invite_at=now - 100,
            answer_at=now - 99, end_at=now - 1, disposition="answered",
            recording_path=str(wav))])
    return url, total


def direct(url: str, n: int, language: str) -> None:
    inspector = Inspector(open_database(url), default_language=language)
    inspector.inspect(f"{language}-0", store=False)  # model load and warm-up: not measured
    walls = []
    audio = 0.0
    cpu0, wall0 = time.process_time(), time.perf_counter()
    for i in range(n):
        t = time.perf_counter()
        got = inspector.inspect(f"{language}-{i}")
        walls.append(time.perf_counter() - t)
        audio += got.stats.audio_s
    cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
    print(f"direct {language}: {n} calls, {audio:.0f} s audio ({audio / n:.1f} s/call, both "
          f"channels {2 * audio:.0f} s), wall {wall:.1f} s, CPU {cpu:.1f} s -> RTF "
          f"{cpu / audio:.3f} CPU/audio ({cpu / (2 * audio):.3f} per channel-second), "
          f"{60 * n / cpu:.1f} calls per CPU-minute, per call wall p50 "
          f"{statistics.median(walls):.2f} s, engine {got.transcript.engine_name}")


async def queued(url: str, n: int, language: str, workers: int) -> None:
    db = open_database(url)
    queue = JobQueue(db)
    worker = InspectionWorker(queue, Inspector(db, default_language=language), SystemClock(),
                              owner="bench", workers=workers, poll_s=0.2, sweep_window_s=0)
    await worker.start()
    t0 = time.time()
    for i in range(n):
        queue.enqueue(f"{language}-{i}", "", time.time(), force=True)
    await worker.drain(1800)
    results = ResultStore(db).search(tenants=EVERY_TENANT, limit=n)
    lat = sorted(r.inspected_at - t0 for r in results)
    await worker.stop()
    print(f"queue {language}: {n} calls enqueued at once, {workers} worker(s): enqueue -> "
          f"result p50 {statistics.median(lat):.1f} s, p95 {lat[int(0.95 * (len(lat) - 1))]:.1f}"
          f" s, last {lat[-1]:.1f} s, {60 * n / lat[-1]:.1f} calls per wall minute")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--calls", type=int, default=6)
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--languages", default="en,zh")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-inspection-") as d:
        for lang in args.languages.split(","):
            url, _ = build(Path(d), args.calls, lang)
            direct(url, args.calls, lang)
            asyncio.run(queued(url, args.calls, lang, args.workers))


if __name__ == "__main__":
    main()
