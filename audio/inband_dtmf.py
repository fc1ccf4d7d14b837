"""In-band DTMF detection (Goertzel) for trunks that send neither RFC 4733 nor SIP INFO.

Why these choices:

* Blocks of 102 samples (12.75 ms at 8 kHz), as spandsp does: long enough to separate 697 from
  770 Hz, short enough that a 40 ms tone fills two whole blocks wherever it starts. Frames of any
  size are buffered into blocks, so ``feed`` takes the engine's 160-sample frames.
* All 16 Goertzel filters (8 DTMF tones + their 2nd harmonics) for all blocks of a frame run as
  one real matrix product; the per-block decisions then use plain floats, ~10 µs per frame.
* A block is a *hit* only if every test passes: both tones above an absolute floor, twist within
  limits (normal: high tone louder; reverse: low tone louder), each tone clearly above the other
  tones of its group, the pair carrying most of the block's total power (speech spreads its power
  over many frequencies), and weak 2nd harmonics (voiced speech is rich in them, DTMF is not).
* A digit is reported once, on the 2nd consecutive hit (>= 25.5 ms of tone), and may be reported
  again only after 2 consecutive non-hit blocks (a gap >= 25.5 ms), so a long press is one digit.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from audio.pcm import SAMPLE_RATE_HZ
from audio.tones import DTMF_HIGH_HZ, DTMF_KEYS, DTMF_LOW_HZ

BLOCK_SAMPLES = 102
HITS_TO_START = 2
MISSES_TO_END = 2
MAX_NORMAL_TWIST_DB = 10.0  # high group louder than low group
MAX_REVERSE_TWIST_DB = 10.0  # low group louder than high group
MIN_TONE_DBFS = -36.0  # per tone, relative to a full-scale sine
MIN_RELATIVE_PEAK_DB = 6.0  # chosen tone above the other tones of its group
MIN_PAIR_POWER_FRACTION = 0.70  # the two tones' share of the block's total power
MAX_HARMONIC_DB = -12.0  # 2nd harmonic relative to its fundamental

_FREQS = np.array(DTMF_LOW_HZ + DTMF_HIGH_HZ, dtype=np.float64)
_ALL_FREQS = np.concatenate([_FREQS, 2 * _FREQS])
_N = np.arange(BLOCK_SAMPLES)
# Goertzel power of filter f over a block x is (x·cos_f)^2 + (x·sin_f)^2: stacking the 16 cos and
# 16 sin rows into one real (102 x 32) matrix turns every block of a frame into one matmul.
_PHASE = 2 * np.pi * np.outer(_N, _ALL_FREQS) / SAMPLE_RATE_HZ
_BASIS: npt.NDArray[np.float32] = np.ascontiguousarray(
    np.concatenate([np.cos(_PHASE), np.sin(_PHASE)], axis=1), dtype=np.float32)
_NF = len(_ALL_FREQS)

# A full-scale sine of amplitude 32767 gives Goertzel power (A*N/2)^2.
_MIN_TONE_POWER = (10 ** (MIN_TONE_DBFS / 20) * 32767 * BLOCK_SAMPLES / 2) ** 2
_TWIST_NORMAL = 10 ** (MAX_NORMAL_TWIST_DB / 10)
_TWIST_REVERSE = 10 ** (MAX_REVERSE_TWIST_DB / 10)
_REL_PEAK = 10 ** (MIN_RELATIVE_PEAK_DB / 10)
_HARMONIC = 10 ** (MAX_HARMONIC_DB / 10)
_PAIR_SCALE = 2.0 / BLOCK_SAMPLES / MIN_PAIR_POWER_FRACTION
# Cauchy-Schwarz: a filter's power is at most N * block energy, so a block (or a whole frame)
# with less energy than this cannot reach the tone floor and the filters can be skipped.
_SILENT_ENERGY = _MIN_TONE_POWER / BLOCK_SAMPLES


def _powers(blocks: npt.NDArray[np.float32]) -> list[list[float]]:
    """(k, 102) blocks -> per block the 32 squared projections (cos² then sin² per filter);
    the filter power is ``r[f] + r[f + 16]``, summed in Python only where it is needed."""
    y = blocks @ _BASIS
    y *= y
    return y.tolist()


def _classify(r: list[float], block: npt.NDArray[np.float32]) -> str | None:
    """The per-block tests on plain floats (cheaper than numpy scalars for 16 values); the
    block's energy is only computed for the few blocks that pass the cheap tests first."""
    power = [r[f] + r[f + _NF] for f in range(8)]
    pl = max(power[0], power[1], power[2], power[3])
    ph = max(power[4], power[5], power[6], power[7])
    if pl < _MIN_TONE_POWER or ph < _MIN_TONE_POWER:
        return None
    if ph > pl * _TWIST_NORMAL or pl > ph * _TWIST_REVERSE:
        return None
    # the pair must carry most of the block's energy (a sine's Goertzel power is energy*N/2)
    if (pl + ph) * _PAIR_SCALE < float(np.dot(block, block)):
        return None
    li = power.index(pl)
    hi = power.index(ph, 4) - 4
    for j in range(4):
        if j != li and power[j] * _REL_PEAK > pl:
            return None
        if j != hi and power[4 + j] * _REL_PEAK > ph:
            return None
    # 2nd harmonic of the high tone only: the low tones' harmonics (1394..1882 Hz) sit inside the
    # high group, within one bin of a real high tone, so they would measure leakage, not speech.
    if r[12 + hi] + r[12 + hi + _NF] > ph * _HARMONIC:
        return None
    return DTMF_KEYS[li][hi]


def classify_block(block: npt.NDArray[np.floating]) -> str | None:
    """The DTMF key present in one block of ``BLOCK_SAMPLES`` samples, or ``None``."""
    x = np.asarray(block, dtype=np.float32).reshape(1, BLOCK_SAMPLES)
    return _classify(_powers(x)[0], x[0])


class InbandDtmfDetector:
    """Streaming detector: ``feed(frame)`` returns the digits that started in that frame."""

    def __init__(self, max_frame: int = 480) -> None:
        self._buf = np.zeros(BLOCK_SAMPLES + max_frame, dtype=np.float32)
        self._fill = 0
        self._candidate: str | None = None
        self._hits = 0
        self._misses = MISSES_TO_END
        self._reported: str | None = None
        self.blocks = 0

    def reset(self) -> None:
        self._fill = 0
        self._candidate = None
        self._hits = 0
        self._misses = MISSES_TO_END
        self._reported = None

    def feed(self, frame: npt.NDArray[np.int16]) -> list[str]:
        n = len(frame)
        if self._fill + n > len(self._buf):
            grown = np.zeros(self._fill + n, dtype=np.float32)
            grown[: self._fill] = self._buf[: self._fill]
            self._buf = grown
        buf = self._buf
        buf[self._fill:self._fill + n] = frame
        total = self._fill + n
        k = total // BLOCK_SAMPLES
        if k == 0:
            self._fill = total
            return []
        used = k * BLOCK_SAMPLES
        blocks = buf[:used].reshape(k, BLOCK_SAMPLES)
        out: list[str] = []
        if float(np.dot(buf[:used], buf[:used])) < _SILENT_ENERGY:
            # too quiet to hold two tones above the floor: skip the filters (most of a call)
            for _ in range(k):
                self._step(None)
            self.blocks += k
            buf[: total - used] = buf[used:total]
            self._fill = total - used
            return out
        powers = _powers(blocks)
        for i, pw in enumerate(powers):
            d = self._step(_classify(pw, blocks[i]))
            if d is not None:
                out.append(d)
        self.blocks += k
        rest = total - used
        if rest:  # after classifying: the blocks view the same buffer
            buf[:rest] = buf[used:total]
        self._fill = rest
        return out

    def _step(self, key: str | None) -> str | None:
        if key is None:
            self._hits = 0
            self._candidate = None
            self._misses += 1
            if self._misses >= MISSES_TO_END:
                self._reported = None
            return None
        self._misses = 0
        if key == self._candidate:
            self._hits += 1
        else:
            self._candidate = key
            self._hits = 1
        if self._hits >= HITS_TO_START and key != self._reported:
            self._reported = key
            return key
        return None
