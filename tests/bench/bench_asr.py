"""Speech benchmark: RTF per engine, accuracy on the synthetic set, and turn latency under load.

Run: ``python -m tests.bench.bench_asr [--quick]``. Callers are piper/espeak-ng voices through sox
(noise, G.711). Turn latency is measured per caller turn with the real listen driver (silero VAD,
endpointer, recogniser in the bounded pool), N callers at once, each fed in real time by an
absolute 20 ms clock, starting at random offsets. Figures:

- ``final``: true end of speech (last audio above -50 dBFS) -> recogniser final text;
- ``answer``: -> first 20 ms frame of the answer prompt ready to send (decision = intent lookup,
  answer = cached TTS prompt read from the content-hash cache). The RTP send itself is the
  lead's (next frame tick, <= 20 ms) and is not included.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import statistics
import sys
import tempfile
import time
from collections.abc import AsyncIterator

import numpy as np

from asr.bargein import BargeInConfig, BargeInDetector
from asr.endpoint import EndpointConfig
from asr.intents import match_intent
from asr.ledger import LatencyLedger, TurnLatency, percentile
from asr.listen import ListenConfig, listen_turn
from asr.models import get_engine, load_seconds
from asr.pool import InferencePool
from asr.recognizer import Engine, RecognizerOptions
from asr.synth import speak, telephone
from asr.tts import TtsService
from asr.vad import SileroVad, make_vad
from audio.pcm import Pcm, frames
from core.call import AudioFrameEvent, CallEvent
from core.clock import SystemClock
from tests.integration.test_asr_models import GRAMMAR, INTENTS, SENTENCES

VOICES = [
    ("piper", 1.0, None),
    ("piper", 0.8, "pinknoise"),
    ("en-us", 1.0, None),
    ("en-gb", 1.0, "whitenoise"),
]
LEAD_S = 0.6
TAIL_S = 1.2


def speech_end_s(pcm: Pcm) -> float:
    n = len(pcm) // 80
    rms = np.sqrt(np.mean(pcm[: n * 80].astype(np.float64).reshape(n, 80) ** 2, axis=1))
    loud = np.nonzero(rms > 32768 * 10 ** (-50 / 20))[0]
    return (loud[-1] + 1) * 0.01


def build_set() -> list[tuple[str, tuple, Pcm]]:
    out = []
    for v in VOICES:
        for intent, text in SENTENCES.items():
            out.append((intent, v, telephone(speak(text, v[0], v[1]), 16000, noise=v[2])))
    return out


def recognise(engine: Engine, pcm: Pcm, opts: RecognizerOptions) -> tuple[str, float, float]:
    st = engine.open(opts)
    for f in frames(pcm):
        st.feed(f)
    r = st.finish()
    return r.text, r.timings["compute_s"], r.timings["audio_s"]


def accuracy_and_rtf(data: list[tuple[str, tuple, Pcm]]) -> None:
    cases = [
        ("pocketsphinx", RecognizerOptions(mode="grammar", grammar=GRAMMAR)),
        ("whisper", RecognizerOptions()),
    ]
    print("\n## accuracy / RTF (whole utterance, one stream)")
    for name, opts in cases:
        eng = get_engine(name)
        by_voice: dict[str, list[int]] = {}
        comp = aud = 0.0
        for intent, v, pcm in data:
            text, c, a = recognise(eng, pcm, opts)
            comp += c
            aud += a
            by_voice.setdefault(f"{v[0]}@{v[1]}{'+' + v[2] if v[2] else ''}", []).append(
                int(match_intent(text, INTENTS) == intent)
            )
        total = sum(sum(x) for x in by_voice.values())
        n = sum(len(x) for x in by_voice.values())
        detail = ", ".join(f"{k} {sum(x)}/{len(x)}" for k, x in by_voice.items())
        print(
            f"{name:13s} intents {total}/{n} ({100 * total / n:.0f}%)  "
            f"RTF {comp / aud:.3f}  [{detail}]"
        )
    ko = get_engine("vosk")
    phrases = ("잔액 조회", "상담원 연결", "카드 분실", "예", "아니요")
    comp = aud = 0.0
    hits = 0
    for p in phrases:
        text, c, a = recognise(
            ko,
            telephone(speak(p, "ko"), 16000),
            RecognizerOptions(mode="keywords", keywords=phrases),
        )
        comp += c
        aud += a
        hits += match_intent(text, {q: (q,) for q in phrases}) == p
    print(
        f"{'vosk (ko)':13s} keywords {hits}/{len(phrases)} (espeak-ng Korean)  RTF {comp / aud:.3f}"
    )
    print(
        "model load s: " + ", ".join(f"{k.split(':')[0]} {v:.2f}" for k, v in load_seconds.items())
    )


def vad_cost(data: list[tuple[str, tuple, Pcm]]) -> None:
    """CPU per 20 ms frame: what each listening call costs the event loop."""
    fs = [f for _, _, pcm in data[:10] for f in frames(pcm)]
    print("\n## VAD cost per 20 ms frame (on the event loop)")
    for name, vad in (("silero", SileroVad()), ("webrtc:3", make_vad("webrtc:3"))):
        t = time.process_time()
        for f in fs:
            vad.prob(f)
        us = (time.process_time() - t) / len(fs) * 1e6
        print(f"{name:9s} {us:6.1f} us/frame  = {us * 50 / 1e4:.2f}% of a core per listening call")


def barge_in() -> None:
    """Speech onset (first 10 ms above -50 dBFS) -> barge-in decision, silero + 40 ms rule."""
    print("\n## barge-in: speech onset -> decision (silero, min_speech 40 ms)")
    texts = {
        "voiced": ("no, I want an agent", "hello, operator please", "yes", "agent"),
        "unvoiced": ("stop, I want an agent", "sales please", "help"),
    }
    for kind, items in texts.items():
        lat = []
        for text in items:
            for voice in ("piper", "en-us", "en-gb+f3"):
                clean = telephone(speak(text, voice), 16000)
                n = len(clean) // 80
                rms = np.sqrt(np.mean(clean[: n * 80].astype(np.float64).reshape(n, 80) ** 2, 1))
                onset = np.nonzero(rms > 32768 * 10 ** (-50 / 20))[0][0] * 0.01
                pcm = np.concatenate([np.zeros(16000, np.int16), clean])
                det, vad = BargeInDetector(BargeInConfig()), SileroVad()
                for i, f in enumerate(frames(pcm)):
                    ev = det.on_frame(vad.prob(f), i * 0.02)
                    if ev:
                        lat.append((ev.at - 2.0 - onset) * 1000)
                        break
        print(
            f"{kind:8s} onsets: n={len(lat)} p50 {percentile(lat, 50):.0f} ms  "
            f"p95 {percentile(lat, 95):.0f} ms  max {max(lat):.0f} ms"
        )


async def caller(pcm: Pcm, t0: float, clock: SystemClock) -> AsyncIterator[CallEvent]:
    for i, f in enumerate(frames(pcm)):
        await clock.sleep_until(t0 + (i + 1) * 0.02)
        yield AudioFrameEvent(f, clock.now())


async def one_turn(
    *,
    idx: int,
    item: tuple[str, tuple, Pcm],
    engine: Engine,
    cfg: ListenConfig,
    pool: InferencePool,
    tts: TtsService,
    answer: dict[str, str],
    kind: str,
    ledger: LatencyLedger,
    stagger_s: float,
) -> tuple[bool, float, float]:
    clock = SystemClock()
    intent, _, speech = item
    pcm = np.concatenate(
        [np.zeros(int(LEAD_S * 8000), np.int16), speech, np.zeros(int(TAIL_S * 8000), np.int16)]
    )
    await asyncio.sleep(stagger_s)
    t0 = clock.now()
    true_end = t0 + LEAD_S + speech_end_s(speech)
    turn = TurnLatency(
        f"call-{idx}", "menu", budget_ms=600 if kind == "grammar" else 900, kind=kind
    )
    r = await listen_turn(caller(pcm, t0, clock), engine, SileroVad(), pool, clock, config=cfg)
    got = match_intent(r.text, INTENTS)
    final_at = r.timings.get("final", clock.now())
    turn.marks["speech_end"] = true_end
    turn.marks["recognizer_final"] = final_at
    turn.mark("decision", clock.now())
    text = answer.get(got or "", "Sorry, once more?")
    prompt = tts.lookup(text) or await pool.run("tts", 5.0, tts.render, text)
    turn.mark("first_audio", clock.now())
    assert len(prompt.pcm) >= 160
    ledger.add(turn)
    return got == intent, (final_at - true_end) * 1000, turn.total_ms or 0.0


async def load_run(
    *,
    n: int,
    data,
    engine: Engine,
    opts: RecognizerOptions,
    hangover_ms: int,
    kind: str,
    tts: TtsService,
    answer: dict[str, str],
    spread_s: float = 2.0,
) -> None:
    """N callers whose turns start uniformly within ``spread_s``: 2 s is a burst (everyone
    answers the same menu at once); 10 s is steady state (a turn per caller every ~10 s)."""
    pool = InferencePool(2, clock=SystemClock())
    cfg = ListenConfig(
        endpoint=EndpointConfig(hangover_ms=hangover_ms),
        options=opts,
        final_timeout_s=30.0,
        feed_timeout_s=30.0,
    )
    ledger = LatencyLedger()
    rnd = random.Random(n)
    cpu0 = time.process_time()
    wall0 = time.perf_counter()
    picks = [data[rnd.randrange(len(data))] for _ in range(n)]
    res = await asyncio.gather(
        *[
            one_turn(
                idx=i,
                item=it,
                engine=engine,
                cfg=cfg,
                pool=pool,
                tts=tts,
                answer=answer,
                kind=kind,
                ledger=ledger,
                stagger_s=rnd.uniform(0, spread_s),
            )
            for i, it in enumerate(picks)
        ]
    )
    wall = time.perf_counter() - wall0
    cpu = time.process_time() - cpu0
    pool.shutdown()
    finals = [r[1] for r in res]
    answers = [r[2] for r in res]
    ok = sum(r[0] for r in res)
    print(
        f"{kind:7s} {engine.name:12s} N={n:3d} within {spread_s:2.0f}s hangover={hangover_ms}ms"
        f"  final p50/p95/p99 "
        f"{percentile(finals, 50):4.0f}/{percentile(finals, 95):4.0f}/"
        f"{percentile(finals, 99):4.0f} ms"
        f"  answer p50/p95/p99 {percentile(answers, 50):4.0f}/{percentile(answers, 95):4.0f}/"
        f"{percentile(answers, 99):4.0f} ms  intents {ok}/{n}  cpu {100 * cpu / wall:.0f}% "
        f"over_budget {sum(1 for t in ledger.turns if t.over_budget)}  "
        f"loadavg {os.getloadavg()[0]:.1f}"
    )


async def mixed_run(
    *,
    n: int,
    data,
    sph: Engine,
    wh: Engine,
    tts: TtsService,
    answer: dict[str, str],
    spread_s: float = 2.0,
) -> None:
    """Half menu callers, half free-text callers, one pool: the whisper lane limit must keep
    menu turns fast while free-text decodes queue."""
    pool = InferencePool(2, clock=SystemClock())
    cfgs = {
        "grammar": ListenConfig(
            endpoint=EndpointConfig(hangover_ms=200),
            final_timeout_s=30.0,
            feed_timeout_s=30.0,
            options=RecognizerOptions(mode="grammar", grammar=GRAMMAR),
        ),
        "free": ListenConfig(
            endpoint=EndpointConfig(hangover_ms=300), final_timeout_s=30.0, feed_timeout_s=30.0
        ),
    }
    ledger = LatencyLedger()
    rnd = random.Random(n + 7)
    jobs = []
    for i in range(n):
        kind = "grammar" if i % 2 == 0 else "free"
        jobs.append(
            one_turn(
                idx=i,
                item=data[rnd.randrange(len(data))],
                engine=sph if kind == "grammar" else wh,
                cfg=cfgs[kind],
                pool=pool,
                tts=tts,
                answer=answer,
                kind=kind,
                ledger=ledger,
                stagger_s=rnd.uniform(0, spread_s),
            )
        )
    await asyncio.gather(*jobs)
    pool.shutdown()
    for kind, row in ledger.summary().items():
        print(
            f"mixed   {kind:7s} {int(row['turns']):2d} of N={n} within {spread_s:.0f}s  answer "
            f"p50/p95/p99 {row['p50_ms']:4.0f}/{row['p95_ms']:4.0f}/{row['p99_ms']:4.0f} ms  "
            f"over_budget {int(row['over_budget'])}  loadavg {os.getloadavg()[0]:.1f}"
        )


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="N=1,10 only")
    args = ap.parse_args()
    print(
        f"machine: {os.cpu_count()} cores, python {sys.version.split()[0]}, "
        f"load average before: {os.getloadavg()[0]:.2f}"
    )
    t = time.perf_counter()
    data = build_set()
    print(
        f"synthetic set: {len(data)} utterances ({len(VOICES)} voices x {len(SENTENCES)} intents),"
        f" built in {time.perf_counter() - t:.1f}s, "
        f"mean {statistics.mean(len(d[2]) for d in data) / 8000:.2f}s"
    )
    accuracy_and_rtf(data)
    vad_cost(data)
    barge_in()
    answers = {k: f"You chose {k}. One moment." for k in INTENTS}
    with tempfile.TemporaryDirectory() as d:
        tts = TtsService(d)
        for text in [*answers.values(), "Sorry, once more?"]:
            tts.render(text)  # prompts are pre-rendered at flow publish time
        print("\n## turn latency, real-time callers")
        print("(true speech end -> recogniser final / -> answer audio ready)")
        ns = (1, 10) if args.quick else (1, 10, 50)
        sph = get_engine("pocketsphinx")
        sph.prewarm(RecognizerOptions(mode="grammar", grammar=GRAMMAR), max(ns))  # at publish
        wh = get_engine("whisper")
        grammar = RecognizerOptions(mode="grammar", grammar=GRAMMAR)
        runs = [(n, 2.0) for n in ns] + ([] if args.quick else [(50, 10.0)])
        for eng, opts, hang, kind in (
            (sph, grammar, 200, "grammar"),
            (wh, RecognizerOptions(), 300, "free"),
        ):
            for n, spread in runs:
                asyncio.run(
                    load_run(
                        n=n,
                        data=data,
                        engine=eng,
                        opts=opts,
                        hangover_ms=hang,
                        kind=kind,
                        tts=tts,
                        answer=answers,
                        spread_s=spread,
                    )
                )
        for n in (10,) if args.quick else (10, 50):
            asyncio.run(mixed_run(n=n, data=data, sph=sph, wh=wh, tts=tts, answer=answers))


if __name__ == "__main__":
    main()
