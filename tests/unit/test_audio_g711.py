"""G.711 tables: bit-exact against ITU-T G.191's reference code (written slowly here) and sox."""

from __future__ import annotations

import shutil
import subprocess
import warnings
import wave
from pathlib import Path

import numpy as np
import pytest

from audio import g711

ALL16 = np.arange(65536, dtype=np.uint16).view(np.int16)


# --- ITU-T G.191 (STL) g711.c, transcribed one sample at a time -------------------------
def ref_ulaw_compress(lin: int) -> int:
    absno = ((~lin) >> 2) + 33 if lin < 0 else (lin >> 2) + 33
    absno = min(absno, 0x1FFF)
    i = absno >> 6
    segno = 1
    while i != 0:
        segno += 1
        i >>= 1
    high = 0x08 - segno
    low = 0x0F - ((absno >> segno) & 0x0F)
    out = (high << 4) | low
    return out | 0x80 if lin >= 0 else out


def ref_ulaw_expand(code: int) -> int:
    sign = -1 if code < 0x80 else 1
    mantissa = ~code
    exponent = (mantissa >> 4) & 0x07
    segment = exponent + 1
    mantissa &= 0x0F
    step = 4 << segment
    return sign * ((0x80 << exponent) + step * mantissa + step // 2 - 4 * 33)


def ref_alaw_compress(lin: int) -> int:
    ix = (~lin) >> 4 if lin < 0 else lin >> 4
    if ix > 15:
        iexp = 1
        while ix > 16 + 15:
            ix >>= 1
            iexp += 1
        ix -= 16
        ix += iexp << 4
    if lin >= 0:
        ix |= 0x80
    return ix ^ 0x55


def ref_alaw_expand(code: int) -> int:
    ix = (code ^ 0x55) & 0x7F
    iexp = ix >> 4
    mant = ix & 0x0F
    if iexp > 0:
        mant += 16
    mant = (mant << 4) + 0x08
    if iexp > 1:
        mant <<= iexp - 1
    return mant if code > 127 else -mant


def sun_ulaw(lin: int) -> int:
    """Sun/sox linear2ulaw, only to explain the documented sox difference."""
    pcm = lin >> 2
    mask = 0xFF
    if pcm < 0:
        pcm, mask = -pcm, 0x7F
    pcm = min(pcm, 8159) + 33
    seg = next((i for i, end in enumerate((0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF,
                                             0x1FFF)) if pcm <= end), 8)
    return ((seg << 4) | ((pcm >> (seg + 1)) & 0x0F)) ^ mask


def test_ulaw_encode_bit_exact_all_65536() -> None:
    ref = bytes(ref_ulaw_compress(int(v)) for v in ALL16)
    assert g711.ulaw_encode(ALL16) == ref


def test_alaw_encode_bit_exact_all_65536() -> None:
    ref = bytes(ref_alaw_compress(int(v)) for v in ALL16)
    assert g711.alaw_encode(ALL16) == ref


def test_decode_tables_bit_exact() -> None:
    codes = bytes(range(256))
    assert g711.ulaw_decode(codes).tolist() == [ref_ulaw_expand(c) for c in codes]
    assert g711.alaw_decode(codes).tolist() == [ref_alaw_expand(c) for c in codes]


def test_known_points() -> None:
    assert g711.ulaw_encode(np.array([0], np.int16)) == b"\xff"
    assert g711.alaw_encode(np.array([0], np.int16)) == b"\xd5"
    assert g711.ulaw_decode(b"\x00").tolist() == [-32124]
    assert g711.alaw_decode(b"\xaa").tolist() == [32256]


def test_round_trip_is_idempotent() -> None:
    for enc, dec in ((g711.ulaw_encode, g711.ulaw_decode), (g711.alaw_encode, g711.alaw_decode)):
        once = dec(enc(ALL16))
        assert np.array_equal(dec(enc(once)), once)
        err = np.abs(once.astype(np.int32) - ALL16.astype(np.int32))
        # quantisation error bounded by half the largest step
        assert err.max() <= 1024


def _sox(*args: str) -> None:
    if shutil.which("sox") is None:
        pytest.fail("sox is not installed (scripts/apt-packages.txt)")
    subprocess.run(["sox", "-D", *args], check=True, capture_output=True)


def _data_chunk(path: Path) -> bytes:
    d = path.read_bytes()
    i = d.index(b"data")
    n = int.from_bytes(d[i + 4:i + 8], "little")
    return d[i + 8:i + 8 + n]


@pytest.mark.parametrize(("encoding", "step", "encode"),
                         [("u-law", 4, g711.ulaw_encode), ("a-law", 8, g711.alaw_encode)])
def test_encode_matches_sox(tmp_path: Path, encoding: str, step: int, encode: object) -> None:
    # sox rounds to 14/13 bits where G.711 truncates, so compare on exact 14/13-bit values
    x = (np.arange(-32768, 32768, step)).astype(np.int16)
    src = tmp_path / "in.wav"
    with wave.open(str(src), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(8000)
        w.writeframes(x.tobytes())
    out = tmp_path / "out.wav"
    _sox(str(src), "-e", encoding, str(out))
    got = np.frombuffer(_data_chunk(out), np.uint8)
    ours = np.frombuffer(encode(x), np.uint8)  # type: ignore[operator]
    differ = np.nonzero(got != ours)[0]
    if encoding == "a-law":
        assert differ.size == 0
    else:
        # sox (Sun g711.c) takes the magnitude of a negative sample as -(x>>2); G.191 as
        # (~x)>>2. They disagree exactly on negative multiples of 4 that sit on a decision
        # boundary: one code step apart, nowhere else.
        sun = np.array([sun_ulaw(int(v)) for v in x[differ]], np.uint8)
        assert np.array_equal(got[differ], sun)
        assert np.all(x[differ] < 0)
        assert np.all(np.abs(got[differ].astype(int) - ours[differ].astype(int)) == 1)
        assert differ.size < 200


@pytest.mark.parametrize(("encoding", "decode"),
                         [("u-law", g711.ulaw_decode), ("a-law", g711.alaw_decode)])
def test_decode_matches_sox(tmp_path: Path, encoding: str, decode: object) -> None:
    raw = tmp_path / "codes.raw"
    raw.write_bytes(bytes(range(256)))
    out = tmp_path / "dec.wav"
    _sox("-t", "raw", "-r", "8000", "-e", encoding, "-b", "8", "-c", "1", str(raw),
         "-e", "signed", "-b", "16", str(out))
    got = np.frombuffer(_data_chunk(out), "<i2")
    assert got.tolist() == decode(bytes(range(256))).tolist()  # type: ignore[operator]


def test_encoder_differs_from_cpython_audioop_only_by_g191_rounding() -> None:
    """CPython's audioop (Sun's coder) rounds negative samples the other way from G.191; the
    two disagree on 508 negative samples just below a segment step, by one code."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        import audioop  # removed in 3.13; fine on 3.11

    pcm = np.arange(-32768, 32768, dtype=np.int16)
    ours = np.frombuffer(g711.ulaw_encode(pcm), np.uint8).astype(int)
    ref = np.frombuffer(audioop.lin2ulaw(pcm.tobytes(), 2), np.uint8).astype(int)
    differ = ours != ref
    assert differ.sum() == 508 and (pcm[differ] < 0).all()
    assert np.abs(ours[differ] - ref[differ]).max() == 1
    codes = np.arange(256, dtype=np.uint8).tobytes()
    assert g711.ulaw_decode(codes).tobytes() == audioop.ulaw2lin(codes, 2)
    assert g711.alaw_decode(codes).tobytes() == audioop.alaw2lin(codes, 2)
