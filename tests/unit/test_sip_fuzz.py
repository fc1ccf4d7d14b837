"""Property tests: nothing but SipParseError ever escapes the parsers; generated messages
round-trip; mutated RFC 4475 fixtures never crash anything."""

from __future__ import annotations

import pathlib

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.sip.digest import (
    DigestError,
    build_authorization,
    make_challenge,
    parse_challenge,
    verify_authorization,
)
from engine.sip.dtmf_info import DtmfInfoError, parse_dtmf_info
from engine.sip.message import (
    NameAddr,
    SipMessage,
    SipParseError,
    SipRequest,
    SipResponse,
    StreamFramer,
    parse_message,
)
from engine.sip.sdp import (
    SdpNegotiationError,
    SdpParseError,
    SessionDescription,
    build_offer,
    negotiate_answer,
    parse_answer,
)
from engine.sip.uri import _USER_SAFE

FIXTURES = pathlib.Path(__file__).resolve().parent.parent / "fixtures" / "sip"
SEEDS = [p.read_bytes() for p in sorted((FIXTURES / "valid").glob("*.sip"))]
FAST = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def exercise(msg: SipMessage) -> None:
    """Touch every lazy view, as the transaction layer would."""
    for view in ("call_id", "cseq", "from_", "to", "vias", "contact", "content_type"):
        try:
            value = getattr(msg, view)
        except SipParseError:
            continue
        str(value)  # the dialog layer re-serializes these (NameAddr/Via/SipUri __str__)
    if isinstance(msg, SipRequest):
        str(msg.uri)
    parse_message(msg.serialize(), max_size=1 << 20)


def parse_or_reject(data: bytes) -> None:
    try:
        msg = parse_message(data)
    except SipParseError as exc:
        assert 400 <= exc.status <= 599 and exc.reason
        return
    exercise(msg)


# ---------------------------------------------------------------- (a) random input


@FAST
@given(st.binary(max_size=600))
def test_random_bytes_only_sip_parse_error(data: bytes) -> None:
    parse_or_reject(data)


SIPISH = st.lists(
    st.sampled_from([
        b"INVITE sip:a@b SIP/2.0\r\n", b"SIP/2.0 200 OK\r\n", b"Via: SIP/2.0/UDP h;branch=z\r\n",
        b"v: SIP/2.0/TCP [::1]:5\r\n", b"From: <sip:x@y>;tag=1\r\n", b"t: \"a\\\"\" <sip:q@r>\r\n",
        b"Call-ID: c\r\n", b"CSeq: 1 INVITE\r\n", b"Content-Length: 3\r\n", b"l: 99\r\n",
        b"Contact: *\r\n", b"m: <sip:a@1.2.3.4:0>, b <sip:c@d>\r\n", b" folded\r\n", b"\r\n",
        b"abc", b";", b",", b"\"", b"<", b">", b":", b"\x00", b"\xff", b"%", b"@", b"[", b"]",
    ]),
    max_size=14,
).map(b"".join)


@FAST
@given(SIPISH)
def test_sip_shaped_noise_only_sip_parse_error(data: bytes) -> None:
    parse_or_reject(data)
    framer = StreamFramer(max_size=4096)
    try:
        for chunk in framer.feed(data):
            parse_or_reject(chunk)
    except SipParseError:
        pass


@FAST
@given(st.text(max_size=300))
def test_other_codecs_only_their_errors(text: str) -> None:
    try:
        SessionDescription.parse(text)
    except SdpParseError:
        pass
    try:
        parse_challenge(text)
    except DigestError:
        pass
    verify_authorization(text, "INVITE", {}.get, "r", b"k", 0.0, 60.0)
    try:
        parse_dtmf_info("application/dtmf-relay", text.encode())
    except DtmfInfoError:
        pass
    try:
        NameAddr.parse(text)
    except SipParseError:
        pass


@FAST
@given(st.sampled_from(["username", "uri", "response", "cnonce", "nc", "qop", "algorithm"]),
       st.text(max_size=40))
def test_verify_authorization_never_raises_on_peer_fields(field: str, junk: str) -> None:
    secret = b"k" * 32
    ch = parse_challenge(make_challenge("r", algorithm="MD5", nonce_secret=secret, now=10.0))
    value = build_authorization(ch, "INVITE", "sip:x", "u", "p", cnonce="c")
    escaped = junk.replace("\\", "\\\\").replace('"', '\\"')
    value = value.replace(f"{field}=", f'{field}="{escaped}", x{field}=', 1)
    result = verify_authorization(value, "INVITE", {"u": "p"}.get, "r", secret, 11.0, 60.0)
    assert isinstance(result.ok, bool) and isinstance(result.reason, str)
    if field == "response":
        assert not result.ok


# ---------------------------------------------------------------- (b) generated messages

TOKEN = st.text("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-.!%*_+`'~",
                min_size=1, max_size=12)
HOST = st.from_regex(r"[a-z][a-z0-9]{0,8}(\.[a-z][a-z0-9]{0,8}){0,3}", fullmatch=True)
USER = st.text(st.characters(codec="utf-8", exclude_characters="\r\n"), min_size=1,
               max_size=10)
DISPLAY = st.text(st.characters(codec="utf-8", exclude_characters="\r\n"), max_size=12)
VALUE = st.text(st.characters(min_codepoint=33, max_codepoint=126), max_size=20)


def q(s: str) -> str:
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


@st.composite
def messages(draw: st.DrawFn) -> tuple[bytes, dict[str, object]]:
    from urllib.parse import quote

    method = draw(TOKEN)
    user = draw(USER)
    host = draw(HOST)
    port = draw(st.none() | st.integers(0, 65535))
    hostport = host if port is None else f"{host}:{port}"
    display = draw(DISPLAY)
    ftag, branch, cid = draw(TOKEN), draw(TOKEN), draw(TOKEN)
    cseq = draw(st.integers(0, 2**31 - 1))
    body = draw(st.binary(max_size=40))
    extra = draw(st.lists(st.tuples(st.sampled_from(["X-A", "X-Bee", "Subject", "Foo"]), VALUE),
                          max_size=3))
    is_response = draw(st.booleans())
    status = draw(st.integers(100, 699))
    start = (f"SIP/2.0 {status} Reason" if is_response
             else f"{method} sip:{quote(user, safe=_USER_SAFE)}@{hostport} SIP/2.0")
    lines = [
        start,
        f"Via: SIP/2.0/UDP {hostport};branch=z9hG4bK{branch};rport",
        f"From: {q(display)} <sip:{quote(user, safe=_USER_SAFE)}@{host}>;tag={ftag}",
        f"To: <sip:{host}>",
        f"Call-ID: {cid}@{host}",
        f"CSeq: {cseq} {method}",
        *(f"{n}: {v}" for n, v in extra),
        f"Content-Length: {len(body)}",
    ]
    data = ("\r\n".join(lines) + "\r\n\r\n").encode() + body
    expect = {"user": user, "host": host, "port": port, "display": display, "ftag": ftag,
              "cseq": (cseq, method), "body": body, "branch": f"z9hG4bK{branch}",
              "status": status if is_response else None}
    return data, expect


@settings(max_examples=150, deadline=None)
@given(messages())
def test_generated_messages_round_trip(case: tuple[bytes, dict[str, object]]) -> None:
    data, expect = case
    msg = parse_message(data)
    assert msg.serialize() == data  # generated form is canonical
    assert parse_message(msg.serialize()) == msg
    assert msg.from_.display_name == expect["display"]
    assert msg.from_.uri.user == expect["user"] and msg.from_.tag == expect["ftag"]
    assert msg.cseq == expect["cseq"] and msg.body == expect["body"]
    via = msg.vias[0]
    assert (via.host, via.port, via.branch) == (expect["host"], expect["port"], expect["branch"])
    if isinstance(msg, SipResponse):
        assert msg.status == expect["status"]
    else:
        assert isinstance(msg, SipRequest) and msg.uri.user == expect["user"]
    # structured values re-serialize to something that parses back equal
    assert NameAddr.parse(str(msg.from_)) == msg.from_


# ---------------------------------------------------------------- (c) mutated fixtures


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    data = bytearray(draw(st.sampled_from(SEEDS)))
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(["truncate", "flip", "dup_line", "drop_line", "insert"]))
        if not data:
            break
        pos = draw(st.integers(0, len(data) - 1))
        if kind == "truncate":
            del data[pos:]
        elif kind == "flip":
            data[pos] ^= 1 << draw(st.integers(0, 7))
        elif kind == "insert":
            data[pos:pos] = draw(st.sampled_from([b"\r\n", b" ", b";", b",", b'"', b"<", b":",
                                                  b"\r\n ", b"\x00", b"%", b"@"]))
        else:
            lines = bytes(data).split(b"\r\n")
            i = pos % len(lines)
            if kind == "dup_line":
                lines.insert(i, lines[i])
            else:
                del lines[i]
            data = bytearray(b"\r\n".join(lines))
    return bytes(data)


@settings(max_examples=300, deadline=None)
@given(mutated())
def test_mutated_fixtures_only_sip_parse_error(data: bytes) -> None:
    parse_or_reject(data)
    try:
        StreamFramer().feed(data)
    except SipParseError:
        pass


SDP_LINES = st.sampled_from([
    "v=0", "o=a 1 1 IN IP4 192.0.2.1", "s=-", "c=IN IP4 192.0.2.1", "c=IN IP6 ::", "t=0 0",
    "c=IN IP4 0.0.0.0", "m=audio 5004 RTP/AVP 0 8 101", "m=audio 0 RTP/AVP 0",
    "m=video 1 RTP/AVP 31",
    "m=audio 7 RTP/SAVP 0", "a=rtpmap:101 telephone-event/8000", "a=rtpmap:0 PCMU/8000",
    "a=rtpmap:8", "a=rtpmap:x y", "a=fmtp:101 0-15", "a=ptime:", "a=ptime:30", "a=sendonly",
    "a=inactive", "a=recvonly", "m=audio 99999999 RTP/AVP 0", "m=audio 5/2 RTP/AVP 96",
    "a=rtpmap:96 PCMA/8000/1", "b=AS:64", "x=unknown", "m=audio 5004 RTP/AVP",
])


@FAST
@given(st.booleans(), st.lists(SDP_LINES, max_size=14))
def test_sdp_offer_answer_only_sdp_errors(with_head: bool, lines: list[str]) -> None:
    head = ["v=0", "o=a 1 1 IN IP4 192.0.2.1", "s=-", "t=0 0"] if with_head else []
    text = "".join(line + "\r\n" for line in head + lines)
    try:
        offer = SessionDescription.parse(text)
    except SdpParseError:
        return
    assert SessionDescription.parse(offer.serialize()).serialize() == offer.serialize()
    try:
        answer, _ = negotiate_answer(offer, local_ip="192.0.2.9", local_port=4000, session_id=1)
        assert len(answer.media) == len(offer.media)
    except (SdpParseError, SdpNegotiationError):
        pass
    try:
        parse_answer(build_offer("192.0.2.9", 4000), offer)
    except (SdpParseError, SdpNegotiationError):
        pass


UNICODE_DIGITS = st.text(st.characters(categories=["Nd", "No"]), min_size=1, max_size=5)
SDP_TEMPLATES = st.sampled_from([
    "m=audio {} RTP/AVP 0", "m=audio 5004/{} RTP/AVP 0", "m=audio 5004 RTP/AVP {}",
    "a=rtpmap:{} PCMU/8000", "a=rtpmap:0 PCMU/{}", "a=rtpmap:101 telephone-event/{}",
    "a=rtpmap:0 PCMU/8000/{}", "a=fmtp:{} 0-15", "a=ptime:{}", "o=a {} 1 IN IP4 192.0.2.1",
    "c=IN IP4 192.0.2.{}", "t={} 0", "b=AS:{}",
])


@FAST
@given(st.lists(st.tuples(SDP_TEMPLATES, st.one_of(UNICODE_DIGITS, st.text(max_size=8))),
                max_size=6))
def test_sdp_with_any_unicode_where_numbers_go_only_sdp_errors(
        fills: list[tuple[str, str]]) -> None:
    """Digits from other scripts ("²", "٤", "１") and any Unicode in numeric fields: the parser
    and negotiation raise their own errors, never ValueError or KeyError (issue 11, item 2);
    whatever is accepted was read from ASCII digits only."""
    lines = ["v=0", "o=a 1 1 IN IP4 192.0.2.1", "s=-", "c=IN IP4 192.0.2.1", "t=0 0",
             "m=audio 5004 RTP/AVP 0 101"]
    lines += [tpl.format(text.replace("\r", "").replace("\n", "")) for tpl, text in fills]
    try:
        offer = SessionDescription.parse("".join(line + "\r\n" for line in lines))
        _, chosen = negotiate_answer(offer, local_ip="192.0.2.9", local_port=4000, session_id=1)
    except (SdpParseError, SdpNegotiationError):
        return
    audio = next(m for m in offer.media if m.media == "audio")
    assert audio.port == 5004 and chosen.payload_type == 0  # only ASCII numbers were read
