"""The PCM convention and its constants: 8 kHz mono int16 in 20 ms frames.

Every area (media, recognisers, speaker verification, flows) takes and gives this; other rates
and sample types exist only at the edges (files, 16 kHz model inputs) and are converted with
:mod:`audio.resample` and the helpers below.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

SAMPLE_RATE_HZ = 8000  # the telephone band the engine carries
FRAME_MS = 20  # one RTP packet, one VAD/recogniser step
FRAME_SAMPLES = SAMPLE_RATE_HZ * FRAME_MS // 1000  # 160
WIDEBAND_RATE_HZ = 16000  # what recognisers and speaker encoders take
INT16_FULL_SCALE = 32768.0

Pcm = npt.NDArray[np.int16]
FloatAudio = npt.NDArray[np.float32]  # samples in [-1, 1), model inputs only


class AudioFormatError(ValueError):
    """Audio we cannot use (a file or an array); the message names the file or the field."""


def to_float(pcm: Pcm) -> FloatAudio:
    """int16 samples -> float32 in [-1, 1) (what models take)."""
    arr = np.asarray(pcm)
    if arr.dtype != np.int16:
        raise AudioFormatError(f"pcm dtype must be int16, got {arr.dtype}")
    return (arr.astype(np.float32) / INT16_FULL_SCALE).reshape(-1)


def to_int16(audio: npt.NDArray[np.floating]) -> Pcm:
    """float samples in [-1, 1] -> int16, clipped (never wrapped)."""
    return np.clip(np.round(np.asarray(audio) * INT16_FULL_SCALE), -32768, 32767).astype(np.int16)


def frames(pcm: Pcm, size: int = FRAME_SAMPLES) -> list[Pcm]:
    """Split into fixed frames; the last one is zero-padded to ``size``."""
    out: list[Pcm] = []
    for i in range(0, len(pcm), size):
        f = pcm[i : i + size]
        if len(f) < size:
            f = np.concatenate([f, np.zeros(size - len(f), dtype=np.int16)])
        out.append(f)
    return out
