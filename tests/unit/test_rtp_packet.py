"""RTP/RTCP codecs: byte-exact round trips on SIPp's captured packets, one negative per rule."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest

from engine.rtp import rtcp
from engine.rtp.packet import RtpError, RtpPacket, is_rtcp, parse, seq_newer
from engine.rtp.pcap import PcapError, read_udp_payloads, udp_payloads

SIPP = Path("/usr/share/sip-tester")


def _captured(name: str) -> list[bytes]:
    path = SIPP / name
    if not path.exists():
        pytest.fail(f"{path} missing: install Debian sip-tester (scripts/apt-packages.txt)")
    return [p for _, _, _, p in read_udp_payloads(path)]


def test_captured_pcma_round_trips_byte_exact() -> None:
    datagrams = _captured("g711a.pcap")
    assert len(datagrams) > 200
    for d in datagrams:
        pkt = parse(d)
        assert pkt.payload_type == 8
        assert len(pkt.payload) == 240
        assert pkt.serialize() == d
    first, second = parse(datagrams[0]), parse(datagrams[1])
    assert first.marker and not second.marker
    assert second.sequence == first.sequence + 1
    assert second.timestamp - first.timestamp == 240


def test_captured_telephone_event_round_trips() -> None:
    for d in _captured("dtmf_2833_1.pcap"):
        pkt = parse(d)
        assert pkt.payload_type == 101
        assert pkt.serialize() == d


def test_full_header_round_trip_with_csrc_extension_padding() -> None:
    pkt = RtpPacket(payload_type=0, sequence=65535, timestamp=0xFFFFFFFF, ssrc=0xDEADBEEF,
                    payload=b"\x01\x02\x03", marker=True, csrc=[1, 2, 3],
                    extension=(0xBEDE, b"\x10\xff\x00\x00"), padding=5)
    data = pkt.serialize()
    assert len(data) == 12 + 12 + 4 + 4 + 3 + 5
    assert data[0] == 0x80 | 0x20 | 0x10 | 3
    assert data[-1] == 5
    back = parse(data)
    assert back == pkt
    assert back.serialize() == data


def test_known_bytes_parse() -> None:
    data = bytes.fromhex("80e01f300000 33e0 0e05384e 010a0000".replace(" ", ""))
    pkt = parse(data)
    assert (pkt.payload_type, pkt.marker, pkt.sequence, pkt.timestamp, pkt.ssrc) == (
        0x60, True, 0x1F30, 0x33E0, 0x0E05384E)
    assert pkt.payload == b"\x01\x0a\x00\x00"


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"\x80\x00\x00", "too short"),
        (bytes.fromhex("40000001") + bytes(8), "bad version 1"),
        (bytes.fromhex("83000001") + bytes(8) + bytes(8), "CSRC count 3"),
        (bytes.fromhex("90000001") + bytes(8) + b"\xbe\xde", "extension header beyond"),
        (bytes.fromhex("90000001") + bytes(8) + b"\xbe\xde\x00\x02" + bytes(4),
         "extension length 2 words beyond"),
        (bytes.fromhex("a0000001") + bytes(8) + b"\x01\x00", "bad padding count 0"),
        (bytes.fromhex("a0000001") + bytes(8) + b"\x01\x09", "bad padding count 9"),
    ],
)
def test_parse_rejects_each_rule(data: bytes, message: str) -> None:
    with pytest.raises(RtpError, match=message):
        parse(data)


def test_every_truncation_of_a_full_packet_is_rejected_or_shorter() -> None:
    pkt = RtpPacket(0, 1, 2, 3, payload=b"", csrc=[7], extension=(1, bytes(4)), padding=4)
    data = pkt.serialize()
    for n in range(len(data)):
        with pytest.raises(RtpError):
            parse(data[:n])


def test_serialize_rejects_out_of_range() -> None:
    with pytest.raises(RtpError, match="payload_type 128"):
        RtpPacket(128, 0, 0, 0).serialize()
    with pytest.raises(RtpError, match="16 entries"):
        RtpPacket(0, 0, 0, 0, csrc=list(range(16))).serialize()
    with pytest.raises(RtpError, match="multiple of 4"):
        RtpPacket(0, 0, 0, 0, extension=(1, b"abc")).serialize()


def test_is_rtcp_demux_rfc5761() -> None:
    assert is_rtcp(bytes([0x80, 200]))
    assert is_rtcp(bytes([0x81, 204]))
    assert not is_rtcp(bytes([0x80, 0]))  # PCMU
    assert is_rtcp(bytes([0x80, 0x80 | 72]))  # why RFC 5761 §4 forbids RTP PT 72-76
    assert not is_rtcp(bytes([0x80, 205]))
    assert not is_rtcp(b"\x80")
    for d in _captured("g711a.pcap")[:5]:
        assert not is_rtcp(d)


def test_seq_newer_wraps() -> None:
    assert seq_newer(0, 65535)
    assert not seq_newer(65535, 0)
    assert not seq_newer(5, 5)


# --- RTCP -------------------------------------------------------------------------------

def _sample_compound() -> list[rtcp.RtcpPacket]:
    block = rtcp.ReportBlock(ssrc=0x11223344, fraction_lost=25, lost=-3, highest_seq=70000,
                             jitter=12, lsr=0xAABBCCDD, dlsr=65536)
    return [
        rtcp.RtcpSenderReport(0xCAFEBABE, 0x83AA7E80_80000000, 160000, 1000, 160000, [block]),
        rtcp.RtcpSdes([(0xCAFEBABE, [(rtcp.SDES_CNAME, b"ivr@engine")])]),
        rtcp.RtcpBye([0xCAFEBABE], b"hangup"),
    ]


def test_rtcp_compound_round_trip() -> None:
    pkts = _sample_compound()
    data = rtcp.serialize(pkts)
    assert is_rtcp(data)
    assert len(data) % 4 == 0
    back = rtcp.parse(data)
    assert back == pkts
    assert rtcp.serialize(back) == data
    assert rtcp.cname_of(back) == {0xCAFEBABE: "ivr@engine"}
    assert back[0].reports[0].lost == -3  # type: ignore[union-attr]


def test_rtcp_known_rr_bytes() -> None:
    # RR from SSRC 1 with one block about SSRC 2: fraction 64, lost 5, ext seq 0x10005, jitter 7
    data = bytes.fromhex("81c90007" "00000001" "00000002" "40000005" "00010005" "00000007"
                         "00000000" "00000000")
    [rr] = rtcp.parse(data)
    assert rr == rtcp.RtcpReceiverReport(1, [rtcp.ReportBlock(2, 64, 5, 0x10005, 7, 0, 0)])
    assert rtcp.serialize([rr]) == data


def test_rtcp_unknown_type_kept_raw() -> None:
    app = struct.pack("!BBH", 0x80, 204, 2) + b"NAME" + b"data"
    data = rtcp.serialize([rtcp.RtcpReceiverReport(9, [])]) + app
    back = rtcp.parse(data)
    assert back[1] == rtcp.RtcpUnknown(204, 0, b"NAMEdata")
    assert rtcp.serialize(back) == data


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"\x80\xc9", "too short"),
        (bytes.fromhex("40c90001") + bytes(4), "bad RTCP version 1"),
        (bytes.fromhex("80c90005") + bytes(4), "beyond packet"),
        (bytes.fromhex("81c90001") + bytes(4), "RR with 1 report blocks needs 28"),
        (bytes.fromhex("81c80006") + bytes(24), "SR with 1 report blocks needs 48"),
        (bytes.fromhex("82cb0001") + bytes(4), "BYE with 2 sources needs 8"),
        (bytes.fromhex("81ca0002") + bytes(4) + b"\x01\x09ab", "SDES item 1 length beyond"),
        (bytes.fromhex("81ca0001") + bytes(4), "no end-of-items"),
        (bytes.fromhex("a0c90001") + b"\x00\x00\x00\x00", "bad RTCP padding"),
    ],
)
def test_rtcp_rejects_each_rule(data: bytes, message: str) -> None:
    with pytest.raises(rtcp.RtcpError, match=message):
        rtcp.parse(data)


def test_rtcp_every_truncation_rejected() -> None:
    data = rtcp.serialize(_sample_compound())
    for n in range(0, len(data), 4):
        if n == 0:
            continue
        try:
            got = rtcp.parse(data[:n])
        except rtcp.RtcpError:
            continue
        # a cut exactly between two packets is a valid (shorter) compound
        assert rtcp.serialize(got) == data[:n]


def test_pcap_reader_rejects_garbage() -> None:
    with pytest.raises(PcapError, match="not a pcap"):
        list(udp_payloads(b"x" * 40))
