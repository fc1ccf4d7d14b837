"""Protocol timers on the injected clock, over real loopback sockets: nothing here sleeps for the
timer. A scripted raw SIP peer (a UDP socket) plays the far end; ``FakeClock.advance`` moves time.

* 2xx retransmission until the ACK (RFC 3261 §13.3.1.4): T1, 2*T1 ... capped at T2, then BYE
  after 64*T1 without an ACK;
* CANCEL waits for a provisional response (§9.1) for at most Timer B, and is not sent without one;
* the ring timeout of an outbound call: CANCEL when it passes, disposition ``no_answer``.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from core.clock import FakeClock
from engine.cdr import CallRecord
from engine.controller import CallController, MediaOptions
from engine.media.ports import PortAllocator
from engine.rtp.pacer import Pacer
from engine.sip.invite import IncomingInvite
from engine.sip.security import InboundPolicy
from engine.sip.ua import UserAgent
from tests.netutil import free_port_block
from tests.rawsip import header, open_peer

SDP = (b"v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
       b"m=audio 40000 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n")


async def start_ua(clock: FakeClock, handler: object = None) -> tuple[UserAgent, tuple[str, int]]:
    ua = UserAgent(policy=InboundPolicy.from_config(["127.0.0.0/8"], {}, "test"), clock=clock,
                   handler=handler)  # type: ignore[arg-type]
    local = await ua.start("127.0.0.1", 0, ["udp"])
    return ua, local["udp"]


class AnswerAtOnce:
    def __init__(self) -> None:
        self.sessions: list[IncomingInvite] = []

    def on_invite(self, session: IncomingInvite) -> None:
        self.sessions.append(session)
        session.answer(SDP)


def invite(peer_addr: tuple[str, int], ua_addr: tuple[str, int]) -> bytes:
    host, port = peer_addr
    return (f"INVITE sip:ivr@{ua_addr[0]}:{ua_addr[1]} SIP/2.0\r\n"
            f"Via: SIP/2.0/UDP {host}:{port};branch=z9hG4bK-t1\r\n"
            f"From: <sip:peer@{host}>;tag=p1\r\nTo: <sip:ivr@{ua_addr[0]}>\r\n"
            f"Call-ID: timers-1@{host}\r\nCSeq: 1 INVITE\r\nMax-Forwards: 70\r\n"
            f"Contact: <sip:peer@{host}:{port}>\r\nContent-Type: application/sdp\r\n"
            f"Content-Length: {len(SDP)}\r\n\r\n").encode() + SDP


async def test_2xx_is_retransmitted_on_the_clock_until_64_t1_then_bye() -> None:
    clock = FakeClock()
    handler = AnswerAtOnce()
    ua, ua_addr = await start_ua(clock, handler)
    peer, peer_addr = await open_peer()
    try:
        peer.send(invite(peer_addr, ua_addr), ua_addr)
        first = await peer.next(b"SIP/2.0 200")
        assert header(first, "CSeq") == "1 INVITE"
        await asyncio.sleep(0.05)
        assert peer.pending(b"SIP/2.0 200") == 0  # nothing more until the clock moves
        start = clock.now()  # the 200 went out and its first timer started at this time
        deadline = start
        for step in (0.5, 1.0, 2.0, 4.0, 4.0, 4.0, 4.0, 4.0, 4.0, 4.0):  # T1 doubling, T2 cap
            deadline += step
            await clock.advance(deadline - clock.now() - 0.001)
            await asyncio.sleep(0.02)
            assert peer.pending(b"SIP/2.0 200") == 0, f"retransmitted before {deadline - start}"
            await clock.advance(0.002)
            await peer.next(b"SIP/2.0 200")
        await clock.advance(start + 32.0 - clock.now() - 0.001)  # 31.5 s: the last one went
        await asyncio.sleep(0.02)
        assert peer.pending(b"BYE") == 0
        await clock.advance(0.002)  # 64*T1 without an ACK: the UAS hangs up
        bye = await peer.next(b"BYE ")
        assert header(bye, "Call-ID") == "timers-1@127.0.0.1"
        assert handler.sessions[0].ended.done()
        assert handler.sessions[0].ended.result().cause == "no_ack"
    finally:
        await ua.stop(drain_s=0)
        assert peer.transport is not None
        peer.transport.close()


async def test_ack_stops_the_2xx_retransmission() -> None:
    clock = FakeClock()
    handler = AnswerAtOnce()
    ua, ua_addr = await start_ua(clock, handler)
    peer, peer_addr = await open_peer()
    try:
        peer.send(invite(peer_addr, ua_addr), ua_addr)
        ok = await peer.next(b"SIP/2.0 200")
        to = header(ok, "To")
        ack = (f"ACK sip:ivr@{ua_addr[0]}:{ua_addr[1]} SIP/2.0\r\n"
               f"Via: SIP/2.0/UDP {peer_addr[0]}:{peer_addr[1]};branch=z9hG4bK-ack\r\n"
               f"From: <sip:peer@127.0.0.1>;tag=p1\r\nTo: {to}\r\n"
               f"Call-ID: timers-1@127.0.0.1\r\nCSeq: 1 ACK\r\nMax-Forwards: 70\r\n"
               f"Content-Length: 0\r\n\r\n").encode()
        peer.send(ack, ua_addr)
        await asyncio.sleep(0.05)  # the ACK arrives
        await clock.advance(40.0)
        await asyncio.sleep(0.05)
        assert peer.pending(b"SIP/2.0 200") == 0 and peer.pending(b"BYE") == 0
        assert handler.sessions[0].active
    finally:
        await ua.stop(drain_s=0)
        assert peer.transport is not None
        peer.transport.close()


async def test_cancel_waits_for_a_provisional_for_at_most_timer_b() -> None:
    clock = FakeClock()
    ua, _ = await start_ua(clock)
    peer, peer_addr = await open_peer()
    try:
        session = await ua.invite(f"sip:callee@127.0.0.1:{peer_addr[1]}", SDP)
        await peer.next(b"INVITE ")
        canceller = asyncio.ensure_future(session.cancel())
        await clock.advance(31.0)
        assert not canceller.done() and peer.pending(b"CANCEL") == 0
        await clock.advance(1.5)  # Timer B (64*T1 = 32 s) passes with no provisional
        await asyncio.wait_for(canceller, 5)
        await asyncio.sleep(0.05)
        assert peer.pending(b"CANCEL") == 0  # §9.1: no CANCEL before a provisional response
    finally:
        await ua.stop(drain_s=0)
        assert peer.transport is not None
        peer.transport.close()


async def test_ring_timeout_cancels_and_records_no_answer(tmp_path: Path) -> None:
    clock = FakeClock()
    ua, _ = await start_ua(clock)
    peer, peer_addr = await open_peer()
    records: list[CallRecord] = []

    class Sink:
        def put(self, record: CallRecord) -> None:
            records.append(record)

    rtp = free_port_block(10)
    ctrl = CallController(ua=ua, pacer=Pacer(), ports=PortAllocator(rtp, rtp + 8), clock=clock,
                          cdr=Sink(), router=lambda c: _never, options=MediaOptions())
    try:
        placing = asyncio.ensure_future(ctrl.originate(
            f"sip:callee@127.0.0.1:{peer_addr[1]}", _never, ring_timeout_s=45.0))
        inv = await peer.next(b"INVITE ")
        via, frm = header(inv, "Via"), header(inv, "From")
        call_id, to = header(inv, "Call-ID"), header(inv, "To")
        ringing = (f"SIP/2.0 180 Ringing\r\nVia: {via}\r\nFrom: {frm}\r\nTo: {to};tag=r1\r\n"
                   f"Call-ID: {call_id}\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n").encode()
        peer.send(ringing, ua.transports.local["udp"])
        await asyncio.sleep(0.05)
        await clock.advance(44.0)  # INVITE retransmissions stopped at the 180; still ringing
        await asyncio.sleep(0.02)
        assert peer.pending(b"CANCEL") == 0
        assert not placing.done(), placing.result()
        await clock.advance(1.5)
        cancel = await peer.next(b"CANCEL ")
        assert header(cancel, "Call-ID") == call_id
        ua_addr = ua.transports.local["udp"]
        for status, cseq in (("200 OK", "1 CANCEL"), ("487 Request Terminated", "1 INVITE")):
            peer.send((f"SIP/2.0 {status}\r\nVia: {header(cancel, 'Via')}\r\nFrom: {frm}\r\n"
                       f"To: {to};tag=r1\r\nCall-ID: {call_id}\r\nCSeq: {cseq}\r\n"
                       f"Content-Length: 0\r\n\r\n").encode(), ua_addr)
        ack = await peer.next(b"ACK ")  # the transaction ACKs the 487
        assert header(ack, "CSeq") == "1 ACK"
        rec = await asyncio.wait_for(placing, 5)
        assert rec.disposition == "no_answer" and rec.answer_at is None
        assert rec.invite_at == pytest.approx(clock.wall() - 45.5, abs=1.0)  # fake wall time
        # written at INVITE (in progress, so a killed node leaves a trace), then at the end
        assert [r.disposition for r in records] == ["in_progress", "no_answer"]
        assert records[-1] is rec
    finally:
        await ctrl.stop(drain_s=0)
        await ua.stop(drain_s=0)
        assert peer.transport is not None
        peer.transport.close()


async def _never(call: object) -> None:
    raise AssertionError("the call must not be answered")
