"""RTP (RFC 3550 §5) packet codec and RFC 5761 RTP/RTCP demultiplexing.

Pure: bytes in, :class:`RtpPacket` out and back, byte-exact. The header extension is kept raw
(profile + words) because the engine never interprets one but must not lose it when relaying.
The fast path reads the fixed header with a single ``struct.unpack_from`` call since parse runs
once per received packet (50 per second per call, 1,000 calls).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

RTP_VERSION = 2
RTP_HEADER_BYTES = 12
RTP_SEQ_MOD = 1 << 16
RTP_TS_MOD = 1 << 32
RTCP_PT_MIN = 200  # SR
RTCP_PT_MAX = 204  # APP

_HEADER = struct.Struct("!BBHII")
_EXT_HEADER = struct.Struct("!HH")


class RtpError(ValueError):
    """A datagram that is not a valid RTP packet; the message names the failing field."""


@dataclass(slots=True)
class RtpPacket:
    """One RTP packet. ``extension`` is ``(profile, raw_words)`` or ``None``.

    ``padding`` is the number of padding bytes (0 = no P bit); on serialize the padding bytes are
    zeros followed by the count, as RFC 3550 §5.1 requires.
    """

    payload_type: int
    sequence: int
    timestamp: int
    ssrc: int
    payload: bytes = b""
    marker: bool = False
    csrc: list[int] = field(default_factory=list)
    extension: tuple[int, bytes] | None = None
    padding: int = 0
    version: int = RTP_VERSION

    def serialize(self) -> bytes:
        """Return the wire form; raises :class:`RtpError` for out-of-range fields."""
        if not 0 <= self.payload_type <= 127:
            raise RtpError(f"payload_type {self.payload_type} out of range 0..127")
        if len(self.csrc) > 15:
            raise RtpError(f"csrc list has {len(self.csrc)} entries, at most 15 fit")
        if not 0 <= self.padding <= 255:
            raise RtpError(f"padding {self.padding} out of range 0..255")
        b0 = (self.version << 6) | len(self.csrc)
        if self.padding:
            b0 |= 0x20
        if self.extension is not None:
            b0 |= 0x10
        b1 = self.payload_type | (0x80 if self.marker else 0)
        out = _HEADER.pack(b0, b1, self.sequence & 0xFFFF, self.timestamp & 0xFFFFFFFF,
                           self.ssrc & 0xFFFFFFFF)
        if self.csrc:
            out += struct.pack(f"!{len(self.csrc)}I", *self.csrc)
        if self.extension is not None:
            profile, raw = self.extension
            if len(raw) % 4:
                raise RtpError(f"extension length {len(raw)} is not a multiple of 4 bytes")
            out += _EXT_HEADER.pack(profile, len(raw) // 4) + raw
        out += self.payload
        if self.padding:
            out += bytes(self.padding - 1) + bytes((self.padding,))
        return out


def parse(data: bytes) -> RtpPacket:
    """Parse one RTP datagram, raising :class:`RtpError` naming the rule it breaks."""
    n = len(data)
    if n < RTP_HEADER_BYTES:
        raise RtpError(f"packet too short: {n} bytes, RTP header needs {RTP_HEADER_BYTES}")
    b0, b1, seq, ts, ssrc = _HEADER.unpack_from(data)
    if b0 == 0x80:  # fast path, nearly every packet: v2, no padding/extension/CSRC
        return RtpPacket(b1 & 0x7F, seq, ts, ssrc, bytes(data[RTP_HEADER_BYTES:]), b1 > 0x7F)
    version = b0 >> 6
    if version != RTP_VERSION:
        raise RtpError(f"bad version {version}, expected {RTP_VERSION}")
    cc = b0 & 0x0F
    pos = RTP_HEADER_BYTES + 4 * cc
    if pos > n:
        raise RtpError(f"CSRC count {cc} needs {pos} bytes, packet has {n}")
    csrc = list(struct.unpack_from(f"!{cc}I", data, RTP_HEADER_BYTES)) if cc else []
    extension: tuple[int, bytes] | None = None
    if b0 & 0x10:
        if pos + 4 > n:
            raise RtpError(f"extension header beyond packet: needs {pos + 4} bytes, has {n}")
        profile, words = _EXT_HEADER.unpack_from(data, pos)
        end = pos + 4 + 4 * words
        if end > n:
            raise RtpError(f"extension length {words} words beyond packet: needs {end}, has {n}")
        extension = (profile, bytes(data[pos + 4:end]))
        pos = end
    padding = 0
    end = n
    if b0 & 0x20:
        padding = data[-1]
        if padding == 0 or pos + padding > n:
            raise RtpError(f"bad padding count {padding} for {n - pos} bytes after the header")
        end = n - padding
    return RtpPacket(
        payload_type=b1 & 0x7F,
        sequence=seq,
        timestamp=ts,
        ssrc=ssrc,
        payload=bytes(data[pos:end]),
        marker=bool(b1 & 0x80),
        csrc=csrc,
        extension=extension,
        padding=padding,
        version=version,
    )


def is_rtcp(data: bytes) -> bool:
    """RFC 5761 §4: on a muxed port, second byte 200..204 (PT with M bit) means RTCP."""
    return len(data) >= 2 and RTCP_PT_MIN <= data[1] <= RTCP_PT_MAX


def seq_newer(a: int, b: int) -> bool:
    """True if 16-bit sequence ``a`` is after ``b`` in serial-number order (RFC 1982)."""
    return a != b and ((a - b) & 0xFFFF) < 0x8000
