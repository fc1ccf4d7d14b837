"""The receive fast lane in C (``engine/rtp/_rtprecv.c``, issue 18 media speed).

The lane is installed as the RTP protocol's ``datagram_received`` and takes the common packet
(the latched source's audio, locked SSRC, in sequence, nobody listening) without running Python.
It must leave the session exactly as the Python path (``MediaSession.on_datagram``) does: the
same counters, the same RFC 3550 state (sequence cycles, loss, interarrival jitter, bit for
bit), the same source lock, the same ``last_rx``; and it must hand everything else (RTCP, RFC
4733 events, other sources or SSRCs, jumps, duplicates, a listener) to that path. Real sockets
and the real event loop (uvloop when installed), so the test also shows the loop calls the lane.
"""

from __future__ import annotations

import asyncio
import dataclasses
import socket

import pytest

from core.clock import FakeClock
from engine.media.ports import PortAllocator
from engine.media.session import MediaSession
from engine.rtp import rtcp
from engine.rtp.dtmf import digit_packets
from engine.rtp.packet import RtpPacket
from engine.rtp.rxlane import NATIVE_RX_LANE, RtpProtocol
from tests.netutil import free_port_block, wait_until

pytestmark = pytest.mark.skipif(
    NATIVE_RX_LANE is None, reason="native receive lane off (not built, or IVR_RTP_NATIVE=0)")
PCMU_SILENCE = b"\xff" * 160
SSRC = 0x1234


async def _session(clock: FakeClock | None = None) -> tuple[MediaSession, RtpProtocol]:
    base = free_port_block(4)
    port, transport, proto = await PortAllocator(base, base + 3).bind("127.0.0.1", RtpProtocol)
    assert isinstance(proto, RtpProtocol)
    media = MediaSession(codec="PCMU", payload_type=0, telephone_event_pt=101,
                         remote=("127.0.0.1", free_port_block(2)), local_port=port,
                         transport=transport, protocol=proto, clock=clock,
                         allowed_sources=frozenset({"127.0.0.1"}))
    return media, proto


def _state(media: MediaSession) -> dict[str, object]:
    rx = media.rx_stats
    return {"stats": dataclasses.asdict(media.stats), "last_rx": media.last_rx,
            "rx": None if rx is None else dict(vars(rx)),
            "lock": dataclasses.asdict(media.guard._audio),
            "events": dataclasses.asdict(media.guard._events), "source": media.guard.source}


def _audio(seq: int, *, ssrc: int = SSRC, pt: int = 0) -> bytes:
    return RtpPacket(pt, seq & 0xFFFF, (160 * seq) & 0xFFFFFFFF, ssrc, PCMU_SILENCE).serialize()


async def test_the_lane_leaves_the_session_as_the_python_path_does() -> None:
    clock_lane, clock_py = FakeClock(), FakeClock()
    lane_media, lane_proto = await _session(clock_lane)
    py_media, _ = await _session(clock_py)
    addr = ("127.0.0.1", 40000)
    event = digit_packets("5", 0.1)[0].payload
    # (datagram, from, what happens meanwhile): wrap-around, loss, reorder, duplicate, a jump
    # and the source restarting after it, an event, RTCP, comfort noise, foreign port and SSRC
    steps: list[tuple[bytes, tuple[str, int], str]] = [
        (_audio(65530 + i), addr, "") for i in range(4)]
    steps += [(_audio(65534), addr, ""), (_audio(65535), addr, ""), (_audio(65536), addr, ""),
              (_audio(65538), addr, ""), (_audio(65537), addr, ""), (_audio(65538), addr, ""),
              (RtpPacket(101, 3, 160 * 65538, SSRC, event, True).serialize(), addr, ""),
              (_audio(65540), addr, ""), (_audio(65541, pt=13), addr, ""),
              (rtcp.serialize([rtcp.RtcpReceiverReport(SSRC, [])]), addr, ""),
              (_audio(65542), ("127.0.0.1", 40001), ""), (_audio(65542, ssrc=0x9999), addr, ""),
              (_audio(65542), addr, ""), (_audio(70000), addr, ""), (_audio(70001), addr, ""),
              (_audio(70002), addr, "listen"), (_audio(70003), addr, ""),
              (_audio(70004), addr, "unlisten")]
    steps += [(_audio(70005 + i), addr, "") for i in range(20)]
    subs = {}
    wrapped = False
    for i, (data, src, what) in enumerate(steps):
        for media in (lane_media, py_media):
            if what == "listen":
                subs[id(media)] = media.subscribe(audio=True)
            elif what == "unlisten":
                media.unsubscribe(subs[id(media)])
        step = 0.02 + (0.0035 if i % 3 else 0.0) - (0.002 if i % 5 == 0 else 0.0)
        await clock_lane.advance(step)
        await clock_py.advance(step)
        lane_proto.datagram_received(data, src)  # what the event loop calls
        py_media.on_datagram(data, src)
        assert _state(lane_media) == _state(py_media), f"after step {i}"
        wrapped = wrapped or getattr(lane_media.rx_stats, "cycles", 0) == 65536
    lane = lane_media._lane
    assert lane.fast >= 25 and lane.passed >= 10  # both paths ran
    rx = lane_media.rx_stats
    assert wrapped and rx is not None and rx.jitter > 0
    assert lane_media.stats.rx_foreign == 2 and lane_media.stats.dtmf_rx == 0
    lane_media.close()
    py_media.close()


async def test_the_event_loop_hands_datagrams_to_the_lane() -> None:
    media, _ = await _session()
    caller = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    caller.bind(("127.0.0.1", 0))
    try:
        for seq in range(100, 150):
            caller.sendto(_audio(seq), ("127.0.0.1", media.local_port))
            await asyncio.sleep(0.001)
        await wait_until(lambda: media.stats.rx_packets == 50, what="the caller's audio")
        rx = media.rx_stats
        assert rx is not None and (rx.received, rx.max_seq) == (49, 149)  # the first in probation
        assert media.guard.source == caller.getsockname() and media._lane.fast >= 45
        media.close()
        caller.sendto(_audio(150), ("127.0.0.1", media.local_port))
        await asyncio.sleep(0.05)
        assert media.stats.rx_packets == 50  # closed: nothing counted
    finally:
        media.close()
        caller.close()


async def test_a_closed_session_and_its_lane_are_collected() -> None:
    """The lane holds the session and the protocol holds the lane (a cycle through a C object):
    the garbage collector must be able to see through it, or every call would leak."""
    import gc
    import weakref

    def lanes() -> int:
        return sum(type(o) is NATIVE_RX_LANE for o in gc.get_objects())

    gc.collect()
    before = lanes()
    media, proto = await _session()
    ref = weakref.ref(media)
    assert lanes() == before + 1
    media.close()
    del media, proto
    await asyncio.sleep(0.01)  # the transport's close runs on the next loop turn
    gc.collect()
    assert ref() is None and lanes() == before
