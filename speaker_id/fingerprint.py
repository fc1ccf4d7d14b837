"""Audio fingerprints for replay detection: the same recording played twice through a phone.

Haitsma-Kalker style bits over the telephone band. A recording played again keeps its fine
time-frequency pattern (bit error rate ~0.03-0.3), while the same person saying the same words
again does not (~0.4-0.5), so a low distance to an earlier sample flags a replay.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from audio.pcm import SAMPLE_RATE_HZ, FloatAudio
from audio.resample import resample_float

FP_FRAME_S = 0.064
FP_HOP_S = 0.016
FP_BANDS = 17  # 16 energy differences -> 16 bits per frame
FP_LOW_HZ = 300.0
FP_HIGH_HZ = 3400.0  # the telephone band: a replay through a phone keeps these


def fingerprint(audio: FloatAudio, rate: int) -> npt.NDArray[np.uint8]:
    """Haitsma-Kalker style bits: sign of the band-energy difference across bands and time.

    Why: a recording played twice through the phone keeps its fine time-frequency pattern (bit
    error rate ~0.03-0.3), while the same person saying the same words again does not
    (~0.4-0.5). Returns a (frames, 16) array of 0/1.
    """
    x = resample_float(audio, rate, SAMPLE_RATE_HZ)
    n_fft = int(FP_FRAME_S * SAMPLE_RATE_HZ)
    hop = int(FP_HOP_S * SAMPLE_RATE_HZ)
    if len(x) < n_fft + 2 * hop:
        return np.zeros((0, FP_BANDS - 1), dtype=np.uint8)
    n = 1 + (len(x) - n_fft) // hop
    idx = np.arange(n_fft)[None, :] + hop * np.arange(n)[:, None]
    spec = np.abs(np.fft.rfft(x[idx] * np.hanning(n_fft), axis=1)) ** 2
    freqs = np.fft.rfftfreq(n_fft, 1.0 / SAMPLE_RATE_HZ)
    edges = np.geomspace(FP_LOW_HZ, FP_HIGH_HZ, FP_BANDS + 1)
    bands = np.stack(
        [spec[:, (freqs >= lo) & (freqs < hi)].sum(axis=1) for lo, hi in zip(edges[:-1], edges[1:],
                                                                            strict=True)],
        axis=1,
    )
    d = np.diff(bands, axis=1)  # across bands
    bits = (d[1:] - d[:-1]) > 0  # across time
    return bits.astype(np.uint8)


def fingerprint_distance(a: npt.NDArray[np.uint8], b: npt.NDArray[np.uint8],
                         max_shift_frames: int = 60, min_overlap_frames: int = 60) -> float:
    """Lowest bit error rate between two fingerprints over time shifts (1.0 when incomparable).

    Shifts cover the caller starting the same recording a little earlier or later (~1 s each way).
    """
    if len(a) == 0 or len(b) == 0:
        return 1.0
    best = 1.0
    for shift in range(-max_shift_frames, max_shift_frames + 1):
        if shift >= 0:
            x, y = a[shift:], b
        else:
            x, y = a, b[-shift:]
        n = min(len(x), len(y))
        if n < min_overlap_frames:
            continue
        ber = float(np.mean(x[:n] != y[:n]))
        best = min(best, ber)
    return best
