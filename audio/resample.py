"""Rational-ratio resampling between any rate and the engine's 8 kHz (or 16 kHz for models).

``scipy.signal.resample_poly`` applies a Kaiser-windowed anti-alias FIR at the reduced ratio
``up/down``, which is both good quality (no aliasing from 16 kHz speech folding into the
telephone band) and cheap for the common 2:1 and 147:80 (44.1 kHz) cases. Prompts are resampled
once when cached, so this never runs per packet. Live 20 ms frames going to a 16 kHz recogniser
use :class:`Upsampler2x` instead, whose filter state spans frames: resampling each frame on its
own leaves edge clicks that cost accuracy.
"""

from __future__ import annotations

from math import gcd

import numpy as np
import numpy.typing as npt

from audio.pcm import SAMPLE_RATE_HZ, WIDEBAND_RATE_HZ, AudioFormatError, FloatAudio, Pcm


def _resample_poly(x: npt.NDArray[np.float64], src_rate: int, dst_rate: int) -> npt.NDArray:
    if src_rate <= 0 or dst_rate <= 0:
        raise AudioFormatError(f"sample rates must be positive, got src_rate={src_rate} "
                               f"dst_rate={dst_rate}")
    if x.ndim != 1:
        raise AudioFormatError(f"resample expects mono (1-D) samples, got shape {x.shape}")
    if src_rate == dst_rate:
        return x
    # scipy.signal costs ~0.7 s to import: loaded on first use, not when the CLI starts.
    from scipy.signal import resample_poly  # noqa: PLC0415

    g = gcd(src_rate, dst_rate)
    return np.asarray(resample_poly(x, dst_rate // g, src_rate // g))


def resample(pcm: Pcm | npt.NDArray[np.floating], src_rate: int, dst_rate: int) -> Pcm:
    """Resample mono samples (int16 scale) from ``src_rate`` to ``dst_rate``; int16 out,
    clipped not wrapped."""
    x = np.asarray(pcm)
    if src_rate == dst_rate and x.dtype == np.int16 and x.ndim == 1:
        return x
    y = _resample_poly(x.astype(np.float64), src_rate, dst_rate)
    return np.clip(np.rint(y), -32768, 32767).astype(np.int16)


def resample_float(audio: FloatAudio, src_rate: int, dst_rate: int) -> FloatAudio:
    """Resample float audio in [-1, 1] (model inputs); float32 out."""
    x = np.asarray(audio)
    if src_rate == dst_rate and x.ndim == 1:
        return x.astype(np.float32, copy=False)
    return _resample_poly(x.astype(np.float64), src_rate, dst_rate).astype(np.float32)


def to_8k(pcm: Pcm, src_rate: int) -> Pcm:
    return resample(pcm, src_rate, SAMPLE_RATE_HZ)


def to_16k(pcm: Pcm, src_rate: int = SAMPLE_RATE_HZ) -> Pcm:
    return resample(pcm, src_rate, WIDEBAND_RATE_HZ)


class Upsampler2x:
    """Streaming 2x upsampler (zero-stuff + low-pass FIR) whose filter state spans calls."""

    TAPS = 63

    def __init__(self) -> None:
        from scipy.signal import firwin  # noqa: PLC0415 - see _resample_poly

        self._h = (firwin(self.TAPS, 0.5) * 2.0).astype(np.float64)
        self._zi = np.zeros(self.TAPS - 1)

    def process(self, pcm: Pcm) -> Pcm:
        from scipy.signal import lfilter  # noqa: PLC0415 - see _resample_poly

        stuffed = np.zeros(len(pcm) * 2)
        stuffed[::2] = pcm
        out, self._zi = lfilter(self._h, 1.0, stuffed, zi=self._zi)
        return np.clip(np.rint(out), -32768, 32767).astype(np.int16)

    def flush(self) -> Pcm:
        """The filter's tail (its group delay), so the last phoneme is not cut."""
        return self.process(np.zeros(self.TAPS // 4 + 1, dtype=np.int16))
