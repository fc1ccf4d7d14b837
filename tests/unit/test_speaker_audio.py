"""speaker_id.audio: G.711 byte-exact against the reference coder, WAV reading, fingerprints."""

from __future__ import annotations

import struct
import warnings
from pathlib import Path

import numpy as np
import pytest

from speaker_id.audio import (
    AudioFormatError,
    alaw_decode,
    fingerprint,
    fingerprint_distance,
    mulaw_decode,
    mulaw_encode,
    pcm16_to_float,
    read_wav,
    resample,
    telephone_band,
    write_wav,
)

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    import audioop  # the CPython reference G.711 coder (removed in 3.13; fine on 3.11)


def test_mulaw_encode_matches_reference_for_every_sample() -> None:
    pcm = np.arange(-32768, 32768, dtype=np.int16)
    ref = np.frombuffer(audioop.lin2ulaw(pcm.tobytes(), 2), dtype=np.uint8)
    assert np.array_equal(mulaw_encode(pcm), ref)


def test_g711_decoders_match_reference_for_every_code() -> None:
    codes = np.arange(256, dtype=np.uint8)
    assert np.array_equal(mulaw_decode(codes),
                          np.frombuffer(audioop.ulaw2lin(codes.tobytes(), 2), dtype=np.int16))
    assert np.array_equal(alaw_decode(codes),
                          np.frombuffer(audioop.alaw2lin(codes.tobytes(), 2), dtype=np.int16))


def test_pcm_wav_round_trip_is_exact(tmp_path: Path) -> None:
    pcm = np.array([0, 1, -1, 32767, -32768, 1234], dtype=np.int16)
    write_wav(tmp_path / "a.wav", pcm16_to_float(pcm), 8000)
    audio, rate = read_wav(tmp_path / "a.wav")
    assert rate == 8000
    assert np.array_equal(np.round(audio * 32768).astype(np.int16), pcm)


def _g711_wav(codes: bytes, fmt: int, rate: int = 8000) -> bytes:
    fmt_chunk = struct.pack("<HHIIHH", fmt, 1, rate, rate, 1, 8) + b"\x00\x00"
    body = (b"WAVE" + b"fmt " + struct.pack("<I", len(fmt_chunk)) + fmt_chunk
            + b"data" + struct.pack("<I", len(codes)) + codes)
    return b"RIFF" + struct.pack("<I", len(body)) + body


@pytest.mark.parametrize(("fmt", "decode"), [(7, mulaw_decode), (6, alaw_decode)])
def test_g711_wav_is_read(tmp_path: Path, fmt: int, decode: object) -> None:
    codes = bytes(range(256))
    (tmp_path / "g.wav").write_bytes(_g711_wav(codes, fmt))
    audio, rate = read_wav(tmp_path / "g.wav")
    expected = decode(np.frombuffer(codes, dtype=np.uint8))  # type: ignore[operator]
    assert rate == 8000
    assert np.array_equal(np.round(audio * 32768).astype(np.int16), expected)


def test_not_a_wav_names_the_file(tmp_path: Path) -> None:
    bad = tmp_path / "notes.wav"
    bad.write_bytes(b"hello, this is not audio at all")
    with pytest.raises(AudioFormatError, match="notes.wav"):
        read_wav(bad)


def test_pcm16_to_float_rejects_other_dtypes() -> None:
    with pytest.raises(AudioFormatError, match="int16"):
        pcm16_to_float(np.zeros(10, dtype=np.int32))  # type: ignore[arg-type]


def test_resample_8k_to_16k_doubles_length_and_rejects_bad_rate() -> None:
    x = np.zeros(8000, dtype=np.float32)
    assert len(resample(x, 8000, 16000)) == 16000
    with pytest.raises(AudioFormatError, match="sample rate"):
        resample(x, 0, 16000)


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
    replay = resample(telephone_band(np.concatenate([np.zeros(1600, np.float32), a * 0.5]),
                                     16000), 8000, 16000)
    assert fingerprint_distance(fa, fingerprint(replay, 16000)) < 0.2
    assert fingerprint_distance(fa, fingerprint(b, 16000)) > 0.4


def test_fingerprint_of_too_short_audio_is_incomparable() -> None:
    fp = fingerprint(np.zeros(100, dtype=np.float32), 16000)
    assert fp.shape[0] == 0
    assert fingerprint_distance(fp, fp) == 1.0
