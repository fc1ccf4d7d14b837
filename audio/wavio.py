"""WAV in and out: any WAV a user or a tool hands us to the engine's PCM, and mono/stereo out.

Reads with the stdlib ``wave`` module (PCM 8/16/24/32-bit) plus a small RIFF walk for what
``wave`` refuses: IEEE float, WAVE_FORMAT_EXTENSIBLE (espeak, sox and piper output vary) and
G.711 A-law/mu-law WAVs (telephony recordings often are). Every failure raises :class:`WavError`
naming the file, because a bad prompt is found by an operator reading a log line, not a
traceback. One reader serves media, recognisers and voiceprints alike.
"""

from __future__ import annotations

import io
import struct
import wave
from pathlib import Path
from typing import BinaryIO

import numpy as np
import numpy.typing as npt

from audio.g711 import alaw_decode, ulaw_decode
from audio.pcm import SAMPLE_RATE_HZ, AudioFormatError, FloatAudio, Pcm, to_float, to_int16
from audio.resample import resample

WAVE_FORMAT_PCM = 1
WAVE_FORMAT_IEEE_FLOAT = 3
WAVE_FORMAT_ALAW = 6
WAVE_FORMAT_MULAW = 7
WAVE_FORMAT_EXTENSIBLE = 0xFFFE

WavSource = str | Path | bytes | BinaryIO


class WavError(AudioFormatError):
    """A file that is not a readable WAV; the message names the file and the problem."""


def _samples_from_bytes(raw: bytes, width: int, tag: int, name: str) -> npt.NDArray:
    """Interleaved samples on the int16 scale (int16, or float64 for float WAVs)."""
    if tag == WAVE_FORMAT_IEEE_FLOAT:
        if width == 4:
            return np.clip(np.frombuffer(raw, "<f4") * 32768.0, -32768, 32767)
        if width == 8:
            return np.clip(np.frombuffer(raw, "<f8") * 32768.0, -32768, 32767)
        raise WavError(f"{name}: unsupported float sample width {width} bytes")
    if tag in (WAVE_FORMAT_ALAW, WAVE_FORMAT_MULAW):
        if width != 1:
            raise WavError(f"{name}: G.711 WAV with {width}-byte samples")
        return (alaw_decode if tag == WAVE_FORMAT_ALAW else ulaw_decode)(raw)
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
    raise WavError(f"{name}: unsupported sample width {width} bytes")


def _read_riff(name: str, data: bytes) -> tuple[npt.NDArray, int, int]:
    """Minimal RIFF walk for formats ``wave`` rejects (float, extensible, G.711)."""
    if len(data) < 12 or data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        raise WavError(f"{name}: not a WAV file (no RIFF/WAVE header)")
    pos = 12
    fmt: tuple[int, int, int, int] | None = None
    while pos + 8 <= len(data):
        cid, size = data[pos:pos + 4], struct.unpack_from("<I", data, pos + 4)[0]
        body = data[pos + 8:pos + 8 + size]
        if cid == b"fmt ":
            if len(body) < 16:
                raise WavError(f"{name}: fmt chunk too short ({len(body)} bytes)")
            tag, channels, rate, _, _, bits = struct.unpack_from("<HHIIHH", body)
            if tag == WAVE_FORMAT_EXTENSIBLE and len(body) >= 26:
                tag = struct.unpack_from("<H", body, 24)[0]
            fmt = (tag, channels, rate, bits)
        elif cid == b"data":
            if fmt is None:
                raise WavError(f"{name}: data chunk before fmt chunk")
            tag, channels, rate, bits = fmt
            known = (WAVE_FORMAT_PCM, WAVE_FORMAT_IEEE_FLOAT, WAVE_FORMAT_ALAW, WAVE_FORMAT_MULAW)
            if tag not in known or channels < 1:
                raise WavError(f"{name}: unsupported WAV format tag {tag} / {channels} channels")
            width = max(1, bits // 8)
            usable = len(body) - len(body) % (width * channels)
            return _samples_from_bytes(body[:usable], width, tag, name), channels, rate
        pos += 8 + size + (size & 1)
    raise WavError(f"{name}: no data chunk")


def _load_bytes(src: WavSource) -> tuple[str, bytes]:
    if isinstance(src, bytes):
        return "<bytes>", src
    if isinstance(src, str | Path):
        p = Path(src)
        try:
            return str(p), p.read_bytes()
        except OSError as exc:
            raise WavError(f"{p}: cannot read: {exc.strerror or exc}") from exc
    return getattr(src, "name", "<stream>"), src.read()


def read_wav_samples(src: WavSource) -> tuple[npt.NDArray, int, int]:
    """Raw samples (interleaved, int16 scale), channel count and rate."""
    name, data = _load_bytes(src)
    try:
        with wave.open(io.BytesIO(data), "rb") as w:
            ch, width, rate = w.getnchannels(), w.getsampwidth(), w.getframerate()
            raw = w.readframes(w.getnframes())
        return _samples_from_bytes(raw, width, WAVE_FORMAT_PCM, name), ch, rate
    except (wave.Error, EOFError, struct.error):
        return _read_riff(name, data)


def _mono(samples: npt.NDArray, channels: int) -> npt.NDArray[np.float64]:
    x = np.asarray(samples, dtype=np.float64)
    if channels > 1:
        x = x[: len(x) - len(x) % channels].reshape(-1, channels).mean(axis=1)
    return x


def read_wav(src: WavSource) -> tuple[Pcm, int]:
    """Any WAV as mono int16 at its own rate (channels averaged)."""
    samples, channels, rate = read_wav_samples(src)
    if rate <= 0:
        raise WavError(f"{_load_name(src)}: bad sample rate {rate}")
    if channels == 1 and samples.dtype == np.int16:
        return samples.copy(), rate
    return np.clip(np.rint(_mono(samples, channels)), -32768, 32767).astype(np.int16), rate


def read_wav_float(src: WavSource) -> tuple[FloatAudio, int]:
    """Any WAV as mono float32 in [-1, 1) at its own rate (what speaker encoders take)."""
    pcm, rate = read_wav(src)
    return to_float(pcm), rate


def load_wav(src: WavSource, rate: int = SAMPLE_RATE_HZ) -> Pcm:
    """Any WAV as mono int16 at ``rate`` (channels averaged, then resampled)."""
    samples, channels, src_rate = read_wav_samples(src)
    if src_rate <= 0:
        raise WavError(f"{_load_name(src)}: bad sample rate {src_rate}")
    return resample(_mono(samples, channels), src_rate, rate)


def _load_name(src: WavSource) -> str:
    return str(src) if isinstance(src, str | Path) else "<stream>"


def _as_int16(pcm: npt.NDArray) -> Pcm:
    """int16 as is; float samples are taken as [-1, 1] (the model-side convention)."""
    arr = np.asarray(pcm)
    return to_int16(arr) if np.issubdtype(arr.dtype, np.floating) else arr.astype(np.int16)


def wav_bytes(pcm: npt.NDArray, rate: int = SAMPLE_RATE_HZ) -> bytes:
    """A mono 16-bit WAV file's bytes (int16 samples, or floats in [-1, 1])."""
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(_as_int16(pcm).astype("<i2").tobytes())
    return buf.getvalue()


def write_wav(path: str | Path, pcm: npt.NDArray, rate: int = SAMPLE_RATE_HZ) -> None:
    """Write a mono 16-bit WAV (int16 samples, or floats in [-1, 1])."""
    Path(path).write_bytes(wav_bytes(pcm, rate))


def write_stereo_wav(path: str | Path, left: Pcm, right: Pcm, rate: int = SAMPLE_RATE_HZ) -> None:
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
