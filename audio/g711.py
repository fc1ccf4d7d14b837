"""G.711 μ-law (PCMU) and A-law (PCMA) by table lookup over numpy arrays.

Why tables: ``audioop`` is gone in Python 3.13 and a per-sample Python loop costs ~100x more. Each
direction is one fancy-index: decode is a 256-entry int16 table indexed by the payload bytes,
encode is a 65536-entry uint8 table indexed by the int16 sample reinterpreted as uint16. The
tables are built once at import (vectorised, ~ms) with the semantics of ITU-T G.191's reference
``g711.c`` (truncation to 14/13 bits, one's complement for negatives). sox rounds to 14/13 bits
instead of truncating, so it differs only on samples that are not multiples of 4 (μ) / 8 (A).
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from audio.pcm import SAMPLE_RATE_HZ, FloatAudio, Pcm, to_float, to_int16

_ULAW_BIAS = 0x84


def _ulaw_decode_table() -> npt.NDArray[np.int16]:
    out = np.empty(256, dtype=np.int16)
    for byte in range(256):
        u = ~byte & 0xFF
        t = ((u & 0x0F) << 3) + _ULAW_BIAS
        t <<= (u & 0x70) >> 4
        out[byte] = (_ULAW_BIAS - t) if u & 0x80 else (t - _ULAW_BIAS)
    return out


def _alaw_decode_table() -> npt.NDArray[np.int16]:
    out = np.empty(256, dtype=np.int16)
    for byte in range(256):
        a = byte ^ 0x55
        t = (a & 0x0F) << 4
        seg = (a & 0x70) >> 4
        if seg == 0:
            t += 8
        elif seg == 1:
            t += 0x108
        else:
            t = (t + 0x108) << (seg - 1)
        out[byte] = t if a & 0x80 else -t
    return out


def _bit_length(v: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
    out = np.zeros_like(v)
    for b in range(16):
        out += (v >> b) > 0
    return out


def _ulaw_encode_table() -> npt.NDArray[np.uint8]:
    """ITU-T G.191 ``ulaw_compress`` semantics: one's complement for negatives, 14-bit input."""
    lin = np.arange(65536, dtype=np.uint16).view(np.int16).astype(np.int64)
    absno = np.where(lin < 0, (~lin) >> 2, lin >> 2) + 33
    absno = np.minimum(absno, 0x1FFF)
    segno = _bit_length(absno >> 6) + 1
    low = 0x0F - ((absno >> segno) & 0x0F)
    out = ((8 - segno) << 4) | low
    out = np.where(lin >= 0, out | 0x80, out)
    return out.astype(np.uint8)


def _alaw_encode_table() -> npt.NDArray[np.uint8]:
    """ITU-T G.191 ``alaw_compress`` semantics: 13-bit input, even bits inverted (0x55)."""
    lin = np.arange(65536, dtype=np.uint16).view(np.int16).astype(np.int64)
    ix = np.where(lin < 0, (~lin) >> 4, lin >> 4)
    iexp = np.maximum(_bit_length(ix) - 4, 0)
    seg = np.where(ix > 15, (ix >> np.maximum(iexp - 1, 0)) - 16 + (iexp << 4), ix)
    seg = np.where(lin >= 0, seg | 0x80, seg)
    return (seg ^ 0x55).astype(np.uint8)


ULAW_DECODE = _ulaw_decode_table()
ALAW_DECODE = _alaw_decode_table()
ULAW_ENCODE = _ulaw_encode_table()
ALAW_ENCODE = _alaw_encode_table()


def ulaw_decode(payload: bytes) -> Pcm:
    """μ-law bytes to int16 samples."""
    return ULAW_DECODE.take(np.frombuffer(payload, dtype=np.uint8))


def alaw_decode(payload: bytes) -> Pcm:
    """A-law bytes to int16 samples."""
    return ALAW_DECODE.take(np.frombuffer(payload, dtype=np.uint8))


def ulaw_encode(pcm: Pcm) -> bytes:
    """int16 samples to μ-law bytes."""
    return ULAW_ENCODE.take(np.asarray(pcm, dtype=np.int16).view(np.uint16)).tobytes()


def alaw_encode(pcm: Pcm) -> bytes:
    """int16 samples to A-law bytes."""
    return ALAW_ENCODE.take(np.asarray(pcm, dtype=np.int16).view(np.uint16)).tobytes()


ULAW_SILENCE = 0xFF
ALAW_SILENCE = 0xD5


def telephone_band(audio: FloatAudio, rate: int) -> FloatAudio:
    """What a caller's audio looks like after a G.711 call: 8 kHz, mu-law companded (float).

    For evaluating recognisers and voiceprints on the band callers really have."""
    from audio.resample import resample_float  # noqa: PLC0415 - resample imports scipy lazily

    narrow = to_int16(resample_float(audio, rate, SAMPLE_RATE_HZ))
    return to_float(ulaw_decode(ulaw_encode(narrow)))
