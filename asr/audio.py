"""PCM helpers: WAV I/O, rate conversion and a streaming 8 -> 16 kHz upsampler.

Recognisers want 16 kHz; calls carry 8 kHz. Whole buffers go through ``resample_poly``; live
frames go through :class:`Upsampler2x`, the same polyphase filter with its state carried between
calls, because resampling each 20 ms frame on its own leaves edge clicks that cost accuracy.
"""

from __future__ import annotations

import io
import math
import wave
from pathlib import Path
from typing import BinaryIO

import numpy as np
import numpy.typing as npt
from scipy.signal import firwin, lfilter, resample_poly

Pcm = npt.NDArray[np.int16]


def resample(pcm: Pcm, rate_in: int, rate_out: int) -> Pcm:
    """Resample a whole int16 buffer (polyphase, anti-aliased), clipped back to int16."""
    if rate_in == rate_out:
        return pcm.astype(np.int16, copy=False)
    g = math.gcd(rate_in, rate_out)
    out = resample_poly(pcm.astype(np.float32), rate_out // g, rate_in // g)
    return np.clip(np.rint(out), -32768, 32767).astype(np.int16)


def to_float(pcm: Pcm) -> npt.NDArray[np.float32]:
    return (pcm.astype(np.float32) / 32768.0).astype(np.float32, copy=False)


class Upsampler2x:
    """Streaming 2x upsampler (zero-stuff + low-pass FIR) whose filter state spans calls."""

    TAPS = 63

    def __init__(self) -> None:
        self._h = (firwin(self.TAPS, 0.5) * 2.0).astype(np.float64)
        self._zi = np.zeros(self.TAPS - 1)

    def process(self, pcm: Pcm) -> Pcm:
        stuffed = np.zeros(len(pcm) * 2)
        stuffed[::2] = pcm
        out, self._zi = lfilter(self._h, 1.0, stuffed, zi=self._zi)
        return np.clip(np.rint(out), -32768, 32767).astype(np.int16)

    def flush(self) -> Pcm:
        """The filter's tail (its group delay), so the last phoneme is not cut."""
        return self.process(np.zeros(self.TAPS // 4 + 1, dtype=np.int16))


def read_wav(path: str | Path | BinaryIO) -> tuple[Pcm, int]:
    """Read a mono/stereo 16-bit PCM WAV (path or file object); stereo is averaged to mono."""
    with wave.open(path if not isinstance(path, str | Path) else str(path), "rb") as w:
        if w.getsampwidth() != 2:
            raise ValueError(f"{path}: sample width {w.getsampwidth() * 8} bits, need 16-bit PCM")
        rate = w.getframerate()
        channels = w.getnchannels()
        data = np.frombuffer(w.readframes(w.getnframes()), dtype=np.int16)
    if channels > 1:
        data = data.reshape(-1, channels).mean(axis=1).astype(np.int16)
    return data.copy(), rate


def load_wav_8k(path: str | Path) -> Pcm:
    """Any 16-bit WAV as the engine's 8 kHz mono int16."""
    pcm, rate = read_wav(path)
    return resample(pcm, rate, 8000)


def wav_bytes(pcm: Pcm, rate: int) -> bytes:
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(pcm.astype("<i2").tobytes())
    return buf.getvalue()


def write_wav(path: str | Path, pcm: Pcm, rate: int) -> None:
    Path(path).write_bytes(wav_bytes(pcm, rate))


def frames(pcm: Pcm, size: int = 160) -> list[Pcm]:
    """Split into fixed frames; the last one is zero-padded to ``size``."""
    out: list[Pcm] = []
    for i in range(0, len(pcm), size):
        f = pcm[i : i + size]
        if len(f) < size:
            f = np.concatenate([f, np.zeros(size - len(f), dtype=np.int16)])
        out.append(f)
    return out
