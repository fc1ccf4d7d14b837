"""Sender counters and RFC 3550 A.1/A.3/A.8 receiver statistics."""

from __future__ import annotations

from engine.rtp import rtcp
from engine.rtp.packet import RtpPacket
from engine.rtp.stream import RtpReceiverStats, RtpSender, ntp_from_unix, receiver_report


def test_sender_random_start_and_wrap() -> None:
    a, b = RtpSender(0), RtpSender(0)
    assert (a.ssrc, a.sequence, a.timestamp) != (b.ssrc, b.sequence, b.timestamp)
    s = RtpSender(0, ssrc=1, sequence=65535, timestamp=0xFFFFFF00)
    p1 = s.next_packet(b"x" * 160, 160)
    p2 = s.next_packet(b"x" * 160, 160)
    assert (p1.sequence, p2.sequence) == (65535, 0)
    assert p1.timestamp == 0xFFFFFF00
    assert p2.timestamp == (0xFFFFFF00 + 160) & 0xFFFFFFFF
    assert p1.marker and not p2.marker


def test_sender_marks_talkspurt_and_keeps_time_across_gap() -> None:
    s = RtpSender(8, ssrc=1, sequence=10, timestamp=1000)
    s.next_packet(b"a", 160)
    s.skip(160)
    s.skip(160)
    p = s.next_packet(b"b", 160)
    assert p.marker
    assert p.sequence == 11  # no sequence consumed by silence
    assert p.timestamp == 1000 + 3 * 160


def test_sender_report_counts() -> None:
    s = RtpSender(0, ssrc=5, sequence=0, timestamp=0)
    for _ in range(10):
        s.next_packet(bytes(160), 160)
    sr, sdes = s.sender_report(1_700_000_000.5, "c@x")
    assert isinstance(sr, rtcp.RtcpSenderReport)
    assert (sr.packet_count, sr.octet_count, sr.rtp_timestamp) == (10, 1600, 9 * 160)
    assert sr.ntp_timestamp >> 32 == 1_700_000_000 + 2208988800
    assert sr.ntp_timestamp & 0xFFFFFFFF == 1 << 31
    assert rtcp.parse(rtcp.serialize([sr, sdes])) == [sr, sdes]
    assert ntp_from_unix(0.0) == 2208988800 << 32


def _pkt(seq: int, ts: int, ssrc: int = 7) -> RtpPacket:
    return RtpPacket(0, seq & 0xFFFF, ts & 0xFFFFFFFF, ssrc, bytes(160))


def test_probation_then_counts() -> None:
    st = RtpReceiverStats(7)
    assert not st.update(_pkt(100, 0), 0.0)  # first packet: on probation
    assert st.update(_pkt(101, 160), 0.02)
    for i in range(2, 50):
        assert st.update(_pkt(100 + i, i * 160), i * 0.02)
    blk = st.report_block(1.0)
    assert blk.lost == 0 and blk.fraction_lost == 0
    assert blk.highest_seq == 149
    assert blk.jitter == 0


def test_probation_resets_on_non_sequential() -> None:
    st = RtpReceiverStats(7)
    assert not st.update(_pkt(100, 0), 0.0)
    assert not st.update(_pkt(300, 0), 0.0)  # not sequential: probation restarts
    assert st.update(_pkt(301, 160), 0.02)


def test_extended_seq_wraps_and_loss_counted() -> None:
    st = RtpReceiverStats(7)
    seqs = [65530 + i for i in range(12)]
    for i, s in enumerate(seqs):
        if (s & 0xFFFF) in (65534, 2):  # lose two packets, one on each side of the wrap
            continue
        st.update(_pkt(s, i * 160), i * 0.02)
    blk = st.report_block(1.0)
    assert blk.highest_seq == (1 << 16) + 5
    assert blk.lost == 2
    # A.3: interval expected 11 (from base 65531), lost 2 -> 2*256//11
    assert blk.fraction_lost == (2 << 8) // 11
    assert st.report_block(2.0).fraction_lost == 0  # interval counters reset


def test_duplicates_make_loss_negative() -> None:
    st = RtpReceiverStats(7)
    for i in range(5):
        st.update(_pkt(i, i * 160), i * 0.02)
    st.update(_pkt(4, 4 * 160), 0.1)
    assert st.cumulative_lost == -1
    assert st.report_block(1.0).lost == -1


def test_big_jump_needs_two_sequential_to_restart() -> None:
    st = RtpReceiverStats(7)
    for i in range(5):
        st.update(_pkt(i, i * 160), i * 0.02)
    assert not st.update(_pkt(20000, 0), 0.2)
    assert st.update(_pkt(20001, 160), 0.22)
    assert st.extended_max == 20001
    assert st.expected == 1


def test_jitter_a8_converges_to_known_value() -> None:
    st = RtpReceiverStats(7)
    # arrivals alternate 0 and +10 ms late: |D| = 80 samples each step
    for i in range(400):
        st.update(_pkt(i, i * 160), i * 0.02 + (0.01 if i % 2 else 0.0))
    assert 78 <= st.jitter <= 80


def test_rr_carries_lsr_dlsr() -> None:
    st = RtpReceiverStats(7)
    for i in range(3):
        st.update(_pkt(i, i * 160), i * 0.02)
    st.on_sender_report(rtcp.RtcpSenderReport(7, 0x0001_2345_6789_0000, 0, 0, 0), 10.0)
    rr, _ = receiver_report(99, "me", [st], 10.5)
    assert isinstance(rr, rtcp.RtcpReceiverReport)
    assert rr.reports[0].lsr == 0x2345_6789
    assert rr.reports[0].dlsr == 32768


def test_rtt_from_sr_rr_exchange() -> None:
    from engine.rtp.stream import rtt_from_report

    # we send an SR at t=100.0; the peer receives it and answers 0.25 s later; it reaches us at
    # t=100.33, so the network round trip is 0.08 s
    sender = RtpSender(0, ssrc=1, sequence=0, timestamp=0)
    sr, _ = sender.sender_report(100.0, "us")
    assert isinstance(sr, rtcp.RtcpSenderReport)
    peer = RtpReceiverStats(1)
    for i in range(3):
        peer.update(_pkt(i, i * 160, ssrc=1), i * 0.02)
    peer.on_sender_report(sr, 50.0)
    block = peer.report_block(50.25)
    rtt = rtt_from_report(block, 100.33)
    assert rtt is not None and abs(rtt - 0.08) < 0.001
    assert rtt_from_report(rtcp.ReportBlock(1, 0, 0, 0, 0, 0, 0), 1.0) is None


def test_next_bytes_is_next_packet_serialised() -> None:
    """The send path's fast header packing gives byte-identical packets and the same counters,
    across sequence and timestamp wrap and the talkspurt marker."""
    from engine.rtp.stream import RtpSender

    a = RtpSender(8, ssrc=0x11223344, sequence=0xFFFE, timestamp=0xFFFFFF00)
    b = RtpSender(8, ssrc=0x11223344, sequence=0xFFFE, timestamp=0xFFFFFF00)
    for i in range(5):
        if i == 3:
            a.skip(160)
            b.skip(160)
        payload = bytes([i]) * 160
        assert a.next_bytes(payload, 160) == b.next_packet(payload, 160).serialize()
    assert (a.sequence, a.timestamp, a.packet_count, a.octet_count) == (
        b.sequence, b.timestamp, b.packet_count, b.octet_count)
