"""The per-call media session on real loopback sockets, driven tick by tick (no pacer, no SIP):
symmetric RTP latching, bad packets dropped without harm, RFC 4733 digits sent."""

from __future__ import annotations

import asyncio
import socket

import pytest

from engine.media.ports import PortAllocator
from engine.media.session import MediaSession
from engine.rtp.dtmf import DtmfReceiver
from engine.rtp.packet import RtpPacket
from engine.rtp.packet import parse as parse_rtp
from engine.rtp.rxlane import RtpProtocol
from tests.netutil import free_port_block, wait_until


async def _session(symmetric: bool, remote: tuple[str, int]) -> tuple[MediaSession, int]:
    base = free_port_block(4)
    ports = PortAllocator(base, base + 3)
    port, transport, proto = await ports.bind("127.0.0.1", RtpProtocol)
    assert isinstance(proto, RtpProtocol)
    media = MediaSession(codec="PCMU", payload_type=0, telephone_event_pt=101, remote=remote,
                         local_port=port, transport=transport, protocol=proto,
                         symmetric=symmetric)
    return media, port


def _peer() -> socket.socket:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    s.settimeout(0.5)
    return s


def _drain(sock: socket.socket) -> list[bytes]:
    out = []
    sock.settimeout(0.2)
    try:
        while True:
            out.append(sock.recv(2048))
    except TimeoutError:
        return out


@pytest.mark.parametrize("symmetric", [True, False])
async def test_symmetric_rtp_latches_to_the_real_source(symmetric: bool) -> None:
    """SDP says port X (behind NAT, unreachable); packets come from Y: we answer to Y."""
    nat_peer = _peer()
    nat_addr = nat_peer.getsockname()
    sdp_addr = ("127.0.0.1", free_port_block(2))  # nobody listens there
    media, port = await _session(symmetric, sdp_addr)
    try:
        pkt = RtpPacket(payload_type=0, sequence=1, timestamp=160, ssrc=7, payload=b"\xff" * 160)
        nat_peer.sendto(pkt.serialize(), ("127.0.0.1", port))
        await wait_until(lambda: media.stats.rx_packets == 1, what="the packet arriving")
        for tick in range(5):
            media.on_tick(tick, asyncio.get_running_loop().time())
        got = _drain(nat_peer)
    finally:
        media.close()
        nat_peer.close()
    if symmetric:
        assert media.stats.latched and media.remote == nat_addr
        assert len([d for d in got if parse_rtp(d).payload_type == 0]) == 5
    else:
        assert not media.stats.latched and got == []


async def test_bad_packets_are_counted_and_dropped() -> None:
    peer = _peer()
    media, port = await _session(True, peer.getsockname())
    try:
        for junk in (b"", b"\x80", b"\x40" * 20, b"\x80\x00\x00"):
            peer.sendto(junk, ("127.0.0.1", port))
        good = RtpPacket(payload_type=0, sequence=9, timestamp=0, ssrc=1, payload=b"\xff" * 160)
        peer.sendto(good.serialize(), ("127.0.0.1", port))
        await wait_until(lambda: media.stats.rx_packets == 1, what="the good packet arriving")
    finally:
        media.close()
        peer.close()
    assert media.stats.rx_bad == 4
    assert media.stats.rx_packets == 1


async def test_rfc4733_digits_are_sent_and_decode_once() -> None:
    peer = _peer()
    media, _ = await _session(False, peer.getsockname())
    try:
        media.send_digits("5#")
        for tick in range(1, 40):
            media.on_tick(tick, asyncio.get_running_loop().time())
        got = [parse_rtp(d) for d in _drain(peer)]
    finally:
        media.close()
        peer.close()
    rx = DtmfReceiver()
    digits = [d.digit for p in got if p.payload_type == 101
              for d in rx.feed(p.payload, p.timestamp, 0.0)]
    assert digits == ["5", "#"]
    assert media.stats.dtmf_tx == 2
