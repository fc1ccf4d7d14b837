"""The media benchmark's capture reader: its figures are only as good as this parse."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest

from engine.rtp.pcap import PcapError
from tests.bench.media_capture import figures, read_streams, steady_gap_p99_ms

ETH = b"\x00" * 12 + b"\x08\x00"


def _frame(sport: int, dport: int, payload: bytes) -> bytes:
    udp = struct.pack("!HHHH", sport, dport, 8 + len(payload), 0) + payload
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), 0, 0, 64, 17, 0,
                     b"\x7f\x00\x00\x01", b"\x7f\x00\x00\x01")
    return ETH + ip + udp


def _rtp(pt: int, seq: int, ts: int, marker: bool = False, size: int = 160) -> bytes:
    return struct.pack("!BBHII", 0x80, pt | (0x80 if marker else 0), seq, ts, 1) + bytes(size)


def _pcap(records: list[tuple[float, bytes]], link: int = 1) -> bytes:
    out = struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, link)
    for t, frame in records:
        sec, usec = int(t), round((t - int(t)) * 1e6)
        out += struct.pack("<IIII", sec, usec, len(frame), len(frame)) + frame
    return out


def test_streams_gaps_rates_and_dtmf(tmp_path: Path) -> None:
    recs: list[tuple[float, bytes]] = []
    for i in range(51):  # stream A: a clean 20 ms stream, one 60 ms hole at packet 30
        t = 1.0 + i * 0.02 + (0.04 if i >= 30 else 0.0)
        recs.append((t, _frame(20000, 10000, _rtp(8, i, i * 160))))
    for i in range(11):  # stream B: 20 ms, carries one RFC 4733 event (3 packets, 1 marked)
        pt, marker = (101, i == 5) if 5 <= i <= 7 else (8, False)
        recs.append((2.0 + i * 0.02, _frame(20002, 10002, _rtp(pt, i, 800 if pt == 101 else i,
                                                                   marker, 4))))
    recs.append((1.5, _frame(20001, 10001, bytes([0x81, 200]) + bytes(26))))  # RTCP SR
    recs.append((1.6, _frame(20004, 10004, b"not rtp at all")))
    path = tmp_path / "c.pcap"
    path.write_bytes(_pcap(sorted(recs)))
    streams = read_streams(path)
    assert set(streams) == {(20000, 10000), (20002, 10002)}
    assert len(streams[(20000, 10000)].times) == 51
    assert streams[(20002, 10002)].dtmf_events == {800}
    f = figures(streams)
    assert f.streams == 2 and f.packets == 62 and f.dtmf_events == 1
    assert f.gap_p50_ms == pytest.approx(20.0, abs=0.01)
    assert f.gap_max_ms == pytest.approx(60.0, abs=0.01)
    assert f.pps_min == pytest.approx(50 / 1.04, rel=1e-3)  # 50 gaps over 1.04 s
    assert steady_gap_p99_ms(streams, 2, share=1.0) == pytest.approx(20.0, abs=0.01)


def test_not_ethernet_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "raw.pcap"
    path.write_bytes(_pcap([], link=101))
    with pytest.raises(PcapError, match="link type 101"):
        read_streams(path)


def test_truncated_record_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "cut.pcap"
    path.write_bytes(_pcap([(1.0, _frame(20000, 10000, _rtp(8, 0, 0)))])[:-10])
    with pytest.raises(PcapError, match="runs past the end"):
        read_streams(path)
