"""The SIP core against a real peer: SIPp (Debian sip-tester) on loopback.

The engine side here is the bare user agent with a test handler that answers with a fixed SDP:
these tests are about signalling (transactions, dialogs, digest, CANCEL, loss, hostile input).
Media and the full engine are covered by the media tests.
"""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path

import pytest

from core.clock import FakeClock
from core.rate import TokenBucket
from engine.sip.invite import CallFailed, IncomingInvite, OutgoingInvite
from engine.sip.message import SipUri
from engine.sip.security import InboundPolicy
from engine.sip.ua import Credentials, UserAgent
from tests.netutil import free_port
from tests.rawsip import header, open_peer
from tests.sipp import SippResult, SippServer, run_sipp_async

pytestmark = [pytest.mark.sipp, pytest.mark.xdist_group("sipp")]
FIXTURES = Path(__file__).parent.parent / "fixtures" / "sipp"

ANSWER_SDP = (
    b"v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
    b"m=audio 30000 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n"
)


class AnsweringHandler:
    """Answers every call at once, except calls to ``ring`` which ring forever."""

    def __init__(self) -> None:
        self.sessions: list[IncomingInvite] = []

    def on_invite(self, session: IncomingInvite) -> None:
        self.sessions.append(session)
        session.ring()
        if session.callee != "ring":
            session.answer(ANSWER_SDP)


async def start_ua(policy: InboundPolicy | None = None, handler: AnsweringHandler | None = None,
                   transports: tuple[str, ...] = ("udp", "tcp")) -> tuple[UserAgent, int]:
    ua = UserAgent(handler=handler or AnsweringHandler(),
                   policy=policy or InboundPolicy.from_config(["127.0.0.0/8"], {}, "test"))
    port = free_port()
    await ua.start("127.0.0.1", port, list(transports))
    return ua, port


@pytest.mark.parametrize("transport", ["u1", "t1"])
async def test_sipp_uac_calls_engine(tmp_path: Path, transport: str) -> None:
    handler = AnsweringHandler()
    ua, port = await start_ua(handler=handler)
    try:
        res = await run_sipp_async(
            f"127.0.0.1:{port}", "uac", local_port=free_port(), workdir=tmp_path,
            extra=["-m", "30", "-r", "30", "-t", transport, "-timeout", "30"],
        )
    finally:
        await ua.stop()
    assert res.returncode == 0, res.stdout + res.errors
    assert res.successful == 30 and res.failed == 0
    # The engine answers at once and ACKs arrive: no retransmission storm either way.
    assert res.retransmissions == 0
    assert ua.layer.retransmissions == 0
    assert all(s.ended.done() and s.ended.result().cause == "normal" for s in handler.sessions)


async def test_engine_calls_sipp_uas(tmp_path: Path) -> None:
    ua, _ = await start_ua()
    uas_port = free_port()
    try:
        async with SippServer("uas", local_port=uas_port, workdir=tmp_path,
                              extra=["-m", "3"]) as uas:
            for _ in range(3):
                session = await ua.invite(f"sip:service@127.0.0.1:{uas_port}", ANSWER_SDP)
                resp = await asyncio.wait_for(session.answered, 10)
                assert resp.status == 200
                assert session.dialog is not None and session.dialog.remote_tag
                assert session.remote_sdp and b"m=audio" in session.remote_sdp
                await session.bye()
                assert session.ended.result().side == "engine"
            assert uas.proc is not None
            await asyncio.wait_for(uas.proc.wait(), 15)
        res = uas.result()
    finally:
        await ua.stop()
    assert res.successful == 3 and res.failed == 0


async def call_authenticating_uas(tmp_path: Path, scenario: Path, creds: Credentials
                                  ) -> tuple[OutgoingInvite, SippResult]:
    """Place one call to a SIPp callee that challenges it, hang up, return what both saw."""
    ua, _ = await start_ua()
    uas_port = free_port()
    try:
        async with SippServer(scenario, local_port=uas_port, workdir=tmp_path,
                              extra=["-m", "1"]) as uas:
            session = await ua.invite(f"sip:trunk@127.0.0.1:{uas_port}", ANSWER_SDP,
                                      creds=creds)
            resp = await asyncio.wait_for(session.answered, 10)
            assert resp.status == 200
            await session.bye()
            assert uas.proc is not None
            await asyncio.wait_for(uas.proc.wait(), 10)
        return session, uas.result()
    finally:
        await ua.stop()


async def test_engine_answers_digest_challenge_from_sipp(tmp_path: Path) -> None:
    session, res = await call_authenticating_uas(tmp_path, FIXTURES / "uas_digest.xml",
                                                 Credentials("trunkuser", "s3cret"))
    assert "Authorization" in session.invite.headers
    assert res.successful == 1, res


async def test_wrong_password_is_refused_by_sipp(tmp_path: Path) -> None:
    ua, _ = await start_ua()
    uas_port = free_port()
    try:
        async with SippServer(FIXTURES / "uas_digest.xml", local_port=uas_port,
                              workdir=tmp_path, extra=["-m", "1"]):
            session = await ua.invite(f"sip:trunk@127.0.0.1:{uas_port}", ANSWER_SDP,
                                      creds=Credentials("trunkuser", "wrong"))
            with pytest.raises(CallFailed) as err:
                await asyncio.wait_for(session.answered, 10)
            assert err.value.status == 403
    finally:
        await ua.stop()


async def test_sipp_cancels_before_answer(tmp_path: Path) -> None:
    handler = AnsweringHandler()
    ua, port = await start_ua(handler=handler)
    try:
        res = await run_sipp_async(
            f"127.0.0.1:{port}", FIXTURES / "uac_cancel.xml", local_port=free_port(),
            workdir=tmp_path, extra=["-m", "5", "-r", "5", "-timeout", "20"],
        )
    finally:
        await ua.stop()
    assert res.returncode == 0, res.stdout + res.errors
    assert res.successful == 5
    assert [s.ended.result().cause for s in handler.sessions] == ["cancelled"] * 5


async def test_calls_complete_under_packet_loss(tmp_path: Path) -> None:
    """SIPp drops 10% of what it receives and sends; transactions must still complete."""
    ua, port = await start_ua()
    try:
        res = await run_sipp_async(
            f"127.0.0.1:{port}", "uac", local_port=free_port(), workdir=tmp_path,
            extra=["-m", "40", "-r", "40", "-lost", "10", "-timeout", "60", "-recv_timeout",
                   "40000"],
            limit_s=90,
        )
    finally:
        await ua.stop()
    assert res.successful == 40, res.stdout[-2000:] + res.errors
    assert res.retransmissions > 0  # loss really happened and was repaired


async def test_untrusted_source_is_forbidden(tmp_path: Path) -> None:
    policy = InboundPolicy.from_config(["10.0.0.0/8"], {}, "test")
    handler = AnsweringHandler()
    ua, port = await start_ua(policy=policy, handler=handler)
    try:
        res = await run_sipp_async(
            f"127.0.0.1:{port}", "uac", local_port=free_port(), workdir=tmp_path,
            extra=["-m", "1", "-timeout", "10"],
        )
    finally:
        await ua.stop()
    assert res.successful == 0
    assert "403" in res.stdout + res.errors
    assert handler.sessions == []
    assert ua.stats.rejected_untrusted >= 1


async def test_digest_protected_engine_accepts_credentials() -> None:
    """Untrusted source + configured users: 401 challenge, then our UAC's credentials pass."""
    policy = InboundPolicy.from_config([], {"alice": "pw1"}, "ivr-test")
    handler = AnsweringHandler()
    engine, port = await start_ua(policy=policy, handler=handler)
    caller, _ = await start_ua()
    try:
        bad = await caller.invite(f"sip:svc@127.0.0.1:{port}", ANSWER_SDP,
                                  creds=Credentials("alice", "nope"))
        with pytest.raises(CallFailed) as err:
            await asyncio.wait_for(bad.answered, 5)
        assert err.value.status == 403
        good = await caller.invite(f"sip:svc@127.0.0.1:{port}", ANSWER_SDP,
                                   creds=Credentials("alice", "pw1"))
        resp = await asyncio.wait_for(good.answered, 5)
        assert resp.status == 200
        assert "SHA-256" in (good.invite.headers.get("Authorization") or "")
        await good.bye()
        opts = await caller.options(SipUri.parse(f"sip:127.0.0.1:{port}"),
                                    Credentials("alice", "pw1"))
        assert opts.status == 200
    finally:
        await caller.stop()
        await engine.stop()


HOSTILE = [
    b"\x00\x01garbage\xff" * 10,
    b"OPTIONS sip:x@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:9;branch=z9hG4bKm\r\n"
    b"From: <sip:a@b>;tag=1\r\nTo: <sip:x@127.0.0.1>\r\nCSeq: 1 OPTIONS\r\n\r\n",
    b"INVITE sip:x@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:9;branch=z9hG4bKa\r\n",
    b"OPTIONS sip:x@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:9;branch=z9hG4bKb\r\n"
    b"From: <sip:a@b>;tag=1\r\nTo: <sip:x@127.0.0.1>\r\nCall-ID: c1\r\nCSeq: 1 OPTIONS\r\n"
    b"X-Huge: " + b"a" * 70000 + b"\r\nContent-Length: 0\r\n\r\n",
    b"OPTIONS sip:x@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:9;branch=z9hG4bKc\r\n"
    b"From: <sip:a@b>;tag=1\r\nTo: <sip:x@127.0.0.1>\r\nCall-ID: c2\r\nCSeq: 1 OPTIONS\r\n"
    b"Content-Length: 500\r\n\r\nshort",
    b"OPTIONS sip:x@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:9;branch=z9hG4bKd\r\n"
    b"From: <sip:a@b>;tag=1\r\nTo: <sip:x@127.0.0.1>\r\nCall-ID: c9\r\nCSeq: 1 INVITE\r\n\r\n",
    b"OPTIONS sip:x@127.0.0.1 SIP/7.0\r\nVia: SIP/2.0/UDP 127.0.0.1:9;branch=z9hG4bKe\r\n"
    b"From: <sip:a@b>;tag=1\r\nTo: <sip:x@127.0.0.1>\r\nCall-ID: c3\r\nCSeq: 1 OPTIONS\r\n\r\n",
    b"OPTIONS http://x SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:9;branch=z9hG4bKf\r\n"
    b"From: <sip:a@b>;tag=1\r\nTo: <sip:x@127.0.0.1>\r\nCall-ID: c4\r\nCSeq: 1 OPTIONS\r\n\r\n",
    b"FROB sip:x@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:9;branch=z9hG4bKg\r\n"
    b"From: <sip:a@b>;tag=1\r\nTo: <sip:x@127.0.0.1>\r\nCall-ID: c5\r\nCSeq: 1 FROB\r\n\r\n",
]


async def test_hostile_messages_then_options_still_answered() -> None:
    ua, port = await start_ua()
    loop = asyncio.get_running_loop()
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.setblocking(False)
    answers: list[bytes] = []
    try:
        for msg in HOSTILE:
            sock.sendto(msg[:65000], ("127.0.0.1", port))
        # Replies go to the Via sent-by (port 9, discarded) or, with rport absent, nowhere we
        # read; so ask again with our own source as Via for the statuses we can observe.
        via_port = sock.getsockname()[1]
        for msg in HOSTILE[4:]:
            fixed = msg.replace(b"127.0.0.1:9", f"127.0.0.1:{via_port}".encode())
            sock.sendto(fixed, ("127.0.0.1", port))
            try:
                data = await asyncio.wait_for(loop.sock_recv(sock, 65535), 2)
                answers.append(data.split(b"\r\n", 1)[0])
            except TimeoutError:
                answers.append(b"")
        probe, _ = await start_ua()
        try:
            resp = await probe.options(SipUri.parse(f"sip:127.0.0.1:{port}"))
        finally:
            await probe.stop()
    finally:
        sock.close()
        await ua.stop()
    assert resp.status == 200
    assert "INVITE" in (resp.headers.get("Allow") or "")
    assert answers[0].startswith(b"SIP/2.0 400")  # Content-Length beyond the body
    assert answers[1].startswith(b"SIP/2.0 400")  # CSeq method differs from the request
    assert answers[2].startswith(b"SIP/2.0 505")  # bad version
    assert answers[3].startswith(b"SIP/2.0 416")  # unsupported URI scheme
    assert answers[4].startswith(b"SIP/2.0 501")  # unknown method
    assert ua.stats.parse_errors >= 5


async def test_max_calls_counts_each_call_once(tmp_path: Path) -> None:
    """sip.max_calls = 2: two concurrent calls are both answered (an answered call must not
    count twice), a third is refused with 503."""
    ua = UserAgent(handler=AnsweringHandler(),
                   policy=InboundPolicy.from_config(["127.0.0.0/8"], {}, "t"), max_calls=2)
    port = free_port()
    await ua.start("127.0.0.1", port, ["udp"])
    try:
        two = await run_sipp_async(
            f"127.0.0.1:{port}", "uac", local_port=free_port(), workdir=tmp_path,
            extra=["-m", "2", "-l", "2", "-r", "10", "-d", "1500", "-timeout", "20"])
        (tmp_path / "three").mkdir()
        three = await run_sipp_async(
            f"127.0.0.1:{port}", "uac", local_port=free_port(), workdir=tmp_path / "three",
            extra=["-m", "3", "-l", "3", "-r", "10", "-d", "1500", "-timeout", "20"])
    finally:
        await ua.stop()
    assert two.successful == 2, two.stdout[-1500:]
    assert three.successful == 2 and three.failed == 1
    assert ua.active_calls == 0


async def test_a_burst_past_max_cps_is_refused_at_once_without_retransmission_storms(
        tmp_path: Path) -> None:
    """sip.max_cps = 5 (burst 5) and SIPp sends 40 calls within about a second: the burst and
    the rate are admitted, the rest get 503 straight away (so SIPp stops retransmitting them),
    and the UA counts each refusal."""
    ua = UserAgent(handler=AnsweringHandler(),
                   policy=InboundPolicy.from_config(["127.0.0.0/8"], {}, "t"),
                   admission=TokenBucket(5, 5))
    port = free_port()
    await ua.start("127.0.0.1", port, ["udp"])
    try:
        res = await run_sipp_async(
            f"127.0.0.1:{port}", "uac", local_port=free_port(), workdir=tmp_path,
            extra=["-m", "40", "-l", "40", "-r", "40", "-d", "500", "-timeout", "30"])
    finally:
        await ua.stop()
    assert res.successful + res.failed == 40, res.stdout[-1500:]
    # 5 at once plus 5 a second over the ~1 s the calls take to arrive (the box is shared:
    # allow a slow SIPp a few more seconds of refill)
    assert 5 <= res.successful <= 25, res.stdout[-1500:]
    assert ua.stats.refused_over_cps == res.failed >= 15
    assert res.retransmissions <= 5, res.stdout[-1500:]


async def test_refused_invite_says_when_to_retry_from_the_bucket() -> None:
    """Retry-After is the whole seconds until the bucket has a call again (at least 1)."""
    clock = FakeClock()
    ua = UserAgent(handler=AnsweringHandler(),
                   policy=InboundPolicy.from_config(["127.0.0.0/8"], {}, "t"),
                   admission=TokenBucket(0.25, 1), clock=clock)
    port = free_port()
    await ua.start("127.0.0.1", port, ["udp"])
    peer, peer_addr = await open_peer()
    try:
        for n in (1, 2):
            peer.send(raw_invite(n, peer_addr, ("127.0.0.1", port)), ("127.0.0.1", port))
        assert (await peer.next(b"SIP/2.0 200")).startswith(b"SIP/2.0 200")
        refused = await peer.next(b"SIP/2.0 503")
        assert header(refused, "Retry-After") == "4"  # 0.25 calls/s: 4 s for the next one
        await clock.advance(4.0)
        peer.send(raw_invite(3, peer_addr, ("127.0.0.1", port)), ("127.0.0.1", port))
        assert (await peer.next(b"SIP/2.0 200")).startswith(b"SIP/2.0 200")
    finally:
        await ua.stop()
    assert ua.stats.refused_over_cps == 1


def raw_invite(n: int, peer: tuple[str, int], ua: tuple[str, int]) -> bytes:
    sdp = ANSWER_SDP
    return (f"INVITE sip:ivr@{ua[0]}:{ua[1]} SIP/2.0\r\n"
            f"Via: SIP/2.0/UDP {peer[0]}:{peer[1]};branch=z9hG4bK-cps{n}\r\n"
            f"From: <sip:peer@{peer[0]}>;tag=p{n}\r\nTo: <sip:ivr@{ua[0]}>\r\n"
            f"Call-ID: cps-{n}@{peer[0]}\r\nCSeq: 1 INVITE\r\nMax-Forwards: 70\r\n"
            f"Contact: <sip:peer@{peer[0]}:{peer[1]}>\r\nContent-Type: application/sdp\r\n"
            f"Content-Length: {len(sdp)}\r\n\r\n").encode() + sdp
