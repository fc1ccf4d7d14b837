"""speaker_id.quality: each gate rule on real speech, and one negative per rule."""

from __future__ import annotations

import numpy as np
import pytest

from audio.pcm import WIDEBAND_RATE_HZ
from audio.resample import resample_float
from audio.wavio import read_wav_float
from speaker_id.quality import QualityGate, assess
from speaker_id.testdata import beckett


@pytest.fixture(scope="module")
def speech() -> np.ndarray:
    audio, rate = read_wav_float(beckett())  # 10 s of one real speaker
    return resample_float(audio, rate, WIDEBAND_RATE_HZ)


def test_clean_real_speech_passes(speech: np.ndarray) -> None:
    report = assess(speech, QualityGate())
    assert report.ok, report.problems
    assert 5.0 < report.speech_s <= report.duration_s
    assert report.snr_db > 15


def test_half_a_second_is_too_short(speech: np.ndarray) -> None:
    w = WIDEBAND_RATE_HZ
    report = assess(speech[int(1.0 * w) : int(1.5 * w)], QualityGate())
    assert "too_short" in report.problems
    assert not report.ok


def test_empty_audio_is_too_short() -> None:
    report = assess(np.zeros(0, np.float32), QualityGate())
    assert report.problems == ("too_short",)


def test_clipping_detected(speech: np.ndarray) -> None:
    report = assess(np.clip(speech * 30, -1, 1), QualityGate())
    assert "clipped" in report.problems


def test_quiet_speech_detected(speech: np.ndarray) -> None:
    report = assess(speech * 0.05, QualityGate(min_speech_s=0.2))
    assert "too_quiet" in report.problems


def test_noise_detected(speech: np.ndarray) -> None:
    rng = np.random.default_rng(0)
    noisy = speech + rng.normal(0, 0.1, len(speech)).astype(np.float32)
    assert "noisy" in assess(noisy, QualityGate()).problems


def test_gate_validates_fields() -> None:
    with pytest.raises(ValueError, match="min_speech_s"):
        QualityGate(min_speech_s=0)
    with pytest.raises(ValueError, match="vad_mode"):
        QualityGate(vad_mode=4)
    with pytest.raises(ValueError, match="max_clipped_ratio"):
        QualityGate(max_clipped_ratio=2)
