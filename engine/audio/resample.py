"""Rational-ratio resampling between any rate and the engine's 8 kHz (or 16 kHz for recognisers).

``scipy.signal.resample_poly`` applies a Kaiser-windowed anti-alias FIR at the reduced ratio
``up/down``, which is both good quality (no aliasing from 16 kHz speech folding into the
telephone band) and cheap for the common 2:1 and 147:80 (44.1 kHz) cases. Prompts are resampled
once when cached, so this never runs per packet.
"""

from __future__ import annotations

from math import gcd

import numpy as np
import numpy.typing as npt


def resample(pcm: npt.NDArray[np.int16] | npt.NDArray[np.floating], src_rate: int,
             dst_rate: int) -> npt.NDArray[np.int16]:
    """Resample mono samples from ``src_rate`` to ``dst_rate``; int16 out, clipped not wrapped."""
    if src_rate <= 0 or dst_rate <= 0:
        raise ValueError(f"sample rates must be positive, got src_rate={src_rate} "
                         f"dst_rate={dst_rate}")
    x = np.asarray(pcm)
    if x.ndim != 1:
        raise ValueError(f"resample expects mono (1-D) samples, got shape {x.shape}")
    if src_rate == dst_rate:
        return x.astype(np.int16, copy=False) if x.dtype == np.int16 else _to_int16(x)
    # scipy.signal costs ~0.7 s to import: loaded on first use, not when the CLI starts.
    from scipy.signal import resample_poly  # noqa: PLC0415

    g = gcd(src_rate, dst_rate)
    y = resample_poly(x.astype(np.float64), dst_rate // g, src_rate // g)
    return _to_int16(y)


def _to_int16(y: npt.NDArray[np.floating] | npt.NDArray[np.int16]) -> npt.NDArray[np.int16]:
    return np.clip(np.rint(y), -32768, 32767).astype(np.int16)


def to_8k(pcm: npt.NDArray[np.int16], src_rate: int) -> npt.NDArray[np.int16]:
    return resample(pcm, src_rate, 8000)


def to_16k(pcm: npt.NDArray[np.int16], src_rate: int = 8000) -> npt.NDArray[np.int16]:
    return resample(pcm, src_rate, 16000)
