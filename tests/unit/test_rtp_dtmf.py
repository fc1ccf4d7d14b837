"""RFC 4733 telephone-event: codec, receive de-duplication (captured SIPp digits), sending."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.rtp.dtmf import (
    DtmfError,
    DtmfReceiver,
    TelephoneEvent,
    digit_packets,
    parse_events,
    serialize_events,
)
from engine.rtp.packet import parse
from engine.rtp.pcap import read_udp_payloads

SIPP = Path("/usr/share/sip-tester")
CAPTURES = {**{str(d): f"dtmf_2833_{d}.pcap" for d in range(10)},
            "*": "dtmf_2833_star.pcap", "#": "dtmf_2833_pound.pcap"}


def ev(event: int, end: bool, duration: int, volume: int = 10) -> bytes:
    return TelephoneEvent(event, end, volume, duration).pack()


def test_codec_known_bytes_and_round_trip() -> None:
    data = bytes.fromhex("018a08c0")  # digit 1, E=1, volume 10, duration 2240 (SIPp capture)
    [e] = parse_events(data)
    assert e == TelephoneEvent(1, True, 10, 2240)
    assert e.key == "1"
    assert e.pack() == data
    multi = bytes.fromhex("050a0320" "058a0320" "0b0a00a0")
    assert serialize_events(parse_events(multi)) == multi
    assert [x.key for x in parse_events(multi)] == ["5", "5", "#"]


@pytest.mark.parametrize(("payload", "message"),
                         [(b"", "0 bytes"), (b"\x01\x0a\x00", "3 bytes"),
                          (b"\x01\x0a\x00\x00\x01", "5 bytes")])
def test_codec_rejects_bad_length(payload: bytes, message: str) -> None:
    with pytest.raises(DtmfError, match=message):
        parse_events(payload)


def test_codec_rejects_out_of_range_fields() -> None:
    with pytest.raises(DtmfError, match="volume 64"):
        TelephoneEvent(1, False, 64, 0).pack()
    with pytest.raises(DtmfError, match="duration 65536"):
        TelephoneEvent(1, False, 1, 65536).pack()
    with pytest.raises(DtmfError, match="event 256"):
        TelephoneEvent(256, False, 1, 0).pack()


@pytest.mark.parametrize(("digit", "capture"), sorted(CAPTURES.items()))
def test_sipp_captured_digit_reported_exactly_once(digit: str, capture: str) -> None:
    path = SIPP / capture
    if not path.exists():
        pytest.fail(f"{path} missing: install Debian sip-tester")
    rx = DtmfReceiver()
    got = []
    records = read_udp_payloads(path)
    t0 = records[0][0]
    for t, _, _, data in records:
        p = parse(data)
        got += rx.feed(p.payload, p.timestamp, t - t0)
    got += rx.poll(100.0)
    assert [d.digit for d in got] == [digit]
    assert got[0].ended
    assert got[0].duration == 2240  # 280 ms, as the final end packets say


def test_three_end_packets_and_retransmitted_start_report_once() -> None:
    rx = DtmfReceiver()
    out = []
    out += rx.feed(ev(5, False, 0), 1000, 0.00)
    out += rx.feed(ev(5, False, 0), 1000, 0.01)  # start retransmitted
    assert rx.in_progress == "5"
    out += rx.feed(ev(5, False, 400), 1000, 0.05)
    for i in range(3):
        out += rx.feed(ev(5, True, 800), 1000, 0.10 + 0.02 * i)
    out += rx.poll(5.0)
    assert [(d.digit, d.duration, d.ended) for d in out] == [("5", 800, True)]
    assert rx.in_progress is None


def test_same_digit_twice_is_two_events_by_timestamp() -> None:
    rx = DtmfReceiver()
    out = []
    for ts, base in ((1000, 0.0), (5000, 0.5)):
        out += rx.feed(ev(1, False, 400), ts, base)
        out += rx.feed(ev(1, True, 800), ts, base + 0.1)
        out += rx.feed(ev(1, True, 800), ts, base + 0.12)
    assert [d.digit for d in out] == ["1", "1"]
    assert [d.timestamp for d in out] == [1000, 5000]


def test_lost_end_packets_reported_after_timeout() -> None:
    rx = DtmfReceiver(end_timeout_s=0.5)
    assert rx.feed(ev(9, False, 400), 1000, 0.0) == []
    assert rx.feed(ev(9, False, 800), 1000, 0.05) == []
    assert rx.poll(0.5) == []  # 0.45 s since the last packet
    [d] = rx.poll(0.56)
    assert (d.digit, d.duration, d.ended) == ("9", 800, False)
    assert rx.poll(10.0) == []
    # a late end packet for the same event must not report it again
    assert rx.feed(ev(9, True, 1200), 1000, 0.6) == []


def test_lost_end_then_next_digit_reports_both_in_order() -> None:
    rx = DtmfReceiver()
    out = rx.feed(ev(3, False, 400), 1000, 0.0)
    out += rx.feed(ev(4, False, 400), 3000, 0.2)  # new timestamp: 3 is over
    out += rx.feed(ev(4, True, 800), 3000, 0.3)
    assert [(d.digit, d.ended) for d in out] == [("3", False), ("4", True)]


def test_redundant_multi_event_packets() -> None:
    # RFC 4733 §2.5.1.5: a packet carries the previous digit's final block plus the new one;
    # the previous one starts at the packet timestamp, the new one after its duration.
    rx = DtmfReceiver()
    out = []
    out += rx.feed(ev(7, False, 400), 1000, 0.0)
    out += rx.feed(ev(7, True, 800), 1000, 0.1)  # first end (then its repeats are lost)
    # next digit 8 starting at 1000+800+gap: the packet repeats 7's end block first
    out += rx.feed(ev(7, True, 800) + ev(8, False, 0), 1000, 0.25)
    out += rx.feed(ev(7, True, 800) + ev(8, False, 400), 1000, 0.30)
    out += rx.feed(ev(7, True, 800) + ev(8, True, 800), 1000, 0.35)
    out += rx.feed(ev(7, True, 800) + ev(8, True, 800), 1000, 0.37)
    assert [d.digit for d in out] == ["7", "8"]
    assert out[1].timestamp == 1800


def test_redundant_block_delivers_a_digit_whose_own_packets_were_lost() -> None:
    rx = DtmfReceiver()
    # every packet of digit 2 was lost; the first packet of digit 6 carries 2's end block
    out = rx.feed(ev(2, True, 800) + ev(6, False, 160), 1000, 0.0)
    out += rx.feed(ev(2, True, 800) + ev(6, True, 800), 1000, 0.1)
    assert [d.digit for d in out] == ["2", "6"]


def test_malformed_payload_is_counted_not_raised() -> None:
    rx = DtmfReceiver()
    assert rx.feed(b"\x01\x02\x03", 0, 0.0) == []
    assert rx.bad_payloads == 1


def test_non_dtmf_event_consumed_silently() -> None:
    rx = DtmfReceiver()
    assert rx.feed(ev(16, True, 800), 1000, 0.0) == []  # flash
    assert rx.in_progress is None


def test_sender_sequence_shape() -> None:
    steps = digit_packets("#", duration_s=0.2, volume=10)
    starts = [s for s in steps if not s.end]
    ends = [s for s in steps if s.end]
    assert starts[0].marker and not any(s.marker for s in steps[1:])
    assert [s.offset_s for s in starts] == [0.0, 0.05, 0.1, 0.15]
    durations = [parse_events(s.payload)[0].duration for s in starts]
    assert durations == [400, 800, 1200, 1600]
    assert len(ends) == 3
    assert {s.payload for s in ends} == {TelephoneEvent(11, True, 10, 1600).pack()}
    assert [round(s.offset_s, 3) for s in ends] == [0.2, 0.22, 0.24]


def test_sender_to_receiver_round_trip_all_keys() -> None:
    rx = DtmfReceiver()
    got = []
    t = 0.0
    for i, key in enumerate("0123456789*#ABCD"):
        ts = 10_000 + i * 4000
        for s in digit_packets(key, duration_s=0.12):
            got += rx.feed(s.payload, ts, t + s.offset_s)
        t += 0.5
    assert "".join(d.digit for d in got) == "0123456789*#ABCD"
    assert all(d.ended and d.duration == 960 for d in got)


def test_sender_rejects_bad_input() -> None:
    with pytest.raises(DtmfError, match="'x'"):
        digit_packets("x")
    with pytest.raises(DtmfError, match="duration 9.0s"):
        digit_packets("1", duration_s=9.0)
