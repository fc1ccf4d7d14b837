"""RTCP (RFC 3550 §6) codecs: SR, RR, SDES, BYE and compound packets.

Pure and byte-exact. Packet types the engine does not use (APP, XR, feedback) are kept as
:class:`RtcpUnknown` with their raw body so a compound packet still round-trips. A compound packet
is parsed whole or not at all: a broken length field anywhere means the datagram is garbage.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

from engine.rtp.packet import RtpError

RTCP_SR = 200
RTCP_RR = 201
RTCP_SDES = 202
RTCP_BYE = 203
RTCP_HEADER_BYTES = 4
SDES_CNAME = 1
REPORT_BLOCK_BYTES = 24

_HDR = struct.Struct("!BBH")
_BLOCK = struct.Struct("!IIIIII")


class RtcpError(RtpError):
    """A datagram that is not a valid RTCP (compound) packet."""


@dataclass(slots=True)
class ReportBlock:
    """One reception report (RFC 3550 §6.4.1). ``lost`` is the signed 24-bit cumulative count."""

    ssrc: int
    fraction_lost: int  # 0..255, fixed point /256
    lost: int
    highest_seq: int  # extended highest sequence number received
    jitter: int  # timestamp units
    lsr: int = 0  # middle 32 bits of the last SR's NTP time
    dlsr: int = 0  # delay since last SR, 1/65536 s

    def pack(self) -> bytes:
        lost = self.lost & 0xFFFFFF  # two's complement in 24 bits
        return _BLOCK.pack(self.ssrc, (self.fraction_lost & 0xFF) << 24 | lost,
                           self.highest_seq & 0xFFFFFFFF, self.jitter & 0xFFFFFFFF,
                           self.lsr & 0xFFFFFFFF, self.dlsr & 0xFFFFFFFF)

    @classmethod
    def unpack(cls, data: bytes, pos: int) -> ReportBlock:
        ssrc, fl, hs, jit, lsr, dlsr = _BLOCK.unpack_from(data, pos)
        lost = fl & 0xFFFFFF
        if lost & 0x800000:
            lost -= 1 << 24
        return cls(ssrc, fl >> 24, lost, hs, jit, lsr, dlsr)


@dataclass(slots=True)
class RtcpSenderReport:
    ssrc: int
    ntp_timestamp: int  # 64-bit NTP
    rtp_timestamp: int
    packet_count: int
    octet_count: int
    reports: list[ReportBlock] = field(default_factory=list)


@dataclass(slots=True)
class RtcpReceiverReport:
    ssrc: int
    reports: list[ReportBlock] = field(default_factory=list)


@dataclass(slots=True)
class RtcpSdes:
    """SDES chunks: ssrc -> list of (item type, value bytes); CNAME is item 1."""

    chunks: list[tuple[int, list[tuple[int, bytes]]]] = field(default_factory=list)


@dataclass(slots=True)
class RtcpBye:
    sources: list[int] = field(default_factory=list)
    reason: bytes = b""


@dataclass(slots=True)
class RtcpUnknown:
    packet_type: int
    count: int
    body: bytes


RtcpPacket = RtcpSenderReport | RtcpReceiverReport | RtcpSdes | RtcpBye | RtcpUnknown


def _header(pt: int, count: int, body: bytes) -> bytes:
    if len(body) % 4:
        raise RtcpError(f"RTCP body for PT {pt} is {len(body)} bytes, not a multiple of 4")
    if not 0 <= count <= 31:
        raise RtcpError(f"RTCP count {count} for PT {pt} out of range 0..31")
    return _HDR.pack(0x80 | count, pt, len(body) // 4) + body


def _serialize_one(p: RtcpPacket) -> bytes:
    if isinstance(p, RtcpSenderReport):
        body = struct.pack("!IQIII", p.ssrc, p.ntp_timestamp, p.rtp_timestamp & 0xFFFFFFFF,
                           p.packet_count & 0xFFFFFFFF, p.octet_count & 0xFFFFFFFF)
        body += b"".join(b.pack() for b in p.reports)
        return _header(RTCP_SR, len(p.reports), body)
    if isinstance(p, RtcpReceiverReport):
        body = struct.pack("!I", p.ssrc) + b"".join(b.pack() for b in p.reports)
        return _header(RTCP_RR, len(p.reports), body)
    if isinstance(p, RtcpSdes):
        body = b""
        for ssrc, items in p.chunks:
            chunk = struct.pack("!I", ssrc)
            for kind, value in items:
                if len(value) > 255:
                    raise RtcpError(f"SDES item {kind} is {len(value)} bytes, at most 255")
                chunk += bytes((kind, len(value))) + value
            chunk += b"\x00"  # end of items, then pad to a 32-bit boundary
            chunk += bytes(-len(chunk) % 4)
            body += chunk
        return _header(RTCP_SDES, len(p.chunks), body)
    if isinstance(p, RtcpBye):
        body = b"".join(struct.pack("!I", s) for s in p.sources)
        if p.reason:
            body += bytes((len(p.reason),)) + p.reason
            body += bytes(-len(body) % 4)
        return _header(RTCP_BYE, len(p.sources), body)
    return _header(p.packet_type, p.count, p.body)


def serialize(packets: list[RtcpPacket]) -> bytes:
    """Serialize a compound packet (RFC 3550 §6.1: first SR/RR, then SDES with CNAME)."""
    return b"".join(_serialize_one(p) for p in packets)


def _parse_sdes(count: int, body: bytes) -> RtcpSdes:
    chunks: list[tuple[int, list[tuple[int, bytes]]]] = []
    pos = 0
    for _ in range(count):
        if pos + 4 > len(body):
            raise RtcpError(f"SDES chunk {len(chunks)} beyond packet")
        (ssrc,) = struct.unpack_from("!I", body, pos)
        pos += 4
        items: list[tuple[int, bytes]] = []
        while True:
            if pos >= len(body):
                raise RtcpError(f"SDES chunk {len(chunks)} has no end-of-items byte")
            kind = body[pos]
            if kind == 0:
                pos += 1
                pos += -pos % 4
                break
            if pos + 2 > len(body) or pos + 2 + body[pos + 1] > len(body):
                raise RtcpError(f"SDES item {kind} length beyond packet")
            ln = body[pos + 1]
            items.append((kind, bytes(body[pos + 2:pos + 2 + ln])))
            pos += 2 + ln
        chunks.append((ssrc, items))
    return RtcpSdes(chunks)


def _parse_one(pt: int, count: int, body: bytes) -> RtcpPacket:
    if pt == RTCP_SR:
        need = 24 + count * REPORT_BLOCK_BYTES
        if len(body) < need:
            raise RtcpError(f"SR with {count} report blocks needs {need} bytes, has {len(body)}")
        ssrc, ntp, rtp_ts, pkts, octets = struct.unpack_from("!IQIII", body)
        blocks = [ReportBlock.unpack(body, 24 + i * REPORT_BLOCK_BYTES) for i in range(count)]
        return RtcpSenderReport(ssrc, ntp, rtp_ts, pkts, octets, blocks)
    if pt == RTCP_RR:
        need = 4 + count * REPORT_BLOCK_BYTES
        if len(body) < need:
            raise RtcpError(f"RR with {count} report blocks needs {need} bytes, has {len(body)}")
        (ssrc,) = struct.unpack_from("!I", body)
        blocks = [ReportBlock.unpack(body, 4 + i * REPORT_BLOCK_BYTES) for i in range(count)]
        return RtcpReceiverReport(ssrc, blocks)
    if pt == RTCP_SDES:
        return _parse_sdes(count, body)
    if pt == RTCP_BYE:
        if len(body) < 4 * count:
            raise RtcpError(f"BYE with {count} sources needs {4 * count} bytes, has {len(body)}")
        sources = list(struct.unpack_from(f"!{count}I", body))
        reason = b""
        if len(body) > 4 * count:
            ln = body[4 * count]
            if 4 * count + 1 + ln > len(body):
                raise RtcpError(f"BYE reason length {ln} beyond packet")
            reason = bytes(body[4 * count + 1:4 * count + 1 + ln])
        return RtcpBye(sources, reason)
    return RtcpUnknown(pt, count, bytes(body))


def parse(data: bytes) -> list[RtcpPacket]:
    """Parse a compound RTCP datagram into its packets; :class:`RtcpError` on any bad field."""
    if len(data) < RTCP_HEADER_BYTES:
        raise RtcpError(f"RTCP packet too short: {len(data)} bytes")
    out: list[RtcpPacket] = []
    pos = 0
    while pos < len(data):
        if pos + RTCP_HEADER_BYTES > len(data):
            raise RtcpError(f"RTCP header at offset {pos} beyond packet")
        b0, pt, words = _HDR.unpack_from(data, pos)
        if b0 >> 6 != 2:
            raise RtcpError(f"bad RTCP version {b0 >> 6} at offset {pos}")
        end = pos + 4 + 4 * words
        if end > len(data):
            raise RtcpError(f"RTCP length {words} words at offset {pos} beyond packet")
        body = data[pos + 4:end]
        if b0 & 0x20:  # padding: only legal on the last packet
            if end != len(data) or not body or body[-1] == 0 or body[-1] > len(body):
                raise RtcpError(f"bad RTCP padding at offset {pos}")
            body = body[:-body[-1]]
        out.append(_parse_one(pt, b0 & 0x1F, body))
        pos = end
    return out


def cname_of(packets: list[RtcpPacket]) -> dict[int, str]:
    """SSRC -> CNAME from the SDES packets of a compound packet."""
    out: dict[int, str] = {}
    for p in packets:
        if isinstance(p, RtcpSdes):
            for ssrc, items in p.chunks:
                for kind, value in items:
                    if kind == SDES_CNAME:
                        out[ssrc] = value.decode("utf-8", "replace")
    return out
