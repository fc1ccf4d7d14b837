"""Answering-machine detection: the cadence rules on made-up signals (each rule on its own),
and the accuracy on the labelled set of real and synthesized answers (tests/amd_corpus.py)."""

from __future__ import annotations

import numpy as np
import pytest

from asr.vad import make_vad
from audio.tones import tone
from campaigns.amd import AmdParams, MachineDetector, tone_of
from tests.amd_corpus import build, evaluate, frames_of


def _speech_like(seconds: float, seed: int = 0) -> np.ndarray:
    """Noise with a syllable envelope: voiced for the energy VAD, never a pure tone."""
    rng = np.random.default_rng(seed)
    n = int(seconds * 8000)
    env = 0.6 + 0.4 * np.sin(np.arange(n) / 8000 * 2 * np.pi * 4)
    return (rng.normal(0, 3000, n) * env).astype(np.int16)


def _run(pcm: np.ndarray, *, wait_for_beep: bool = False) -> MachineDetector:
    det = MachineDetector(AmdParams(), wait_for_beep=wait_for_beep)
    vad = make_vad("energy")
    for frame in frames_of(pcm):
        det.feed(frame, vad.prob(frame) >= 0.5)
        if det.done:
            break
    return det


def _quiet(seconds: float) -> np.ndarray:
    return np.zeros(int(seconds * 8000), dtype=np.int16)


def test_short_greeting_then_silence_is_human() -> None:
    det = _run(np.concatenate([_quiet(0.5), _speech_like(0.6), _quiet(3)]))
    assert det.decision is not None and det.decision.label == "human"
    assert det.decision.at_ms == pytest.approx(500 + 600 + 800, abs=60)


def test_long_greeting_is_machine_and_the_beep_end_is_found() -> None:
    audio = np.concatenate([_quiet(0.3), _speech_like(3.0), _quiet(0.4),
                            tone(1000.0, 0.5, 8000), _quiet(1.0)])
    det = _run(audio, wait_for_beep=True)
    assert det.decision is not None and det.decision.label == "machine"
    assert det.decision.at_ms < 2500  # decided during the greeting, not at its end
    assert det.beep_end_ms == pytest.approx((0.3 + 3.0 + 0.4 + 0.5) * 1000, abs=40)
    assert det.beep_hz == pytest.approx(1000, abs=30)


def test_many_short_words_are_a_machine() -> None:
    words = []
    for i in range(6):
        words += [_speech_like(0.25, i), _quiet(0.15)]
    det = _run(np.concatenate([_quiet(0.2), *words, _quiet(2)]))
    assert det.decision is not None and det.decision.label == "machine"


def test_fax_tone_and_dead_air() -> None:
    assert _run(np.concatenate([_quiet(0.2), tone(2100.0, 3.0, 8000)])).decision.label == "fax"
    silent = _run(_quiet(6))
    assert silent.decision is not None and silent.decision.label == "silence"
    assert silent.decision.at_ms == 3500


def test_a_tone_inside_speech_is_not_the_beep() -> None:
    audio = np.concatenate([_speech_like(2.5), tone(800.0, 0.3, 8000), _speech_like(1.0),
                            _quiet(2)])
    det = _run(audio, wait_for_beep=True)
    assert det.decision is not None and det.decision.label == "machine"
    assert det.beep_end_ms is None


def test_tone_of_finds_pure_tones_only() -> None:
    assert tone_of(tone(1400.0, 0.02, 8000)) == pytest.approx(1400, abs=15)
    assert tone_of(_speech_like(0.02)) is None
    assert tone_of(_quiet(0.02)) is None


@pytest.mark.slow
def test_accuracy_on_real_and_synthesized_answers() -> None:
    """The labelled set (real people's short answers and real readings as greetings, plus
    synthesized English and Mandarin): at least 90 % right, every class at least 85 %, every
    beep of a detected machine found within 50 ms."""
    items = build()
    assert sum(1 for i in items if i.label == "human" and i.source.startswith(("pocket", "py",
               "moon", "CMU", "TIDI", "Libri"))) >= 10  # real people, not only synthesis
    ev = evaluate(items, lambda: make_vad("webrtc:2"))
    assert ev.accuracy >= 0.9, ev.table()
    for label in ("human", "machine", "fax", "silence"):
        assert ev.recall(label) >= 0.85, (label, ev.table(), ev.wrong)
    assert ev.beeps_missed == 0 and all(abs(e) <= 50 for e in ev.beep_errors_ms)
