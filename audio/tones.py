"""Tone generation: sine tones, DTMF pairs, digit sequences and the beep before a recording.

Used by the engine (beep, in-band DTMF sending for trunks without RFC 4733) and by tests that
need exact, reproducible signals. Output is int16 at 8 kHz unless a rate is given.
"""

from __future__ import annotations

import numpy as np

from audio.pcm import Pcm

DTMF_LOW_HZ = (697, 770, 852, 941)
DTMF_HIGH_HZ = (1209, 1336, 1477, 1633)
DTMF_KEYS = ("123A", "456B", "789C", "*0#D")
DTMF_FREQS: dict[str, tuple[int, int]] = {
    key: (DTMF_LOW_HZ[r], DTMF_HIGH_HZ[c])
    for r, row in enumerate(DTMF_KEYS) for c, key in enumerate(row)
}


def dbfs_to_amplitude(dbfs: float) -> float:
    """Peak amplitude of a sine at ``dbfs`` (0 dBFS = full-scale sine)."""
    return 32767.0 * 10 ** (dbfs / 20.0)


def tone(freqs: tuple[float, ...] | float, duration_s: float, rate: int = 8000,
         dbfs: float | tuple[float, ...] = -10.0, phase: float = 0.0) -> Pcm:
    """Sum of sines; ``dbfs`` per component (a tuple gives each its own level)."""
    fs = (freqs,) if isinstance(freqs, int | float) else tuple(freqs)
    levels = (dbfs,) * len(fs) if isinstance(dbfs, int | float) else tuple(dbfs)
    if len(levels) != len(fs):
        raise ValueError(f"dbfs has {len(levels)} levels for {len(fs)} frequencies")
    t = np.arange(int(round(duration_s * rate))) / rate
    y = np.zeros_like(t)
    for f, lv in zip(fs, levels, strict=True):
        y += dbfs_to_amplitude(lv) * np.sin(2 * np.pi * f * t + phase)
    return np.clip(np.rint(y), -32768, 32767).astype(np.int16)


def silence(duration_s: float, rate: int = 8000) -> Pcm:
    return np.zeros(int(round(duration_s * rate)), dtype=np.int16)


def dtmf_tone(key: str, duration_s: float = 0.1, rate: int = 8000, dbfs: float = -10.0,
              twist_db: float = 0.0) -> Pcm:
    """One DTMF key; ``twist_db`` > 0 makes the high tone louder than the low one."""
    if key not in DTMF_FREQS:
        raise ValueError(f"unknown DTMF key {key!r}")
    low, high = DTMF_FREQS[key]
    return tone((low, high), duration_s, rate, (dbfs - twist_db / 2, dbfs + twist_db / 2))


def dtmf_sequence(keys: str, *, on_s: float = 0.08, off_s: float = 0.08, rate: int = 8000,
                  dbfs: float = -10.0, twist_db: float = 0.0, lead_s: float = 0.1) -> Pcm:
    """Keys separated by gaps, with silence around, as a keypad would send in-band."""
    parts = [silence(lead_s, rate)]
    for k in keys:
        parts.append(dtmf_tone(k, on_s, rate, dbfs, twist_db))
        parts.append(silence(off_s, rate))
    parts.append(silence(lead_s, rate))
    return np.concatenate(parts)


def beep(duration_s: float = 0.25, freq_hz: float = 1000.0, rate: int = 8000,
         dbfs: float = -12.0, fade_s: float = 0.01) -> Pcm:
    """The beep before a recording: a sine with short fades so it does not click."""
    y = tone(freq_hz, duration_s, rate, dbfs).astype(np.float64)
    n = min(int(fade_s * rate), len(y) // 2)
    if n:
        ramp = np.linspace(0.0, 1.0, n)
        y[:n] *= ramp
        y[-n:] *= ramp[::-1]
    return np.rint(y).astype(np.int16)


def add_noise(pcm: Pcm, snr_db: float, seed: int = 0) -> Pcm:
    """White Gaussian noise at ``snr_db`` relative to the signal's mean power over its non-silent
    10 ms blocks (so gaps between DTMF digits do not dilute the signal level)."""
    x = pcm.astype(np.float64)
    n = len(x) - len(x) % 80
    blocks = x[:n].reshape(-1, 80) if n else x.reshape(1, -1)
    energy = np.mean(blocks**2, axis=1)
    active = energy[energy > 0]
    power = float(np.mean(active)) if active.size else 1.0
    rng = np.random.default_rng(seed)
    noise = rng.normal(0.0, np.sqrt(power / 10 ** (snr_db / 10)), size=x.shape)
    return np.clip(np.rint(x + noise), -32768, 32767).astype(np.int16)
