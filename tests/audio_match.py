"""Is the audio a peer received the audio that was sent? Helpers for tests on real calls.

* :func:`best_correlation`: one normalised cross-correlation peak over the whole signal, about 1
  when ``needle`` occurs unchanged in ``haystack``. Right when nothing in between re-times the
  audio (a file played to a sink, Asterisk's transcoding).
* :func:`block_snrs`: per 100 ms block, tracked from the global peak. Right when real-time
  playout sits in between: a jitter buffer may stall a tick on an underrun or drop a frame when
  it shrinks (a loaded box makes both likely), so one lag for the whole signal would turn a
  single 20 ms shift into a failed test; a shift spoils only the block it falls in.
"""

from __future__ import annotations

import numpy as np

BLOCK = 800  # 100 ms blocks at 8 kHz
SEARCH = 480  # how far (60 ms) a block may have moved from the one before it
SPEECH_RMS = 300  # quieter source blocks are pauses: nothing to compare


def best_correlation(needle: np.ndarray, haystack: np.ndarray) -> float:
    """Max normalised cross-correlation of ``needle`` anywhere in ``haystack``."""
    a = needle.astype(np.float64) - needle.mean()
    b = haystack.astype(np.float64)
    if len(a) == 0 or len(b) < len(a) or not a.any():
        return 0.0
    n = len(b) + len(a)
    size = 1 << (n - 1).bit_length()
    corr = np.fft.irfft(np.fft.rfft(b, size) * np.conj(np.fft.rfft(a, size)), size)[
        : len(b) - len(a) + 1]
    windows = np.convolve(b * b, np.ones(len(a)), "valid")
    sums = np.convolve(b, np.ones(len(a)), "valid")
    energy = np.sqrt(np.maximum(windows - sums * sums / len(a), 1e-9) * float((a * a).sum()))
    return float(np.max(corr / energy))


def global_lag(source: np.ndarray, recorded: np.ndarray) -> int:
    """Where ``source`` starts in ``recorded``: the peak of their cross-correlation (FFT)."""
    s = source.astype(np.float64)
    r = recorded.astype(np.float64)
    n = 1 << (len(s) + len(r)).bit_length()
    xc = np.fft.irfft(np.fft.rfft(r, n) * np.conj(np.fft.rfft(s, n)), n)
    lag = int(np.argmax(xc))
    return lag if lag < n // 2 else lag - n


def block_snrs(source: np.ndarray, recorded: np.ndarray) -> tuple[np.ndarray, list[int]]:
    """SNR (dB) of each speech block of ``source`` found in ``recorded``, and the lags used.

    Each block is searched within +-SEARCH samples of the previous block's lag; its gain is the
    least-squares fit and its noise is what is left after subtracting the scaled source."""
    s = source.astype(np.float64)
    r = np.concatenate([np.zeros(SEARCH), recorded.astype(np.float64), np.zeros(SEARCH + BLOCK)])
    lag = global_lag(source, recorded)
    snrs, lags = [], []
    for b in range(0, len(s) - BLOCK + 1, BLOCK):
        blk = s[b: b + BLOCK]
        if np.sqrt(np.mean(blk**2)) < SPEECH_RMS:
            continue
        lo = max(0, b + lag)  # index into the padded recording of (b + lag - SEARCH)
        win = r[lo: lo + BLOCK + 2 * SEARCH]
        if len(win) < BLOCK + 2 * SEARCH:
            snrs.append(-99.0)  # the recording ended before the source did
            continue
        energy = np.convolve(win**2, np.ones(BLOCK), "valid")
        xc = np.correlate(win, blk, "valid") / np.sqrt(np.maximum(energy, 1e-9))
        k = int(np.argmax(xc))  # normalised: a loud neighbour does not win by loudness
        lag = lo + k - SEARCH - b
        seg = win[k: k + BLOCK]
        gain = float(np.dot(blk, seg) / np.dot(blk, blk))
        noise = float(np.sum((seg - gain * blk) ** 2))
        signal = float(np.sum((gain * blk) ** 2))
        snrs.append(10 * np.log10(max(signal, 1e-9) / max(noise, 1e-9)))
        lags.append(lag)
    return np.array(snrs), lags
