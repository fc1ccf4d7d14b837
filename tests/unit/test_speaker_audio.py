"""Audio as voiceprints take it (float WAV reading, G.711 WAVs, resampling) and fingerprints."""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import pytest

from audio.g711 import alaw_decode, telephone_band, ulaw_decode
from audio.pcm import AudioFormatError, to_float
from audio.resample import resample_float
from audio.wavio import read_wav_float, write_wav
from speaker_id.fingerprint import fingerprint, fingerprint_distance


def test_pcm_wav_round_trip_is_exact(tmp_path: Path) -> None:
    pcm = np.array([0, 1, -1, 32767, -32768, 1234], dtype=np.int16)
    write_wav(tmp_path / "a.wav", to_float(pcm), 8000)
    audio, rate = read_wav_float(tmp_path / "a.wav")
    assert rate == 8000
    assert np.array_equal(np.round(audio * 32768).astype(np.int16), pcm)


def _g711_wav(codes: bytes, fmt: int, rate: int = 8000) -> bytes:
    fmt_chunk = struct.pack("<HHIIHH", fmt, 1, rate, rate, 1, 8) + b"\x00\x00"
    body = (b"WAVE" + b"fmt " + struct.pack("<I", len(fmt_chunk)) + fmt_chunk
            + b"data" + struct.pack("<I", len(codes)) + codes)
    return b"RIFF" + struct.pack("<I", len(body)) + body


@pytest.mark.parametrize(("fmt", "decode"), [(7, ulaw_decode), (6, alaw_decode)])
def test_g711_wav_is_read(tmp_path: Path, fmt: int, decode: object) -> None:
    codes = bytes(range(256))
    (tmp_path / "g.wav").write_bytes(_g711_wav(codes, fmt))
    audio, rate = read_wav_float(tmp_path / "g.wav")
    expected = decode(np.frombuffer(codes, dtype=np.uint8))  # type: ignore[operator]
    assert rate == 8000
    assert np.array_equal(np.round(audio * 32768).astype(np.int16), expected)


def test_not_a_wav_names_the_file(tmp_path: Path) -> None:
    bad = tmp_path / "notes.wav"
    bad.write_bytes(b"hello, this is not audio at all")
    with pytest.raises(AudioFormatError, match="notes.wav"):
        read_wav_float(bad)


def test_pcm16_to_float_rejects_other_dtypes() -> None:
    with pytest.raises(AudioFormatError, match="int16"):
        to_float(np.zeros(10, dtype=np.int32))  # type: ignore[arg-type]


def test_resample_8k_to_16k_doubles_length_and_rejects_bad_rate() -> None:
    x = np.zeros(8000, dtype=np.float32)
    assert len(resample_float(x, 8000, 16000)) == 16000
    with pytest.raises(AudioFormatError, match="sample rate"):
        resample_float(x, 0, 16000)


def test_telephone_band_keeps_a_tone_and_removes_high_frequencies() -> None:
    t = np.arange(16000) / 16000
    low = (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
    high = (0.3 * np.sin(2 * np.pi * 6000 * t)).astype(np.float32)
    assert np.sqrt(np.mean(telephone_band(low, 16000) ** 2)) > 0.2
    assert np.sqrt(np.mean(telephone_band(high, 16000) ** 2)) < 0.01


def test_fingerprint_same_recording_close_other_far() -> None:
    rng = np.random.default_rng(7)
    a = rng.normal(0, 0.1, 48000).astype(np.float32)
    b = rng.normal(0, 0.1, 48000).astype(np.float32)
    fa = fingerprint(a, 16000)
    replay = resample_float(telephone_band(np.concatenate([np.zeros(1600, np.float32), a * 0.5]),
                                     16000), 8000, 16000)
    assert fingerprint_distance(fa, fingerprint(replay, 16000)) < 0.2
    assert fingerprint_distance(fa, fingerprint(b, 16000)) > 0.4


def test_fingerprint_of_too_short_audio_is_incomparable() -> None:
    fp = fingerprint(np.zeros(100, dtype=np.float32), 16000)
    assert fp.shape[0] == 0
    assert fingerprint_distance(fp, fp) == 1.0
