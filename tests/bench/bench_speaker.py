"""Speaker-verification benchmarks: embedding time per 3 s of audio, enrolment and verification
latency through the whole service, and the calibration report on the available real speech
(wide band and 8 kHz G.711), plus espeak-ng voices as a synthetic supplement.

Run: ``python -m tests.bench.bench_speaker [campplus|resemblyzer]`` (a minute on 2 cores).
Needs scripts/fetch_models.sh, scripts/fetch_test_audio.sh (real speech) and sox, espeak-ng.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from audio.g711 import telephone_band
from audio.pcm import WIDEBAND_RATE_HZ, to_int16
from audio.resample import resample_float
from speaker_id.backends import load_backend
from speaker_id.calibrate import calibrate_folder
from speaker_id.service import SpeakerService
from speaker_id.store import VoiceprintStore, generate_key, parse_key
from speaker_id.testdata import build_real_set, real_utterances
from storage.db import open_database

BACKEND = "campplus"
THRESHOLDS_BY_BACKEND = {"campplus": (0.30, 0.35, 0.40, 0.45, 0.50, 0.60),
                         "resemblyzer": (0.70, 0.75, 0.78, 0.80, 0.85)}
THRESHOLDS = THRESHOLDS_BY_BACKEND[BACKEND]
SERVICE_THRESHOLD = {"campplus": 0.40, "resemblyzer": 0.78}
TARGET_FAR = 0.01
ESPEAK_VOICES = [("en-us", 50), ("en-us", 80), ("en-gb", 40), ("en-us+f3", 60),
                 ("en-us+f2", 75), ("en-gb-scotland", 50), ("en-us+m3", 30)]
SENTENCES = [
    "Please verify my identity so that I can check the balance of my account.",
    "My voice is my password, and I would like to speak to an agent today.",
    "I moved to a new address last month and need to update my details.",
    "Could you tell me when my last payment was received by the bank?",
]


def _ms(samples: list[float]) -> str:
    s = sorted(samples)
    p95 = s[int(0.95 * (len(s) - 1))]
    return f"median {statistics.median(s) * 1000:.1f} ms, p95 {p95 * 1000:.1f} ms (n={len(s)})"


def bench_embedding() -> None:
    backend = load_backend(BACKEND, threads=1)
    audio, rate = real_utterances()["beckett"][0]
    three = resample_float(audio, rate, WIDEBAND_RATE_HZ)[: 3 * WIDEBAND_RATE_HZ]
    backend.embed(three)  # warm-up
    times, cpu = [], []
    for _ in range(30):
        t, c = time.perf_counter(), time.thread_time()
        backend.embed(three)
        times.append(time.perf_counter() - t)
        cpu.append(time.thread_time() - c)
    print(f"{BACKEND} embedding, 3 s of speech, 1 thread: wall {_ms(times)}; "
          f"CPU {_ms(cpu)}; load average {os.getloadavg()[0]:.1f}")


async def bench_service(tmp: Path) -> None:
    store = VoiceprintStore(open_database(f"sqlite:///{tmp / 'bench.sqlite'}"),
                            parse_key(generate_key()))
    svc = SpeakerService(store, load_backend(BACKEND, threads=1),
                         threshold=SERVICE_THRESHOLD[BACKEND])
    utts = real_utterances()
    call = {k: [to_int16(telephone_band(a, r)) for a, r in v] for k, v in utts.items()}
    enrol_t = []
    for i in range(10):
        t = time.perf_counter()
        res = await svc.enroll(f"p{i}", call["pyannote_spk91"][:2])
        enrol_t.append(time.perf_counter() - t)
        assert res.outcome == "enrolled", res
    print(f"enrolment (2 utterances, 6.2 s, 8 kHz in): {_ms(enrol_t)}")
    ver_t = []
    probe = call["beckett"][1]  # 3.3 s; a different person each time -> no replay hits
    for i in range(30):
        t = time.perf_counter()
        await svc.verify(f"p{i % 10}", probe)
        ver_t.append(time.perf_counter() - t)
    print(f"verification (3.3 s at 8 kHz: gate + embed + decrypt + replay check + audit): "
          f"{_ms(ver_t)}")
    # throughput with the loop's default executor (threads) and 20 concurrent verifications
    t = time.perf_counter()
    await asyncio.gather(*(svc.verify(f"p{i % 10}", probe) for i in range(20)))
    dt = time.perf_counter() - t
    print(f"20 concurrent verifications: {dt:.2f} s wall, {20 / dt:.1f} verifications/s")


def _espeak_set(folder: Path) -> Path:
    for voice, pitch in ESPEAK_VOICES:
        d = folder / f"{voice}_p{pitch}"
        d.mkdir(parents=True, exist_ok=True)
        for i, text in enumerate(SENTENCES):
            subprocess.run(["espeak-ng", "-v", voice, "-p", str(pitch), "-s", "150", "-w",
                            str(d / f"{i}.wav"), text], check=True, capture_output=True)
    return folder


def bench_calibration(tmp: Path) -> None:
    backend = load_backend(BACKEND, threads=1)
    real = build_real_set(tmp / "real")
    for telephone in (False, True):
        t = time.perf_counter()
        report = calibrate_folder(real, backend, telephone=telephone, thresholds=THRESHOLDS,
                                  target_far=TARGET_FAR)
        print(f"\n== real human speech ({time.perf_counter() - t:.1f} s)")
        print(report.render())
    synth = _espeak_set(tmp / "espeak")
    report = calibrate_folder(synth, backend, telephone=True, thresholds=THRESHOLDS,
                              target_far=TARGET_FAR)
    print("\n== synthetic supplement: espeak-ng voices/pitches as 'speakers'")
    print(report.render())


def main() -> None:
    global BACKEND, THRESHOLDS  # noqa: PLW0603 - a benchmark script's one knob
    if len(sys.argv) > 1:
        BACKEND = sys.argv[1]
        THRESHOLDS = THRESHOLDS_BY_BACKEND[BACKEND]
    print(f"cpu: {os.cpu_count()} cores; backend {BACKEND}, 1 thread per inference")
    bench_embedding()
    with tempfile.TemporaryDirectory(prefix="ivr-bench-spk-") as d:
        asyncio.run(bench_service(Path(d)))
        bench_calibration(Path(d))




if __name__ == "__main__":
    main()
