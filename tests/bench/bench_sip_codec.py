"""Micro-benchmark of the SIP wire codecs: parse + serialize of a typical INVITE, per second.

Run: ``python -m tests.bench.bench_sip_codec``. One call costs roughly: parse the INVITE and touch
what the transaction/dialog layers read (Via, From, To, CSeq, Call-ID, Contact), build and
serialize 100/180/200 responses, parse the SDP and negotiate the answer.
"""

from __future__ import annotations

import platform
import time
from collections.abc import Callable

from engine.sip.message import make_response, parse_message
from engine.sip.sdp import SessionDescription, negotiate_answer

SDP = (
    b"v=0\r\no=- 3749012345 3749012345 IN IP4 192.0.2.10\r\ns=SIPp\r\nc=IN IP4 192.0.2.10\r\n"
    b"t=0 0\r\nm=audio 16384 RTP/AVP 0 8 101\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:8 PCMA/8000\r\n"
    b"a=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-15\r\na=ptime:20\r\na=sendrecv\r\n"
)
INVITE = (
    b"INVITE sip:1000@198.51.100.7:5060 SIP/2.0\r\n"
    b"Via: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bK-12345-1-0;rport\r\n"
    b"Max-Forwards: 70\r\n"
    b"From: \"Caller\" <sip:2000@192.0.2.10:5060>;tag=12345SIPpTag001\r\n"
    b"To: <sip:1000@198.51.100.7:5060>\r\n"
    b"Call-ID: 1-12345@192.0.2.10\r\n"
    b"CSeq: 1 INVITE\r\n"
    b"Contact: <sip:2000@192.0.2.10:5060;transport=udp>\r\n"
    b"Allow: INVITE, ACK, BYE, CANCEL, OPTIONS, INFO, REFER, NOTIFY\r\n"
    b"Supported: replaces, timer\r\n"
    b"User-Agent: SIPp/3.6.1\r\n"
    b"Subject: Performance Test\r\n"
    b"Content-Type: application/sdp\r\n"
    b"Content-Length: " + str(len(SDP)).encode() + b"\r\n\r\n" + SDP
)


def parse_serialize() -> None:
    msg = parse_message(INVITE)
    msg.serialize()


def parse_views() -> None:
    msg = parse_message(INVITE)
    _ = msg.vias[0].branch, msg.from_.tag, msg.to.tag, msg.cseq, msg.call_id, msg.contact


def call_setup() -> None:
    msg = parse_message(INVITE)
    _ = msg.vias[0].branch, msg.from_.tag, msg.to.tag, msg.cseq, msg.call_id, msg.contact
    assert msg.__class__.__name__ == "SipRequest"
    make_response(msg, 100).serialize()  # type: ignore[arg-type]
    make_response(msg, 180, to_tag="abc").serialize()  # type: ignore[arg-type]
    answer, _ = negotiate_answer(SessionDescription.parse(msg.body), local_ip="198.51.100.7",
                                 local_port=40000, session_id=1)
    ok = make_response(msg, 200, to_tag="abc")  # type: ignore[arg-type]
    ok.body = answer.serialize()
    ok.serialize()


def rate(fn: Callable[[], None], seconds: float = 0.5, repeats: int = 5) -> float:
    """Best of ``repeats`` runs: the machine is shared, the best run is the codec's own cost."""
    best = 0.0
    for _ in range(repeats):
        n = 0
        start = time.perf_counter()
        deadline = start + seconds
        while time.perf_counter() < deadline:
            for _ in range(100):
                fn()
            n += 100
        best = max(best, n / (time.perf_counter() - start))
    return best


def main() -> None:
    print(f"python {platform.python_version()} on {platform.machine()}, one core")
    print(f"INVITE size: {len(INVITE)} bytes")
    for name, fn in (("parse+serialize INVITE", parse_serialize),
                     ("parse INVITE + header views", parse_views),
                     ("full call setup codec work", call_setup)):
        r = rate(fn)
        print(f"{name:32s} {r:10,.0f} /s   {1e6 / r:7.1f} us each")


if __name__ == "__main__":
    main()
