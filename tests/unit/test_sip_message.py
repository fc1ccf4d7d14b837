"""SIP message codec: RFC 4475 torture fixtures, round trips, one negative test per rule."""

from __future__ import annotations

import pathlib

import pytest

from engine.sip.message import (
    REASON_PHRASES,
    Headers,
    SipParseError,
    SipRequest,
    SipResponse,
    SipUri,
    StreamFramer,
    make_response,
    new_branch,
    new_call_id,
    new_tag,
    parse_message,
)

FIXTURES = pathlib.Path(__file__).resolve().parent.parent / "fixtures" / "sip"
VALID = sorted((FIXTURES / "valid").glob("*.sip"))
INVALID = sorted((FIXTURES / "invalid").glob("*.sip"))
# fixtures already in canonical form: serialize(parse(x)) must give x back byte for byte
CANONICAL = {"canonical_invite", "canonical_200", "inv2543", "ipv6", "noreason", "unreason",
             "cparam01", "cparam02", "mpart01", "regaut01", "zeromf"}


def fixture(name: str, kind: str = "valid") -> bytes:
    return (FIXTURES / kind / f"{name}.sip").read_bytes()


INVITE_LINE = "INVITE sip:bob@example.com SIP/2.0"


def build(*headers: str, start: str = INVITE_LINE, body: str = "") -> bytes:
    return ("\r\n".join([start, *headers]) + "\r\n\r\n" + body).encode()


BASE = (
    "Via: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK74bf9",
    "Max-Forwards: 70",
    "From: Alice <sip:alice@example.com>;tag=9fxced76sl",
    "To: Bob <sip:bob@example.com>",
    "Call-ID: 3848276298220188511@example.com",
    "CSeq: 1 INVITE",
)


def without(name: str) -> list[str]:
    return [h for h in BASE if not h.startswith(name + ":")]


# ---------------------------------------------------------------- fixtures


def test_fixture_sets_are_present() -> None:
    assert len(VALID) >= 12 and len(INVALID) >= 20


@pytest.mark.parametrize("path", VALID, ids=lambda p: p.stem)
def test_valid_fixture_parses_and_round_trips(path: pathlib.Path) -> None:
    data = path.read_bytes()
    msg = parse_message(data)
    # every structured view must be readable on a valid message
    assert msg.vias and msg.call_id and msg.cseq[0] >= 0
    _ = msg.from_, msg.to, msg.contact, msg.content_type
    again = parse_message(msg.serialize())
    assert again == msg
    assert again.serialize() == msg.serialize()
    if path.stem in CANONICAL:
        assert msg.serialize() == data


@pytest.mark.parametrize("path", INVALID, ids=lambda p: p.stem)
def test_invalid_fixture_is_rejected(path: pathlib.Path) -> None:
    expected = {"badvers": 505, "unkscm": 416, "novelsc": 416}.get(path.stem, 400)
    with pytest.raises(SipParseError) as info:
        parse_message(path.read_bytes())
    assert info.value.status == expected


def test_rfc4475_wsinv_fields() -> None:
    msg = parse_message(fixture("wsinv"))
    assert isinstance(msg, SipRequest)
    assert msg.method == "INVITE"
    assert msg.uri.params == {"unknownparam": None}
    assert msg.to.tag == "1918181833n"
    assert msg.to.uri.user == "vivekg"
    assert msg.from_.display_name == 'J Rosenberg \\"'
    assert msg.from_.tag == "98asjd8"
    assert msg.cseq == (9, "INVITE")
    assert msg.headers.get("Max-Forwards") == "0068"
    assert [(v.transport, v.host, v.branch) for v in msg.vias] == [
        ("UDP", "192.0.2.2", "390skdjuw"),
        ("TCP", "spindle.example.com", "z9hG4bK9ikj8"),
        ("UDP", "192.168.255.111", "z9hG4bK30239"),
    ]
    assert msg.vias[0].params["rport"] is None
    assert msg.headers.get("NewFangledHeader") == "newfangled value continued newfangled value"
    assert msg.headers.get("UnknownHeaderWithUnusualValue") == ";;,,;;,;"
    assert msg.headers.get("Subject") == ""
    (contact,) = msg.contact
    assert contact.display_name == 'Quoted string ""'
    assert contact.params == {"newparam": "newvalue", "secondparam": None, "q": "0.33"}
    assert msg.content_type == "application/sdp"
    assert len(msg.body) == int(msg.headers.get("Content-Length") or -1)


def test_rfc4475_intmeth_wide_range_of_valid_characters() -> None:
    msg = parse_message(fixture("intmeth"))
    assert isinstance(msg, SipRequest)
    assert msg.method == "!interesting-Method0123456789_*+`.%indeed'~"
    assert msg.uri.user == "1_unusual.URI~(to-be!sure)&isn't+it$/crazy?,/;;*"
    assert msg.uri.password == "&it+has=1,weird!*pas$wo~d_too.(doesn't-it)"
    assert msg.to.display_name == "BEL:\x07 NUL:\x00 DEL:\x7f"
    assert msg.from_.display_name == "token1~` token2'+_ token3*%!.-"
    assert msg.from_.tag == "_token~1'+`*%!-."
    assert msg.call_id == "intmeth.word%ZK-!.*_+'@word`~)(><:\\/\"][?}{"
    assert msg.headers.get("extensionHeader-!.%*+_`'~") == "\ufeff大停電"


def test_rfc4475_esc01_user_unescaped() -> None:
    msg = parse_message(fixture("esc01"))
    assert msg.uri.user == "sips:user@example.com"  # type: ignore[union-attr]
    assert msg.to.uri.user == "user"
    assert msg.from_.uri.user == "I have spaces"
    assert str(msg.from_.uri) == "sip:I%20have%20spaces@example.net"
    assert msg.content_type == "application/sdp"  # compact c:
    assert msg.call_id == "esc01.239409asdfakjkn23onasd0-3234"  # compact i:


def test_rfc4475_escnull_and_repeated_contact() -> None:
    msg = parse_message(fixture("escnull"))
    assert msg.to.uri.user == "null-\x00-null"
    assert [c.uri.user for c in msg.contact] == ["\x00", "\x00\x00"]


def test_rfc4475_esc02_escaped_header_name_is_unknown_header() -> None:
    msg = parse_message(fixture("esc02"))
    assert len(msg.contact) == 2
    assert msg.headers.get("C%6Fntact") == "<sip:alias2@host2.example.com>"


def test_rfc4475_semiuri_user_with_semicolon() -> None:
    msg = parse_message(fixture("semiuri"))
    assert msg.uri.user == "user;par=u@example.net"  # type: ignore[union-attr]
    assert msg.uri.params == {}  # type: ignore[union-attr]
    assert len(msg.headers.get_all("Accept")) == 6


def test_rfc4475_transports_every_via() -> None:
    msg = parse_message(fixture("transports"))
    assert [v.transport for v in msg.vias] == ["UDP", "SCTP", "TLS", "UNKNOWN", "TCP"]


def test_rfc4475_dblreq_second_request_ignored() -> None:
    first = build(*BASE, "Content-Length: 0")
    second = build(*BASE, "Content-Length: 0", start="BYE sip:bob@example.com SIP/2.0")
    msg = parse_message(first + second)
    assert isinstance(msg, SipRequest) and msg.method == "INVITE" and msg.body == b""


def test_rfc4475_unreason_and_noreason() -> None:
    msg = parse_message(fixture("unreason"))
    assert isinstance(msg, SipResponse) and msg.status == 200
    assert msg.reason.startswith("= 2**3 * 5**2 но")
    empty = parse_message(fixture("noreason"))
    assert isinstance(empty, SipResponse) and (empty.status, empty.reason) == (100, "")


def test_rfc4475_cparam01_cparam02_contact_param_placement() -> None:
    (header_param,) = parse_message(fixture("cparam01")).contact
    assert header_param.params == {"unknownparam": None} and header_param.uri.params == {}
    (uri_param,) = parse_message(fixture("cparam02")).contact
    assert uri_param.params == {} and uri_param.uri.params == {"unknownparam": None}


def test_rfc4475_longreq_long_values_and_many_vias() -> None:
    msg = parse_message(fixture("longreq"))
    assert len(msg.vias) == 33 and msg.vias[-1].host == "sip1.example.com"
    assert msg.to.display_name is not None and len(msg.to.display_name) > 400
    assert msg.from_.tag is not None and len(msg.from_.tag) == 305
    assert len(msg.call_id) > 480 and msg.body.startswith(b"v=0")


def test_rfc4475_regaut01_unknown_auth_scheme_kept_whole() -> None:
    msg = parse_message(fixture("regaut01"))
    assert msg.headers.get_all("Authorization") == ["NoOneKnowsThisScheme opaque-data=here"]


def test_rfc4475_mpart01_multipart_body_and_content_type() -> None:
    msg = parse_message(fixture("mpart01"))
    assert msg.content_type == "multipart/signed" and msg.body.endswith(b"------B--\r\n")


def test_ipv6_hosts() -> None:
    msg = parse_message(fixture("ipv6"))
    assert msg.uri.host == "2001:db8::10"  # type: ignore[union-attr]
    via = msg.vias[0]
    assert (via.host, via.port, via.received, via.rport) == ("2001:db8::9:1", None,
                                                             "2001:db8::9:255", 5060)
    assert msg.contact[0].uri.host == "2001:db8::1" and msg.contact[0].uri.port == 5060
    assert str(msg.contact[0].uri) == "sip:caller@[2001:db8::1]:5060"


# ---------------------------------------------------------------- negative: one per rule


def test_rfc3261_8_1_1_missing_call_id_is_400_naming_it() -> None:
    with pytest.raises(SipParseError) as info:
        parse_message(build(*without("Call-ID")))
    assert info.value.status == 400 and "Call-ID" in info.value.reason
    assert info.value.partial is None  # no Call-ID: cannot answer


@pytest.mark.parametrize("name", ["Via", "From", "To", "CSeq"])
def test_rfc3261_8_1_1_missing_mandatory_header(name: str) -> None:
    with pytest.raises(SipParseError, match=name) as info:
        parse_message(build(*without(name)))
    assert info.value.reason == f"Bad Request - Missing {name}"


def test_rfc3261_8_1_1_6_missing_max_forwards_tolerated() -> None:
    msg = parse_message(build(*without("Max-Forwards")))
    assert msg.headers.get("Max-Forwards") is None


def test_rfc3261_20_22_max_forwards_not_numeric() -> None:
    hdrs = [h if not h.startswith("Max-Forwards") else "Max-Forwards: ten" for h in BASE]
    with pytest.raises(SipParseError, match="Max-Forwards") as info:
        parse_message(build(*hdrs))
    assert info.value.partial is not None


def test_rfc3261_8_2_2_cseq_method_mismatch_has_partial() -> None:
    with pytest.raises(SipParseError, match="CSeq method") as info:
        parse_message(build(*BASE, start="OPTIONS sip:bob@example.com SIP/2.0"))
    partial = info.value.partial
    assert partial is not None and partial.method == "OPTIONS"
    resp = make_response(partial, info.value.status, info.value.reason)
    assert resp.status == 400 and resp.call_id == "3848276298220188511@example.com"


def test_rfc3261_20_16_cseq_not_numeric() -> None:
    hdrs = [h if not h.startswith("CSeq") else "CSeq: one INVITE" for h in BASE]
    with pytest.raises(SipParseError, match="CSeq"):
        parse_message(build(*hdrs))


def test_rfc3261_8_2_2_1_unsupported_scheme_416_with_partial() -> None:
    with pytest.raises(SipParseError) as info:
        parse_message(build(*BASE, start="INVITE http://example.com/ SIP/2.0"))
    assert info.value.status == 416
    assert info.value.partial is not None  # so the 416 can be sent


def test_rfc3261_8_1_3_5_bad_version_505() -> None:
    with pytest.raises(SipParseError) as info:
        parse_message(build(*BASE, start="INVITE sip:bob@example.com SIP/3.0"))
    assert info.value.status == 505 and info.value.partial is not None


def test_rfc3261_7_1_garbage_version_is_400() -> None:
    with pytest.raises(SipParseError) as info:
        parse_message(build(*BASE, start="INVITE sip:bob@example.com HTTP/1.1"))
    assert info.value.status == 400


def test_rfc3261_7_2_status_code_not_numeric() -> None:
    with pytest.raises(SipParseError, match="status code"):
        parse_message(build(*BASE, start="SIP/2.0 2OO OK"))


def test_rfc3261_7_2_status_code_leading_zero() -> None:
    with pytest.raises(SipParseError, match="status code"):
        parse_message(build(*BASE, start="SIP/2.0 099 Odd"))


def test_rfc3261_7_1_request_line_missing_uri() -> None:
    with pytest.raises(SipParseError, match="request line"):
        parse_message(build(*BASE, start="INVITE SIP/2.0"))


def test_rfc3261_7_1_method_must_be_token() -> None:
    with pytest.raises(SipParseError, match="method"):
        parse_message(build(*BASE, start="INV(ITE sip:bob@example.com SIP/2.0"))


def test_rfc3261_7_3_header_without_colon() -> None:
    with pytest.raises(SipParseError, match="without ':'"):
        parse_message(build(*BASE, "NoColonHere"))


def test_rfc3261_7_3_header_name_must_be_token() -> None:
    with pytest.raises(SipParseError, match="header name"):
        parse_message(build(*BASE, "Bad Name: x"))


def test_rfc3261_7_3_non_ascii_header_name_is_not_a_compact_form() -> None:
    """U+212A KELVIN SIGN lower-cases to "k", the compact form of Supported: a name that is
    not a token stays a 400 even when its lower case is a known header's."""
    with pytest.raises(SipParseError, match="header name"):
        parse_message(build(*BASE, "\u212a: 100rel"))


def test_rfc3261_7_3_1_continuation_before_first_header() -> None:
    with pytest.raises(SipParseError, match="continuation"):
        parse_message(build(" folded: x", *BASE))


def test_rfc3261_20_14_content_length_larger_than_body() -> None:
    with pytest.raises(SipParseError, match="Content-Length larger than body"):
        parse_message(build(*BASE, "Content-Length: 10", body="short"))


def test_rfc3261_20_14_content_length_truncates_datagram_body() -> None:
    msg = parse_message(build(*BASE, "Content-Length: 0005", body="hello, extra"))
    assert msg.body == b"hello"


def test_rfc3261_18_3_no_content_length_on_datagram_takes_rest() -> None:
    assert parse_message(build(*BASE, body="v=0\r\n")).body == b"v=0\r\n"


def test_rfc3261_7_3_singleton_header_repeated() -> None:
    with pytest.raises(SipParseError, match="more than one From"):
        parse_message(build(*BASE, "From: <sip:x@example.com>;tag=2"))


def test_rfc3261_18_1_1_oversize_is_413() -> None:
    data = build(*BASE, f"X-Pad: {'a' * 2000}")
    with pytest.raises(SipParseError) as info:
        parse_message(data, max_size=1000)
    assert info.value.status == 413


def test_rfc3261_7_missing_blank_line() -> None:
    with pytest.raises(SipParseError, match="blank line"):
        parse_message(b"INVITE sip:bob@example.com SIP/2.0\r\nVia: SIP/2.0/UDP h")


def test_empty_datagram() -> None:
    with pytest.raises(SipParseError, match="empty"):
        parse_message(b"\r\n\r\n")


def test_rfc3261_20_10_bad_from_named_in_error() -> None:
    hdrs = [h if not h.startswith("From") else "From: <sip:alice@>;tag=1" for h in BASE]
    with pytest.raises(SipParseError) as info:
        parse_message(build(*hdrs))
    assert info.value.reason == "Bad Request - Bad From"


# ---------------------------------------------------------------- positive rules


def test_rfc3261_7_3_3_compact_forms_normalised() -> None:
    data = build(
        "v: SIP/2.0/UDP 192.0.2.1;branch=z9hG4bK1", "f: <sip:a@example.com>;tag=1",
        "t: <sip:b@example.com>", "i: cid-1", "CSeq: 1 REFER", "m: <sip:a@192.0.2.1>",
        "k: replaces", "r: <sip:c@example.com>", "o: refer", "u: talk", "c: text/plain", "s: hi",
        "l: 2", start="REFER sip:b@example.com SIP/2.0", body="ok",
    )
    msg = parse_message(data)
    names = [n for n, _ in msg.headers]
    assert names == ["Via", "From", "To", "Call-ID", "CSeq", "Contact", "Supported", "Refer-To",
                     "Event", "Allow-Events", "Content-Type", "Subject", "Content-Length"]
    assert msg.headers.get("refer-to") == "<sip:c@example.com>"
    assert msg.headers.get("r") == "<sip:c@example.com>"
    assert msg.content_type == "text/plain" and msg.body == b"ok"


def test_rfc3261_7_3_1_header_names_case_insensitive_and_lws_before_colon() -> None:
    msg = parse_message(build(*BASE, "x-CUSTOM   :   v1", "X-Custom: v2"))
    assert msg.headers.get("X-CUSTOM") == "v1"
    assert msg.headers.get_all("x-custom") == ["v1", "v2"]
    assert ("x-CUSTOM", "v1") in list(msg.headers)  # unknown name kept verbatim


def test_rfc3261_7_3_1_folding_unfolded_to_single_space() -> None:
    msg = parse_message(build(*BASE, "Subject: first\r\n\t second\r\n   third"))
    assert msg.headers.get("Subject") == "first second third"


def test_rfc3261_7_3_1_comma_lists_split_but_not_auth() -> None:
    auth = 'Digest realm="a,b", nonce="x", qop="auth,auth-int"'
    msg = parse_message(build(
        *BASE, 'Contact: "Doe, J" <sip:j@a.example.com;x=1,2>, <sip:k@b.example.com>',
        "Allow: INVITE, ACK,BYE", "Allow: OPTIONS", f"WWW-Authenticate: {auth}",
        "Date: Sat, 13 Nov 2010 23:29:00 GMT",
        "Route: <sip:p1.example.com;lr>,<sip:p2.example.com;lr>",
    ))
    assert msg.headers.get_all("Allow") == ["INVITE", "ACK", "BYE", "OPTIONS"]
    assert msg.headers.get_all("WWW-Authenticate") == [auth]
    assert msg.headers.get_all("Date") == ["Sat, 13 Nov 2010 23:29:00 GMT"]
    assert msg.headers.get_all("Route") == ["<sip:p1.example.com;lr>", "<sip:p2.example.com;lr>"]
    contacts = msg.contact
    assert [c.display_name for c in contacts] == ["Doe, J", None]
    assert contacts[0].uri.params == {"x": "1,2"}


def test_leading_zeros_in_cseq_content_length_port() -> None:
    hdrs = [h if not h.startswith("CSeq") else "CSeq: 00042 INVITE" for h in BASE]
    msg = parse_message(build(*hdrs, "Contact: <sip:a@192.0.2.1:005060>", "Content-Length: 00"))
    assert msg.cseq == (42, "INVITE") and msg.contact[0].uri.port == 5060 and msg.body == b""


def test_contact_wildcard() -> None:
    msg = parse_message(build(*BASE, "Contact: *", "Expires: 0"))
    assert msg.contact == [] and msg.contact_is_wildcard


def test_bare_lf_tolerated() -> None:
    data = build(*BASE).replace(b"\r\n", b"\n")
    assert parse_message(data).call_id == "3848276298220188511@example.com"


def test_structured_view_cache_follows_header_changes() -> None:
    msg = parse_message(build(*BASE))
    assert msg.to.tag is None
    msg.headers.set("To", str(msg.to.with_tag("abc")))
    assert msg.to.tag == "abc"
    msg.headers.prepend("Via", "SIP/2.0/TCP proxy.example.com;branch=z9hG4bKp")
    assert [v.host for v in msg.vias] == ["proxy.example.com", "192.0.2.1"]


# ---------------------------------------------------------------- serialize / build


def test_serialize_sets_content_length_in_place() -> None:
    msg = parse_message(build(*BASE, "Content-Length: 0", "Subject: x"))
    msg.body = b"abc"
    out = msg.serialize()
    assert b"Content-Length: 3\r\nSubject: x\r\n\r\nabc" in out


def test_serialize_appends_content_length_when_absent() -> None:
    via = Headers([("v", "SIP/2.0/UDP h")])
    req = SipRequest("OPTIONS", SipUri.parse("sip:b@example.com"), via)
    assert req.serialize() == (b"OPTIONS sip:b@example.com SIP/2.0\r\nVia: SIP/2.0/UDP h\r\n"
                               b"Content-Length: 0\r\n\r\n")


def test_headers_api() -> None:
    h = Headers()
    h.add("Via", "a")
    h.add("v", "b")
    h.add("X-Y", "1")
    assert h.get_all("VIA") == ["a", "b"] and "via" in h and "Route" not in h
    h.set("Via", "c")
    assert list(h) == [("Via", "c"), ("X-Y", "1")]
    copy = h.copy()
    h.remove("x-y")
    assert "X-Y" not in h and copy.get("x-y") == "1"
    assert len(h) == 1


def test_make_response_rfc3261_8_2_6() -> None:
    req = parse_message(build(
        "Via: SIP/2.0/UDP p1.example.com;branch=z9hG4bK1",
        "Via: SIP/2.0/UDP 192.0.2.1;branch=z9hG4bK2",
        *BASE[1:], "Record-Route: <sip:p1.example.com;lr>", "Subject: hi", body="body",
    ))
    assert isinstance(req, SipRequest)
    ringing = make_response(req, 180, to_tag="t1")
    assert ringing.reason == "Ringing" == REASON_PHRASES[180]
    assert [v.host for v in ringing.vias] == ["p1.example.com", "192.0.2.1"]
    assert ringing.to.tag == "t1" and ringing.from_.tag == "9fxced76sl"
    assert ringing.cseq == (1, "INVITE") and ringing.body == b""
    assert "Subject" not in ringing.headers and ringing.headers.get("Content-Length") == "0"
    trying = make_response(req, 100)
    assert trying.to.tag is None
    again = parse_message(ringing.serialize())
    assert again == ringing
    # an existing To tag is never replaced
    req.headers.set("To", "<sip:bob@example.com>;tag=old")
    assert make_response(req, 200, to_tag="new").to.tag == "old"
    assert make_response(req, 299).reason == ""


def test_new_identifiers_are_unique_and_rfc3261_branch() -> None:
    branches = {new_branch() for _ in range(100)}
    assert len(branches) == 100 and all(b.startswith("z9hG4bK") for b in branches)
    assert new_tag() != new_tag()
    assert new_call_id("192.0.2.1").endswith("@192.0.2.1")


# ---------------------------------------------------------------- stream framing


def test_stream_framer_splits_arbitrary_chunks() -> None:
    m1 = build(*BASE, "Content-Length: 5", body="hello")
    m2 = build(*BASE, "l: 0", start="ACK sip:bob@example.com SIP/2.0").replace(
        b"CSeq: 1 INVITE", b"CSeq: 1 ACK")
    stream = b"\r\n\r\n" + m1 + b"\r\n" + m2
    for size in (1, 3, 7, len(stream)):
        framer = StreamFramer()
        out: list[bytes] = []
        for i in range(0, len(stream), size):
            out += framer.feed(stream[i : i + size])
        assert out == [m1, m2]
        assert framer.buffered == 0
    assert [parse_message(m).cseq[1] for m in out] == ["INVITE", "ACK"]


def test_rfc3261_18_3_stream_requires_content_length() -> None:
    with pytest.raises(SipParseError, match="Content-Length"):
        StreamFramer().feed(build(*BASE))


def test_rfc3261_18_3_stream_garbage_start_line() -> None:
    with pytest.raises(SipParseError, match="start line"):
        StreamFramer().feed(b"GET / HTTP/1.1\r\n")


def test_rfc3261_18_3_stream_oversize_header_413() -> None:
    framer = StreamFramer(max_size=500)
    framer.feed(b"INVITE sip:b@example.com SIP/2.0\r\n")
    with pytest.raises(SipParseError) as info:
        framer.feed(b"X-Pad: " + b"a" * 600)
    assert info.value.status == 413


def test_rfc3261_18_3_stream_oversize_body_413() -> None:
    with pytest.raises(SipParseError) as info:
        StreamFramer(max_size=500).feed(build(*BASE, "Content-Length: 100000"))
    assert info.value.status == 413


def test_rfc3261_18_3_stream_conflicting_content_length() -> None:
    with pytest.raises(SipParseError, match="conflicting"):
        StreamFramer().feed(build(*BASE, "Content-Length: 1", "l: 2", body="ab"))


def test_stream_framer_waits_for_body() -> None:
    framer = StreamFramer()
    data = build(*BASE, "Content-Length: 4", body="abcd")
    assert framer.feed(data[:-2]) == []
    assert framer.feed(data[-2:]) == [data]


def test_rfc5626_3_5_1_ping_counted_even_when_split() -> None:
    framer = StreamFramer()
    assert framer.feed(b"\r\n") == [] and framer.pings == 0
    assert framer.feed(b"\r\n") == [] and framer.pings == 1
    m = build(*BASE, "Content-Length: 0")
    assert framer.feed(b"\r\n" + m + b"\r\n\r\n\r\n\r\n") == [m]
    assert framer.pings == 3 and framer.buffered == 0


@pytest.mark.parametrize("header", ["Call-ID: \xff\xfe-not-utf8@x",
                                    "From: \"\xc3\" <sip:a@x>;tag=1", "Subject: caf\xe9"])
def test_rfc3629_header_bytes_that_are_not_utf8_get_400_with_partial(header: str) -> None:
    """Non-UTF-8 header bytes are refused (400) instead of reaching records and logs as lone
    surrogates; the partial request lets the 400 echo the caller's own bytes back."""
    name = header.split(":", maxsplit=1)[0]
    hdrs = [h for h in BASE if not h.startswith(name + ":")] + [header]
    raw = build(*hdrs).replace(header.encode(), header.encode("latin-1"))
    with pytest.raises(SipParseError, match=f"{name} header is not valid UTF-8") as info:
        parse_message(raw)
    assert info.value.status == 400 and info.value.reason == "Bad Request - Invalid UTF-8"
    assert info.value.partial is not None
    resp = make_response(info.value.partial, 400, info.value.reason).serialize()
    assert resp.startswith(b"SIP/2.0 400 Bad Request - Invalid UTF-8\r\n")
    if name != "Subject":  # Via/From/To/Call-ID/CSeq are echoed byte for byte
        assert header.encode("latin-1") in resp


def test_rfc3629_valid_utf8_display_names_are_kept() -> None:
    hdrs = [h for h in BASE if not h.startswith("From:")] + ['From: "张三" <sip:a@x>;tag=1']
    msg = parse_message(build(*hdrs))
    assert msg.from_.display_name == "张三"


def test_rfc3261_12_1_1_record_route_is_copied_into_dialog_creating_responses() -> None:
    rr = ["Record-Route: <sip:p1.example.com;lr>", "Record-Route: <sip:p2.example.com;lr>"]
    invite = parse_message(build(*BASE, *rr))
    assert isinstance(invite, SipRequest)
    for status in (180, 200):
        resp = parse_message(make_response(invite, status, to_tag="t").serialize())
        assert resp.headers.get_all("Record-Route") == [
            "<sip:p1.example.com;lr>", "<sip:p2.example.com;lr>"]  # same order
    for status in (100, 486):  # no dialog: nothing to route
        resp = parse_message(make_response(invite, status, to_tag="t").serialize())
        assert resp.headers.get_all("Record-Route") == []
