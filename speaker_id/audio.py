"""Audio plumbing for speaker verification: WAV in, resampling, the telephone band, fingerprints.

Everything is pure numpy/scipy so the same code runs in tests, the CLI and the executor. Inside the
engine audio is 8 kHz mono int16; the encoders want 16 kHz float32 in [-1, 1].
"""

from __future__ import annotations

import wave
from math import gcd
from pathlib import Path

import numpy as np
import numpy.typing as npt
from scipy.signal import resample_poly

Float32 = npt.NDArray[np.float32]
Int16 = npt.NDArray[np.int16]

ENGINE_RATE_HZ = 8000
ENCODER_RATE_HZ = 16000
INT16_FULL_SCALE = 32768.0


class AudioFormatError(ValueError):
    """The file or array is not audio we can use; the message names the file and field."""


def read_wav(path: str | Path) -> tuple[Float32, int]:
    """Read a PCM WAV (8/16/32-bit, any rate, mono or stereo) as mono float32 and its rate.

    Only the stdlib ``wave`` reader: no libsndfile dependency. Other formats: convert with sox.
    """
    p = Path(path)
    try:
        with wave.open(str(p), "rb") as w:
            channels, width, rate = w.getnchannels(), w.getsampwidth(), w.getframerate()
            raw = w.readframes(w.getnframes())
    except (wave.Error, EOFError) as e:
        g711 = _read_g711_wav(p)  # telephony recordings are often mu-law/A-law WAVs
        if g711 is not None:
            return g711
        raise AudioFormatError(f"{p}: not a PCM or G.711 WAV file ({e}); convert with sox") from e
    if width == 2:
        data = np.frombuffer(raw, dtype="<i2").astype(np.float32) / INT16_FULL_SCALE
    elif width == 4:
        data = (np.frombuffer(raw, dtype="<i4").astype(np.float64) / 2**31).astype(np.float32)
    elif width == 1:
        data = (np.frombuffer(raw, dtype=np.uint8).astype(np.float32) - 128.0) / 128.0
    else:
        raise AudioFormatError(f"{p}: sample width {width} bytes is not supported")
    if channels > 1:
        data = data.reshape(-1, channels).mean(axis=1).astype(np.float32)
    return data, rate


WAVE_FORMAT_ALAW = 6
WAVE_FORMAT_MULAW = 7


def _read_g711_wav(path: Path) -> tuple[Float32, int] | None:
    """Mono/stereo 8-bit A-law (format 6) or mu-law (format 7) WAV, else None."""
    data = path.read_bytes()
    if len(data) < 12 or data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        return None
    pos, fmt, rate, channels, body = 12, -1, 0, 1, b""
    while pos + 8 <= len(data):
        cid, size = data[pos : pos + 4], int.from_bytes(data[pos + 4 : pos + 8], "little")
        chunk = data[pos + 8 : pos + 8 + size]
        if cid == b"fmt " and len(chunk) >= 16:
            fmt = int.from_bytes(chunk[0:2], "little")
            channels = int.from_bytes(chunk[2:4], "little") or 1
            rate = int.from_bytes(chunk[4:8], "little")
        elif cid == b"data":
            body = chunk
        pos += 8 + size + (size & 1)
    if fmt not in (WAVE_FORMAT_ALAW, WAVE_FORMAT_MULAW) or rate <= 0:
        return None
    codes = np.frombuffer(body, dtype=np.uint8)
    pcm = mulaw_decode(codes) if fmt == WAVE_FORMAT_MULAW else alaw_decode(codes)
    x = pcm.astype(np.float32) / INT16_FULL_SCALE
    if channels > 1:
        x = x[: len(x) - len(x) % channels].reshape(-1, channels).mean(axis=1)
    return x.astype(np.float32), rate


def write_wav(path: str | Path, audio: Float32, rate: int) -> None:
    """Write mono float32 audio as 16-bit PCM (used by tests and the calibration tooling)."""
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(to_int16(audio).astype("<i2").tobytes())


def pcm16_to_float(pcm: Int16) -> Float32:
    """Engine frames (int16) -> float32 in [-1, 1)."""
    arr = np.asarray(pcm)
    if arr.dtype != np.int16:
        raise AudioFormatError(f"pcm dtype must be int16, got {arr.dtype}")
    return (arr.astype(np.float32) / INT16_FULL_SCALE).reshape(-1)


def to_int16(audio: Float32) -> Int16:
    return np.clip(np.round(audio * INT16_FULL_SCALE), -32768, 32767).astype(np.int16)


def resample(audio: Float32, src_rate: int, dst_rate: int) -> Float32:
    """Polyphase resampling (exact for 8k<->16k, the path every call takes)."""
    if src_rate <= 0:
        raise AudioFormatError(f"sample rate must be positive, got {src_rate}")
    if src_rate == dst_rate:
        return audio.astype(np.float32, copy=False)
    g = gcd(src_rate, dst_rate)
    return resample_poly(audio, dst_rate // g, src_rate // g).astype(np.float32)


# --- G.711 mu-law (ITU-T G.711, the segment/mantissa form), for telephone-band simulation -------

_MULAW_BIAS = 0x84
_MULAW_CLIP14 = 8159
_MULAW_SEG_END = np.array([0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF, 0x1FFF])


def mulaw_encode(pcm: Int16) -> npt.NDArray[np.uint8]:
    """Sun's reference G.711 coder (14-bit magnitude), byte-identical to ``audioop.lin2ulaw``."""
    x = np.asarray(pcm, dtype=np.int32) >> 2
    mask = np.where(x < 0, 0x7F, 0xFF)
    mag = np.minimum(np.abs(x), _MULAW_CLIP14) + (_MULAW_BIAS >> 2)
    seg = np.searchsorted(_MULAW_SEG_END, mag, side="left")
    uval = np.where(seg >= 8, 0x7F, (seg << 4) | ((mag >> (seg + 1)) & 0x0F))
    return (uval ^ mask).astype(np.uint8)


def mulaw_decode(code: npt.NDArray[np.uint8]) -> Int16:
    u = (~np.asarray(code, dtype=np.int32)) & 0xFF
    sign = u & 0x80
    exponent = (u >> 4) & 0x07
    mantissa = u & 0x0F
    mag = (((mantissa << 3) + _MULAW_BIAS) << exponent) - _MULAW_BIAS
    return np.where(sign != 0, -mag, mag).astype(np.int16)


def alaw_decode(code: npt.NDArray[np.uint8]) -> Int16:
    a = np.asarray(code, dtype=np.int32) ^ 0x55
    sign = a & 0x80
    exponent = (a >> 4) & 0x07
    mantissa = a & 0x0F
    mag = np.where(exponent == 0, (mantissa << 4) + 8, ((mantissa << 4) + 0x108) << (exponent - 1))
    return np.where(sign != 0, mag, -mag).astype(np.int16)


def telephone_band(audio: Float32, rate: int) -> Float32:
    """What a caller's audio looks like after a G.711 call: 8 kHz, mu-law companded, at 8 kHz."""
    narrow = resample(audio, rate, ENGINE_RATE_HZ)
    return pcm16_to_float(mulaw_decode(mulaw_encode(to_int16(narrow))))


# --- audio fingerprint for replay detection -----------------------------------------------------

FP_FRAME_S = 0.064
FP_HOP_S = 0.016
FP_BANDS = 17  # 16 energy differences -> 16 bits per frame
FP_LOW_HZ = 300.0
FP_HIGH_HZ = 3400.0  # the telephone band: a replay through a phone keeps these


def fingerprint(audio: Float32, rate: int) -> npt.NDArray[np.uint8]:
    """Haitsma-Kalker style bits: sign of the band-energy difference across bands and time.

    Why: a recording played twice through the phone keeps its fine time-frequency pattern (bit
    error rate ~0.03-0.3), while the same person saying the same words again does not
    (~0.4-0.5). Returns a (frames, 16) array of 0/1.
    """
    x = resample(audio, rate, ENGINE_RATE_HZ)
    n_fft = int(FP_FRAME_S * ENGINE_RATE_HZ)
    hop = int(FP_HOP_S * ENGINE_RATE_HZ)
    if len(x) < n_fft + 2 * hop:
        return np.zeros((0, FP_BANDS - 1), dtype=np.uint8)
    n = 1 + (len(x) - n_fft) // hop
    idx = np.arange(n_fft)[None, :] + hop * np.arange(n)[:, None]
    spec = np.abs(np.fft.rfft(x[idx] * np.hanning(n_fft), axis=1)) ** 2
    freqs = np.fft.rfftfreq(n_fft, 1.0 / ENGINE_RATE_HZ)
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
