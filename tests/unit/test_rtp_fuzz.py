"""Property tests: codecs round-trip any valid value and reject garbage only with their error."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from engine.rtp import rtcp
from engine.rtp.dtmf import DtmfReceiver
from engine.rtp.jitter import JitterBuffer
from engine.rtp.packet import RtpError, RtpPacket, parse

packets = st.builds(
    RtpPacket,
    payload_type=st.integers(0, 127),
    sequence=st.integers(0, 0xFFFF),
    timestamp=st.integers(0, 0xFFFFFFFF),
    ssrc=st.integers(0, 0xFFFFFFFF),
    payload=st.binary(max_size=200),
    marker=st.booleans(),
    csrc=st.lists(st.integers(0, 0xFFFFFFFF), max_size=15),
    extension=st.none() | st.tuples(st.integers(0, 0xFFFF),
                                    st.binary(max_size=40).map(lambda b: b[: len(b) // 4 * 4])),
    padding=st.integers(0, 255),
)


@settings(max_examples=300, deadline=None)
@given(packets)
def test_rtp_round_trip(pkt: RtpPacket) -> None:
    data = pkt.serialize()
    assert parse(data) == pkt
    assert parse(data).serialize() == data


@settings(max_examples=500, deadline=None)
@given(st.binary(max_size=120))
def test_rtp_garbage_raises_only_rtp_error(data: bytes) -> None:
    try:
        pkt = parse(data)
    except RtpError:
        return
    assert pkt.serialize() == data


@settings(max_examples=500, deadline=None)
@given(st.binary(max_size=200))
def test_rtcp_garbage_raises_only_rtcp_error(data: bytes) -> None:
    try:
        rtcp.parse(b"\x80" + data)
    except rtcp.RtcpError:
        pass


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.binary(max_size=12), st.integers(0, 0xFFFFFFFF)), max_size=30))
def test_dtmf_receiver_never_raises(feed: list[tuple[bytes, int]]) -> None:
    rx = DtmfReceiver()
    seen = set()
    for i, (payload, ts) in enumerate(feed):
        for d in rx.feed(payload, ts, i * 0.02):
            key = (d.timestamp, d.digit)
            assert key not in seen  # never the same event twice
            seen.add(key)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 80), st.floats(0, 0.3)), min_size=1, max_size=120),
       st.integers(0, 0xFFFF))
def test_jitter_buffer_any_arrival_pattern(arrivals: list[tuple[int, float]], base: int) -> None:
    """Any mix of loss, delay, reordering and duplicates (a repeated index): frames come out in
    order and never twice, and nothing raises."""
    jb = JitterBuffer()
    events = sorted((i * 0.02 + delay, i) for i, delay in arrivals)
    played = []
    k = 0
    for tick in range(150):
        now = tick * 0.02
        while k < len(events) and events[k][0] <= now:
            t, i = events[k]
            jb.put(RtpPacket(0, (base + i) & 0xFFFF, i * 160, 7, i.to_bytes(2, "big")), t)
            k += 1
        f = jb.pop(now)
        if f is not None and not f.missing:
            played.append(int.from_bytes(f.payload, "big"))
    assert played == sorted(set(played))
    s = jb.stats
    assert s.received == len(arrivals)
    assert len(played) <= len({i for i, _ in arrivals})
