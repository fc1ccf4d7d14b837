"""Hostile and broken INVITEs against a running engine, over real UDP: each gets a final answer,
gives back every resource it took (RTP port, call slot) and leaves the engine serving real calls
(SIPp) with their records written.

The engine runs with ``max_calls=3``: before the fixes three INVITEs with unusable SDP stayed at
100 Trying for good, holding their slots, and every later call got 503."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from core.call import Call
from storage.tenancy import EVERY_TENANT
from tests.integration.engine_harness import Seen, collecting_app, running_engine, sip_target
from tests.netutil import free_port
from tests.rawsip import RawPeer, open_peer
from tests.sipp import dump_builtin, run_sipp_async

pytestmark = [pytest.mark.sipp, pytest.mark.xdist_group("sipp")]

SDP_HEAD = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\n"
GOOD_C = "c=IN IP4 127.0.0.1\r\n"
BAD_OFFERS = {
    "rtpmap without a rate": SDP_HEAD + GOOD_C + "t=0 0\r\nm=audio 40000 RTP/AVP 0 101\r\n"
    "a=rtpmap:0 PCMU\r\na=rtpmap:101 telephone-event/8000\r\n",
    "rtpmap without an encoding": SDP_HEAD + GOOD_C + "t=0 0\r\nm=audio 40000 RTP/AVP 0 101\r\n"
    "a=rtpmap:0 PCMU/8000\r\na=rtpmap:101\r\n",
    "telephone-event/abc": SDP_HEAD + GOOD_C + "t=0 0\r\nm=audio 40000 RTP/AVP 0 101\r\n"
    "a=rtpmap:101 telephone-event/abc\r\n",
    "no c= line anywhere": SDP_HEAD + "t=0 0\r\nm=audio 40000 RTP/AVP 0\r\n",
    "a superscript digit in the port": SDP_HEAD + GOOD_C + "t=0 0\r\nm=audio 4\u00b2 RTP/AVP 0\r\n",
    "Arabic-Indic digits in the port": SDP_HEAD + GOOD_C
    + "t=0 0\r\nm=audio \u0664\u0660\u0660\u0660 RTP/AVP 0\r\n",
    "no codec in common": SDP_HEAD + GOOD_C + "t=0 0\r\nm=audio 40000 RTP/AVP 18\r\n"
    "a=rtpmap:18 G729/8000\r\n",
}


def invite(n: int, peer: tuple[str, int], ua: tuple[str, int], body: str = "", *,
           content_type: str = "application/sdp", call_id: str | None = None,
           contact: str | None = None) -> bytes:
    raw = body.encode()
    head = (f"INVITE sip:100@{ua[0]}:{ua[1]} SIP/2.0\r\n"
            f"Via: SIP/2.0/UDP {peer[0]}:{peer[1]};rport;branch=z9hG4bK-h{n}\r\n"
            f"From: <sip:evil@{peer[0]}>;tag=e{n}\r\nTo: <sip:100@{ua[0]}>\r\n"
            f"Call-ID: {call_id or f'hostile-{n}'}\r\nCSeq: 1 INVITE\r\nMax-Forwards: 70\r\n"
            f"Contact: {contact or f'<sip:evil@{peer[0]}:{peer[1]}>'}\r\n"
            f"Content-Type: {content_type}\r\nContent-Length: {len(raw)}\r\n\r\n")
    return head.encode("utf-8", "surrogateescape") + raw


async def final(peer: RawPeer) -> bytes:
    """The next final response (provisional ones skipped)."""
    while True:
        msg = await peer.next(b"SIP/2.0 ")
        if not msg.startswith((b"SIP/2.0 100", b"SIP/2.0 180", b"SIP/2.0 183")):
            return msg


async def _never(call: Call) -> None:
    raise AssertionError("a hostile INVITE must not reach the application")


async def test_unusable_offers_get_a_final_answer_and_give_back_their_resources(
        tmp_path: Path) -> None:
    seen = Seen()
    async with running_engine(tmp_path, lambda c: collecting_app(seen),
                              IVR_SIP__MAX_CALLS="3") as engine:
        assert engine.controller is not None and engine.ua is not None
        ports = engine.controller.ports
        free_before = ports.available
        peer, peer_addr = await open_peer()
        ua_addr = engine.addresses["udp"]
        answers = {}
        for n, (name, body) in enumerate(BAD_OFFERS.items()):
            peer.send(invite(n, peer_addr, ua_addr, body), ua_addr)
            answers[name] = (await final(peer)).split(b"\r\n", 1)[0].decode()
        peer.send(invite(50, peer_addr, ua_addr, BAD_OFFERS["no codec in common"].replace(
            "G729", "PCMU").replace(" 18", " 0"), content_type="text/plain"), ua_addr)
        answers["an SDP-looking text/plain body"] = (await final(peer)).split(b"\r\n")[0].decode()
        peer.send(invite(51, peer_addr, ua_addr, contact="*"), ua_addr)
        answers["Contact: *"] = (await final(peer)).split(b"\r\n", 1)[0].decode()
        await engine.controller.tasks.wait(5)
        assert ports.available == free_before  # every RTP port came back
        assert engine.ua.active_calls == 0  # and every call slot
        # the engine still serves real calls: three at once fit max_calls=3
        scenario = dump_builtin("uac", tmp_path / "uac.xml")
        for i in range(3):
            (tmp_path / f"s{i}").mkdir()
        results = await asyncio.gather(*[run_sipp_async(
            sip_target(engine), scenario, local_port=free_port(), workdir=tmp_path / f"s{i}",
            extra=["-m", "1", "-d", "500"], limit_s=30) for i in range(3)])
        await engine.wait_idle()
        assert engine.records is not None
        records = engine.records.list(limit=50, tenants=EVERY_TENANT)
        assert peer.transport is not None
        peer.transport.close()
    assert all(a.startswith("SIP/2.0 400") for name, a in answers.items()
               if name not in ("no codec in common", "an SDP-looking text/plain body")), answers
    assert answers["no codec in common"].startswith("SIP/2.0 488")
    assert answers["an SDP-looking text/plain body"].startswith("SIP/2.0 415")
    assert answers["Contact: *"].startswith("SIP/2.0 400")
    assert [r.successful for r in results] == [1, 1, 1], [r.stdout[-500:] for r in results]
    rejected = [r for r in records if r.disposition == "rejected"]
    assert len(rejected) == len(BAD_OFFERS) + 1  # every refused INVITE has its record too
    assert sum(r.disposition == "answered" for r in records) == 3


async def test_a_non_utf8_call_id_is_refused_and_records_keep_being_written(
        tmp_path: Path) -> None:
    """Issue: one such INVITE poisoned the record writer for good. Now it gets 400 and is never
    a call; the records of the calls after it are written."""
    seen = Seen()
    async with running_engine(tmp_path, lambda c: collecting_app(seen)) as engine:
        peer, peer_addr = await open_peer()
        ua_addr = engine.addresses["udp"]
        body = BAD_OFFERS["no codec in common"].replace("G729", "PCMU").replace(" 18", " 0")
        peer.send(invite(1, peer_addr, ua_addr, body, call_id="\udcff\udcfe-x@evil"), ua_addr)
        answer = await final(peer)
        res = await run_sipp_async(sip_target(engine), dump_builtin("uac", tmp_path / "uac.xml"),
                                   local_port=free_port(), workdir=tmp_path,
                                   extra=["-m", "2", "-d", "200"], limit_s=30)
        await engine.wait_idle()
        assert engine.records is not None and engine.cdr is not None
        records = engine.records.list(tenants=EVERY_TENANT)
        dead = engine.cdr.dead_lettered
        assert peer.transport is not None
        peer.transport.close()
    assert answer.startswith(b"SIP/2.0 400 Bad Request - Invalid UTF-8")
    assert b"\xff\xfe-x@evil" in answer  # its own bytes echoed back, not mangled
    assert res.successful == 2
    assert len(records) == 2 and dead == 0
