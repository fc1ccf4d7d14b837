"""The native send path and quiet streams on real loopback sockets (issue 18, media speed).

A quiet call's silence is sent by the pacer in one C loop, not by the session; these tests read
what a caller's socket receives and check that the RTP stream is the one the Python path sends:
consecutive sequence numbers, timestamps 160 apart, one marker, the same SSRC, and that the
session wakes (prompt, digits, listener, hold) before the next tick. The receive fast lane must
leave the RFC 3550 statistics and the source lock exactly as the full path does.
"""

from __future__ import annotations

import socket

import numpy as np
import pytest

from audio.tones import tone
from engine.media.ports import PortAllocator
from engine.media.session import MediaSession
from engine.rtp.pacer import Pacer
from engine.rtp.packet import RtpPacket
from engine.rtp.packet import parse as parse_rtp
from engine.rtp.rxlane import RtpProtocol
from engine.rtp.stream import NATIVE_SEND, RtpReceiverStats, RtpSender
from tests.netutil import free_port_block

native_only = pytest.mark.skipif(
    not NATIVE_SEND, reason="native RTP send path off (not built, or IVR_RTP_NATIVE=0)")
PCMU_SILENCE = b"\xff" * 160


def _peer() -> socket.socket:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    s.setblocking(False)
    return s


def _raw_rtp(sock: socket.socket) -> list[bytes]:
    out = []
    while True:
        try:
            data = sock.recv(2048)
        except BlockingIOError:
            return out
        if not 200 <= data[1] <= 204:  # RTCP aside
            out.append(data)


def _drain(sock: socket.socket) -> list[RtpPacket]:
    return [parse_rtp(data) for data in _raw_rtp(sock)]


async def _session(remote: tuple[str, int], **kw: object) -> MediaSession:
    base = free_port_block(4)
    port, transport, proto = await PortAllocator(base, base + 3).bind("127.0.0.1", RtpProtocol)
    assert isinstance(proto, RtpProtocol)
    return MediaSession(codec="PCMU", payload_type=0, telephone_event_pt=101, remote=remote,
                        local_port=port, transport=transport, protocol=proto, **kw)  # type: ignore[arg-type]


def _assert_one_stream(pkts: list[RtpPacket], ssrc: int) -> None:
    """Audio packets one tick apart; event packets hold the event's timestamp."""
    for a, b in zip(pkts, pkts[1:], strict=False):
        assert b.sequence == (a.sequence + 1) & 0xFFFF
        assert b.ssrc == a.ssrc == ssrc
        if a.payload_type == 0 and b.payload_type == 0:
            assert b.timestamp == (a.timestamp + 160) & 0xFFFFFFFF
            assert not b.marker


@native_only
async def test_native_sender_sends_what_the_python_sender_builds() -> None:
    peer = _peer()
    out = _peer()
    native = RtpSender(8, ssrc=0xDEADBEEF, sequence=0xFFFE, timestamp=0xFFFFFF00)
    python = RtpSender(8, ssrc=0xDEADBEEF, sequence=0xFFFE, timestamp=0xFFFFFF00)
    assert native.bind(out.fileno(), *peer.getsockname())
    expected = []
    for i in range(4):
        payload = bytes([i]) * 160
        if i == 2:
            native.skip(160)
            python.skip(160)  # a gap: the next packet is marked, time moved on
        assert native.send(payload, 160)
        expected.append(python.next_bytes(payload, 160))
    assert native.send_event(b"\x05\x8a\x03\x20", 101, True, 1234)
    got = []
    while len(got) < 5:
        got.append(peer.recv(2048))
    assert got[:4] == expected
    event = parse_rtp(got[4])
    assert (event.payload_type, event.marker, event.timestamp, event.sequence) == \
        (101, True, 1234, python.sequence)
    assert (native.packet_count, native.octet_count, native.timestamp, native.sequence) == \
        (python.packet_count, python.octet_count, python.timestamp, (python.sequence + 1) & 0xFFFF)
    assert not native.bind(out.fileno(), "not-an-address", 4000)
    assert not native.send(b"x", 160)  # unbound: dropped and counted, never raised
    assert native.send_errors == 1
    for s in (peer, out):
        s.close()


@native_only
async def test_quiet_call_sends_the_same_stream_and_wakes_for_prompts_and_digits() -> None:
    peer = _peer()
    media = await _session(peer.getsockname(), media_timeout_s=0)
    pacer = Pacer()
    pacer.add(media)
    now = 100.0

    def ticks(n: int) -> None:
        nonlocal now
        for _ in range(n):
            pacer._run_tick(now, now)
            now += 0.02

    try:
        ticks(1)
        assert pacer.is_quiet(media)  # silence only: the pacer sends it from now on
        ticks(29)
        pkts = _drain(peer)
        assert len(pkts) == 30 and pacer.quiet_packets == 29
        assert pkts[0].marker and all(p.payload == PCMU_SILENCE for p in pkts)
        _assert_one_stream(pkts, media.sender.ssrc)

        media.playout.enqueue(tone(1000, 0.1))  # five frames
        assert not pacer.is_quiet(media)
        ticks(8)
        prompt = _drain(peer)
        assert [p.payload != PCMU_SILENCE for p in prompt] == [True] * 5 + [False] * 3
        _assert_one_stream(pkts + prompt, media.sender.ssrc)
        assert pacer.is_quiet(media)

        media.send_digits("5", duration_s=0.1)
        assert not pacer.is_quiet(media)
        ticks(20)
        digit = _drain(peer)
        events = [p for p in digit if p.payload_type == 101]
        assert digit[0].payload_type == 101 and digit[0].marker  # due at the very next tick
        assert len({p.timestamp for p in events}) == 1 and events[-1].payload[1] & 0x80
        _assert_one_stream(pkts + prompt + digit, media.sender.ssrc)
        assert pacer.is_quiet(media)

        pacer.remove(media)
        assert media.stats.tx_packets == len(pkts) + len(prompt) + len(digit)
    finally:
        media.close()
        peer.close()


@native_only
async def test_quiet_call_wakes_for_a_listener_and_hold_and_still_times_out() -> None:
    peer = _peer()
    media = await _session(peer.getsockname(), media_timeout_s=1.0)
    timed_out: list[bool] = []
    media.on_media_timeout = lambda: timed_out.append(True)
    pacer = Pacer()
    pacer.add(media)
    now = media.last_rx
    try:
        pacer._run_tick(now, now)
        assert pacer.is_quiet(media)
        sub = media.subscribe(audio=True)
        assert not pacer.is_quiet(media)  # caller audio is wanted every tick
        pacer._run_tick(now, now)
        assert sub.get_nowait() is not None
        media.unsubscribe(sub)
        pacer._run_tick(now, now)
        assert pacer.is_quiet(media)
        media.on_hold = True
        assert not pacer.is_quiet(media)
        _drain(peer)
        pacer._run_tick(now, now)
        assert _drain(peer) == []  # on hold: nothing sent
        media.on_hold = False
        for _ in range(120):  # 2.4 s without a packet from the caller
            now += 0.02
            pacer._run_tick(now, now)
        assert pacer.is_quiet(media) and timed_out == [True]
    finally:
        media.close()
        peer.close()


async def test_receive_fast_lane_keeps_the_statistics_and_the_lock() -> None:
    caller = _peer()
    media = await _session(("127.0.0.1", free_port_block(2)))
    ref = RtpReceiverStats(0x1234)
    addr = caller.getsockname()
    try:
        seqs = [10, 11, 12, 14, 13, 15, 15, 3000, 3001, 16]  # loss, reorder, duplicate, jump
        for i, seq in enumerate(seqs):
            pkt = RtpPacket(0, seq, 160 * seq, 0x1234, PCMU_SILENCE)
            at = 5.0 + 0.02 * i + (0.004 if i % 3 else 0.0)
            media.on_datagram(pkt.serialize(), addr)
            ref.update(pkt, media.last_rx if i == 0 else at)
            media.last_rx = at  # not asserted: the session stamps its own clock
        rx = media.rx_stats
        assert rx is not None
        assert (rx.received, rx.max_seq, rx.cycles, rx.bad_seq) == \
            (ref.received, ref.max_seq, ref.cycles, ref.bad_seq)
        assert media.stats.rx_packets == len(seqs)
        foreign = RtpPacket(0, 17, 160 * 17, 0x1234, PCMU_SILENCE).serialize()
        media.on_datagram(foreign, (addr[0], addr[1] + 1))  # the locked SSRC from another port
        other = RtpPacket(0, 18, 160 * 18, 0x9999, PCMU_SILENCE).serialize()
        media.on_datagram(other, addr)  # another SSRC while the locked one is alive
        assert media.stats.rx_foreign == 2 and media.stats.rx_packets == len(seqs)
        assert np.isfinite(rx.jitter)
    finally:
        media.close()
        caller.close()


@native_only
async def test_prompt_played_by_the_pacer_is_the_python_paths_stream() -> None:
    """A prompt the pacer's C loop plays (the session quiet, its sender holding the prompt as
    a script) reaches the caller byte for byte as the session's own per-tick Python path sends
    it: the padded last frame, completion, a second prompt, a barge-in stop mid-prompt (silence
    from the next tick, the play position what was sent) and a digit sent over a prompt."""
    peers = [_peer(), _peer()]
    scripted = await _session(peers[0].getsockname(), media_timeout_s=0)
    python = await _session(peers[1].getsockname(), media_timeout_s=0)  # no pacer: never quiet
    for m in (scripted, python):
        m.sender.ssrc, m.sender.sequence, m.sender.timestamp = 0x5151, 65500, 1000
    pacer = Pacer()
    pacer.add(scripted)
    sent = 0

    def tick(n: int) -> None:
        nonlocal sent
        for _ in range(n):
            t = pacer.tick
            pacer._run_tick(100.0, 100.0)
            python.on_tick(t, 100.0)
            sent += 1

    prompt = tone(500, 1.01)  # 50.5 frames: the last one is padded with silence
    try:
        items = [m.playout.enqueue(prompt) for m in (scripted, python)]
        tick(3)
        assert pacer.is_quiet(scripted) and scripted.sender.script is not None
        tick(60)  # to the end and past it: completed, then silence
        assert [i.done.result() for i in items] == ["completed", "completed"]
        assert items[0].pos == items[1].pos and scripted.sender.script is None
        assert pacer.is_quiet(scripted)  # silence only again
        items = [m.playout.enqueue(prompt) for m in (scripted, python)]
        tick(10)
        for m, item in zip((scripted, python), items, strict=True):
            m.playout.stop(item, "dtmf")  # barge-in
        assert items[0].pos == items[1].pos == 10 * 160
        tick(5)
        items = [m.playout.enqueue(prompt) for m in (scripted, python)]
        tick(10)
        for m in (scripted, python):
            m.send_digits("5")
        tick(70)
        assert [i.done.result() for i in items] == ["completed", "completed"]
        pacer.remove(scripted)
        got, want = _raw_rtp(peers[0]), _raw_rtp(peers[1])
        assert len(want) >= sent - 5 and got == want  # a digit's ticks may carry no packet
        assert scripted.stats.tx_packets == python.stats.tx_packets == len(want)
        assert scripted.playout.frames_sent == python.playout.frames_sent
    finally:
        for m in (scripted, python):
            m.close()
        for p in peers:
            p.close()


@pytest.mark.parametrize("quiet", [False, True])
async def test_each_call_reports_rtcp_on_its_own_tick(quiet: bool) -> None:
    """The pacer's tick is shared by every call, so RTCP at ``tick % 250 == 0`` would send 500
    calls' reports in one tick (~10 ms on this box, every 5 s). Each session reports on the
    tick its ``housekeeping_phase`` names (from its random SSRC), awake or quiet."""
    base = free_port_block(2)
    rtp_peer = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    rtp_peer.bind(("127.0.0.1", base))
    rtcp_peer = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    rtcp_peer.bind(("127.0.0.1", base + 1))
    rtcp_peer.setblocking(False)
    media = await _session(("127.0.0.1", base), media_timeout_s=0)
    media.housekeeping_phase = 137
    pacer = Pacer()
    pacer.add(media)
    if not quiet:
        media.subscribe(audio=True)  # caller audio wanted: ticked in Python every tick
    reports = []
    try:
        for _ in range(500):
            now = media.last_rx
            pacer._run_tick(now, now)
            try:
                if 200 <= rtcp_peer.recv(2048)[1] <= 204:
                    reports.append(pacer.tick - 1)
            except BlockingIOError:
                pass
        assert reports == [137, 387]
        assert pacer.is_quiet(media) == (quiet and NATIVE_SEND)
    finally:
        media.close()
        rtp_peer.close()
        rtcp_peer.close()
