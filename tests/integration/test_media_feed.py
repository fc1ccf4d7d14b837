"""A consumer of a call's caller events that falls seconds behind still gets every digit, in
order, ahead of the audio it is late on; its audio backlog is bounded.

Real RTP datagrams from a loopback peer socket reach the media session's receive path (audio
and RFC 4733 events interleaved); the pacer's tick is driven by hand on a fake clock, so 10 s of
media pass in milliseconds while the consumer reads nothing."""

from __future__ import annotations

import asyncio
import socket

import numpy as np

from audio import g711
from core.call import AudioFrameEvent, DtmfEvent
from core.clock import FakeClock
from engine.media.ports import PortAllocator
from engine.media.session import MediaSession
from engine.media.subscription import MAX_AUDIO_FRAMES
from engine.rtp.dtmf import digit_packets
from engine.rtp.packet import RtpPacket
from engine.rtp.rxlane import RtpProtocol
from tests.netutil import free_port_block

DIGITS = "1234567890*#"


async def test_a_consumer_seconds_behind_gets_every_digit_in_order() -> None:
    clock = FakeClock()
    base = free_port_block(4)
    port, transport, proto = await PortAllocator(base, base + 3).bind("127.0.0.1", RtpProtocol)
    peer = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    peer.bind(("127.0.0.1", 0))
    media = MediaSession(codec="PCMU", payload_type=0, telephone_event_pt=101,
                         remote=peer.getsockname(), local_port=port, transport=transport,
                         protocol=proto, clock=clock)
    late = media.subscribe(audio=True)  # subscribed, and then never read for 10 s
    voice = g711.ulaw_encode(np.full(160, 1000, np.int16))
    seq, ts = 0, 0
    per_digit_ticks = 500 // len(DIGITS)
    try:
        for tick in range(1, 501):  # 10 s of 20 ms ticks
            peer.sendto(RtpPacket(0, seq, ts, 0xCAFE, voice).serialize(), ("127.0.0.1", port))
            seq, ts = seq + 1, ts + 160
            if tick % per_digit_ticks == 0 and tick // per_digit_ticks <= len(DIGITS):
                digit = DIGITS[tick // per_digit_ticks - 1]
                for step in digit_packets(digit, 0.08):
                    peer.sendto(RtpPacket(101, seq, ts, 0xCAFE, step.payload,
                                          marker=step.marker).serialize(), ("127.0.0.1", port))
                    seq += 1
            await asyncio.sleep(0)  # the datagrams reach the session's socket callback
            await asyncio.sleep(0.001)
            await clock.advance(0.02)
            media.on_tick(tick, clock.now())
        for _ in range(20):  # the end packets of the last digit
            await asyncio.sleep(0.001)
            await clock.advance(0.02)
            media.on_tick(600 + _, clock.now())
        events = []
        while (ev := late.get_nowait()) is not None:
            events.append(ev)
    finally:
        media.close()
        peer.close()
    got = [e.digit for e in events if isinstance(e, DtmfEvent)]
    assert "".join(got) == DIGITS  # every key, once, in order
    kinds = ["dtmf" if isinstance(e, DtmfEvent) else "audio" for e in events]
    assert kinds[: len(DIGITS)] == ["dtmf"] * len(DIGITS)  # control overtakes the backlog
    audio = [e for e in events if isinstance(e, AudioFrameEvent)]
    assert len(audio) == MAX_AUDIO_FRAMES and late.dropped_audio > 0  # bounded, oldest dropped
    assert late.dropped_control == 0
