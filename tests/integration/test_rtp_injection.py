"""RTP injection into a live call (issue 11, item 3), over real sockets. SIPp places the call
with its SDP pointing at the test's own RTP socket, so the test is the caller's media: it talks
(latching the engine to it) and presses 5. Meanwhile an attacker on another host (127.0.0.2)
and one on the caller's host but another port send audio and RFC 4733 digits.

Before the fix: the attackers' digits were taken as the caller's, their audio entered the
jitter buffer, and one foreign packet moved the engine's outgoing audio to the attacker."""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path

import numpy as np
import pytest

from audio import g711
from audio.tones import tone
from engine.rtp.dtmf import digit_packets
from engine.rtp.packet import RtpPacket
from tests.integration.engine_harness import (
    Seen,
    collecting_app,
    open_sink,
    running_engine,
    sip_target,
)
from tests.netutil import free_port, wait_until
from tests.sipp import run_sipp_async

pytestmark = [pytest.mark.sipp, pytest.mark.xdist_group("sipp")]
FIXTURES = Path(__file__).parent.parent / "fixtures" / "sipp"
VOICE = g711.ulaw_encode(np.full(160, 800, np.int16))


class Talker:
    """Sends RTP from one socket with its own SSRC and sequence."""

    def __init__(self, send: object, ssrc: int) -> None:
        self.send = send
        self.ssrc, self.seq, self.ts = ssrc, 1000, 0

    def audio(self, dest: tuple[str, int], n: int) -> None:
        for _ in range(n):
            packet = RtpPacket(0, self.seq, self.ts, self.ssrc, VOICE).serialize()
            self.send(packet, dest)  # type: ignore[operator]
            self.seq, self.ts = (self.seq + 1) & 0xFFFF, self.ts + 160

    def digit(self, dest: tuple[str, int], key: str) -> None:
        for step in digit_packets(key, 0.1):
            packet = RtpPacket(101, self.seq, self.ts, self.ssrc, step.payload,
                               marker=step.marker).serialize()
            self.send(packet, dest)  # type: ignore[operator]
            self.seq = (self.seq + 1) & 0xFFFF
        self.ts += 800


def udp(host: str) -> socket.socket:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind((host, 0))
    s.setblocking(False)
    return s


async def test_foreign_rtp_and_digits_are_dropped_and_cannot_steal_the_audio(
        tmp_path: Path) -> None:
    seen = Seen()
    sink, transport, sink_port = await open_sink()
    other_host, third_port = udp("127.0.0.2"), udp("127.0.0.1")
    try:
        async with running_engine(tmp_path, lambda call: collecting_app(
                seen, prompt=tone(700, 2.0))) as engine:
            assert engine.controller is not None
            sipp = asyncio.ensure_future(run_sipp_async(
                sip_target(engine), FIXTURES / "uac_sink.xml", local_port=free_port(),
                workdir=tmp_path, extra=["-m", "1", "-set", "sinkport", str(sink_port),
                                         "-set", "pt", "0", "-set", "codec", "PCMU",
                                         "-d", "6000"], limit_s=30))
            await wait_until(lambda: bool(engine.controller.calls), 10, "the call")
            (call,) = engine.controller.calls.values()
            media = call.media
            port = ("127.0.0.1", media.local_port)
            caller = Talker(transport.sendto, ssrc=0x1111)
            caller.audio(port, 10)  # the caller talks first: the engine latches to it
            await wait_until(lambda: media.stats.rx_packets >= 10, what="the caller's audio")
            evil = Talker(other_host.sendto, ssrc=0xE)
            sneaky = Talker(third_port.sendto, ssrc=0x1111)  # same SSRC
            evil.audio(port, 50)
            evil.digit(port, "9")
            sneaky.digit(port, "8")
            sneaky.audio(port, 50)
            await wait_until(lambda: media.stats.rx_foreign >= 100, what="the attack arriving")
            caller.digit(port, "5")
            before = len(sink.packets)
            # the engine keeps sending its prompt to the caller (an event, not a timed window)
            await wait_until(lambda: len(sink.packets) >= before + 20, 10, "audio to the caller")
            stolen = [_drain(s) for s in (other_host, third_port)]
            res = await sipp
            await asyncio.wait_for(seen.done.wait(), 10)
    finally:
        transport.close()
        other_host.close()
        third_port.close()
    assert res.successful == 1, res.stdout[-1500:]
    assert seen.digits == ["5"]  # only the caller's key
    assert stolen == [0, 0]  # and never to an attacker
    assert media.remote == ("127.0.0.1", sink_port)
    assert media.jitter.stats.resyncs == 0 and media.jitter.stats.lost == 0
    assert media.stats.rx_foreign >= 100 + 6  # audio and events, all counted


def _drain(s: socket.socket) -> int:
    n = 0
    try:
        while True:
            s.recv(2048)
            n += 1
    except BlockingIOError:
        return n


async def test_an_rfc4733_digit_costs_no_lost_frames(tmp_path: Path) -> None:
    """Item 7: events share the audio's sequence numbers; they are not counted as lost."""
    seen = Seen()
    sink, transport, sink_port = await open_sink()
    try:
        async with running_engine(tmp_path, lambda call: collecting_app(seen)) as engine:
            assert engine.controller is not None
            sipp = asyncio.ensure_future(run_sipp_async(
                sip_target(engine), FIXTURES / "uac_sink.xml", local_port=free_port(),
                workdir=tmp_path, extra=["-m", "1", "-set", "sinkport", str(sink_port),
                                         "-set", "pt", "0", "-set", "codec", "PCMU",
                                         "-d", "3000"], limit_s=30))
            await wait_until(lambda: bool(engine.controller.calls), 10, "the call")
            (call,) = engine.controller.calls.values()
            port = ("127.0.0.1", call.media.local_port)
            caller = Talker(transport.sendto, ssrc=0x2222)
            for key in "123":
                caller.audio(port, 10)
                caller.digit(port, key)
                await asyncio.sleep(0.25)
            caller.audio(port, 20)
            await wait_until(lambda: "".join(seen.digits) == "123", 5, "the digits")
            stats = call.media.jitter.stats
            res = await sipp
    finally:
        transport.close()
    assert res.successful == 1
    assert stats.lost == 0, stats  # it was 5 per digit
