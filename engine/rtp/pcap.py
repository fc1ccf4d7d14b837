"""Read UDP payloads out of classic libpcap files (captured fixtures, SIPp's media pcaps).

Why here: tests replay real captures byte-exactly, and operators debugging a trunk hand us a
tcpdump; both need the same tiny reader. Pure: bytes in, ``(time, src_port, dst_port, payload)``
out. Handles Ethernet, Linux cooked (SLL) and raw-IP link types, IPv4 and IPv6, no fragments.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from pathlib import Path

LINKTYPE_ETHERNET = 1
LINKTYPE_RAW = 101
LINKTYPE_LINUX_SLL = 113
_IPPROTO_UDP = 17


class PcapError(ValueError):
    """Not a classic pcap file, or a record that runs past the end of it."""


def _ip_payload(frame: bytes, link: int) -> bytes | None:
    if link == LINKTYPE_ETHERNET:
        if len(frame) < 14:
            return None
        ethertype = struct.unpack_from("!H", frame, 12)[0]
        off = 14
        if ethertype == 0x8100:  # VLAN tag
            ethertype = struct.unpack_from("!H", frame, 16)[0]
            off = 18
        return frame[off:] if ethertype in (0x0800, 0x86DD) else None
    if link == LINKTYPE_LINUX_SLL:
        return frame[16:]
    if link == LINKTYPE_RAW:
        return frame
    return None


def _udp(ip: bytes) -> tuple[int, int, bytes] | None:
    if not ip:
        return None
    version = ip[0] >> 4
    if version == 4:
        ihl = (ip[0] & 0x0F) * 4
        if len(ip) < ihl + 8 or ip[9] != _IPPROTO_UDP:
            return None
        udp = ip[ihl:]
    elif version == 6:
        if len(ip) < 48 or ip[6] != _IPPROTO_UDP:
            return None
        udp = ip[40:]
    else:
        return None
    sport, dport, length = struct.unpack_from("!HHH", udp)
    return sport, dport, bytes(udp[8:length])


def udp_payloads(data: bytes) -> Iterator[tuple[float, int, int, bytes]]:
    """Yield ``(timestamp_s, src_port, dst_port, payload)`` for each UDP packet in a pcap."""
    if len(data) < 24:
        raise PcapError(f"pcap too short: {len(data)} bytes")
    magic = data[:4]
    if magic in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1"):
        endian = "<"
    elif magic in (b"\xa1\xb2\xc3\xd4", b"\xa1\xb2\x3c\x4d"):
        endian = ">"
    else:
        raise PcapError(f"not a pcap file (magic {magic.hex()})")
    nano = magic in (b"\x4d\x3c\xb2\xa1", b"\xa1\xb2\x3c\x4d")
    link = struct.unpack_from(endian + "I", data, 20)[0]
    pos = 24
    rec = struct.Struct(endian + "IIII")
    while pos + 16 <= len(data):
        sec, frac, incl, _ = rec.unpack_from(data, pos)
        pos += 16
        if pos + incl > len(data):
            raise PcapError(f"record at offset {pos - 16} runs past the end of the file")
        frame = data[pos:pos + incl]
        pos += incl
        ip = _ip_payload(frame, link)
        got = _udp(ip) if ip is not None else None
        if got is not None:
            yield sec + frac / (1e9 if nano else 1e6), got[0], got[1], got[2]


def read_udp_payloads(path: str | Path) -> list[tuple[float, int, int, bytes]]:
    return list(udp_payloads(Path(path).read_bytes()))
