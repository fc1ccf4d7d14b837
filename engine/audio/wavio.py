"""WAV in and out: any PCM WAV to the engine's 8 kHz mono int16, and mono/two-leg stereo out.

Reads with the stdlib ``wave`` module (PCM 8/16/24/32-bit) plus a small RIFF fallback for IEEE
float and WAVE_FORMAT_EXTENSIBLE files that ``wave`` refuses, since espeak/sox/piper output vary.
Every failure raises :class:`WavError` naming the file, because a bad prompt is found by an
operator reading a log line, not a traceback.
"""

from __future__ import annotations

import struct
import wave
from pathlib import Path

import numpy as np
import numpy.typing as npt

from engine.audio.resample import resample

PCM = npt.NDArray[np.int16]


class WavError(ValueError):
    """A file that is not a readable WAV; the message names the file and the problem."""


def _samples_from_bytes(raw: bytes, width: int, fmt_float: bool, path: Path) -> npt.NDArray:
    if fmt_float:
        if width == 4:
            return np.clip(np.frombuffer(raw, "<f4") * 32768.0, -32768, 32767)
        if width == 8:
            return np.clip(np.frombuffer(raw, "<f8") * 32768.0, -32768, 32767)
        raise WavError(f"{path}: unsupported float sample width {width} bytes")
    if width == 1:
        return (np.frombuffer(raw, np.uint8).astype(np.int16) - 128) << 8
    if width == 2:
        return np.frombuffer(raw, "<i2")
    if width == 3:
        b = np.frombuffer(raw, np.uint8).reshape(-1, 3).astype(np.int32)
        v = b[:, 0] | (b[:, 1] << 8) | (b[:, 2] << 16)
        v = np.where(v & 0x800000, v - (1 << 24), v)
        return (v >> 8).astype(np.int16)
    if width == 4:
        return (np.frombuffer(raw, "<i4") >> 16).astype(np.int16)
    raise WavError(f"{path}: unsupported sample width {width} bytes")


def _read_riff(path: Path, data: bytes) -> tuple[npt.NDArray, int, int]:
    """Minimal RIFF walk for formats ``wave`` rejects (float, extensible)."""
    if len(data) < 12 or data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        raise WavError(f"{path}: not a WAV file (no RIFF/WAVE header)")
    pos = 12
    fmt: tuple[int, int, int, int] | None = None
    while pos + 8 <= len(data):
        cid, size = data[pos:pos + 4], struct.unpack_from("<I", data, pos + 4)[0]
        body = data[pos + 8:pos + 8 + size]
        if cid == b"fmt ":
            if len(body) < 16:
                raise WavError(f"{path}: fmt chunk too short ({len(body)} bytes)")
            tag, channels, rate, _, _, bits = struct.unpack_from("<HHIIHH", body)
            if tag == 0xFFFE and len(body) >= 26:
                tag = struct.unpack_from("<H", body, 24)[0]
            fmt = (tag, channels, rate, bits)
        elif cid == b"data":
            if fmt is None:
                raise WavError(f"{path}: data chunk before fmt chunk")
            tag, channels, rate, bits = fmt
            if tag not in (1, 3) or channels < 1:
                raise WavError(f"{path}: unsupported WAV format tag {tag} / {channels} channels")
            width = bits // 8
            usable = len(body) - len(body) % (width * channels)
            s = _samples_from_bytes(body[:usable], width, tag == 3, path)
            return s, channels, rate
        pos += 8 + size + (size & 1)
    raise WavError(f"{path}: no data chunk")


def read_wav(path: str | Path) -> tuple[npt.NDArray, int, int]:
    """Raw samples (interleaved, int16 scale), channel count and rate."""
    p = Path(path)
    try:
        data = p.read_bytes()
    except OSError as exc:
        raise WavError(f"{p}: cannot read: {exc.strerror or exc}") from exc
    try:
        with wave.open(str(p), "rb") as w:
            ch, width, rate = w.getnchannels(), w.getsampwidth(), w.getframerate()
            raw = w.readframes(w.getnframes())
        return _samples_from_bytes(raw, width, False, p), ch, rate
    except (wave.Error, EOFError, struct.error):
        return _read_riff(p, data)


def load_wav(path: str | Path, rate: int = 8000) -> PCM:
    """Load any WAV to mono int16 at ``rate`` (channels averaged, then resampled)."""
    samples, channels, src_rate = read_wav(path)
    if src_rate <= 0:
        raise WavError(f"{path}: bad sample rate {src_rate}")
    x = np.asarray(samples, dtype=np.float64)
    if channels > 1:
        x = x[: len(x) - len(x) % channels].reshape(-1, channels).mean(axis=1)
    return resample(x, src_rate, rate)


def write_wav(path: str | Path, pcm: PCM, rate: int = 8000) -> None:
    """Write mono int16 PCM."""
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(np.asarray(pcm, dtype="<i2").tobytes())


def write_stereo_wav(path: str | Path, left: PCM, right: PCM, rate: int = 8000) -> None:
    """Two-leg recording: caller on the left, engine on the right; shorter leg zero-padded."""
    n = max(len(left), len(right))
    st = np.zeros((n, 2), dtype="<i2")
    st[: len(left), 0] = left
    st[: len(right), 1] = right
    with wave.open(str(path), "wb") as w:
        w.setnchannels(2)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(st.tobytes())
