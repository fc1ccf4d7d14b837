"""SIP/tel URIs, name-addr and Via values: round trips and one negative test per rule."""

from __future__ import annotations

import pytest

from engine.sip.message import NameAddr, SipParseError, SipUri, Via

CANONICAL_URIS = [
    "sip:alice@atlanta.com",
    "sip:alice:secretword@atlanta.com;transport=tcp",
    "sips:alice@atlanta.com?subject=project%20x&priority=urgent",
    "sip:+1-212-555-1212:1234@gateway.com;user=phone",
    "sips:1212@gateway.com",
    "sip:alice@192.0.2.4",
    "sip:atlanta.com;method=REGISTER?to=alice%40atlanta.com",
    "sip:alice;day=tuesday@atlanta.com",
    "sip:[2001:db8::1]:5070;transport=udp;lr",
    "sip:bob@biloxi.com:5061;maddr=239.255.255.1;ttl=15",
    "tel:+1-201-555-0123",
    "tel:7042;phone-context=example.com",
]


@pytest.mark.parametrize("text", CANONICAL_URIS)
def test_rfc3261_19_1_3_examples_round_trip(text: str) -> None:
    uri = SipUri.parse(text)
    assert str(uri) == text
    assert SipUri.parse(str(uri)) == uri


def test_uri_fields() -> None:
    uri = SipUri.parse("sip:alice:pw@Atlanta.com:05060;Transport=TCP;lr?Subject=hi")
    assert (uri.scheme, uri.user, uri.password, uri.host, uri.port) == (
        "sip", "alice", "pw", "Atlanta.com", 5060)
    assert uri.params == {"transport": "TCP", "lr": None}
    assert uri.headers == {"Subject": "hi"}
    assert uri.transport == "TCP"
    assert SipUri.parse("sips:b@example.com").transport == "TLS"
    assert SipUri.parse("sip:b@example.com").transport == "UDP"


def test_rfc3261_19_1_4_user_unescaped_then_escaped() -> None:
    uri = SipUri.parse("sip:I%20have%20spaces@example.net")
    assert uri.user == "I have spaces"
    assert str(uri) == "sip:I%20have%20spaces@example.net"
    built = SipUri(user="a@b:c d", host="example.com")
    assert str(built) == "sip:a%40b%3Ac%20d@example.com"
    assert SipUri.parse(str(built)).user == "a@b:c d"


def test_ipv6_host_stored_without_brackets() -> None:
    uri = SipUri.parse("sip:[::1]")
    assert uri.host == "::1" and uri.port is None and str(uri) == "sip:[::1]"


def test_tel_uri_number_in_host() -> None:
    uri = SipUri.parse("tel:+1-201-555-0123;ext=22")
    assert (uri.scheme, uri.host, uri.params) == ("tel", "+1-201-555-0123", {"ext": "22"})


@pytest.mark.parametrize("text", ["http://example.com/", "mailto:a@example.com", "im:a@b.com"])
def test_rfc3261_8_2_2_1_other_schemes_are_416(text: str) -> None:
    with pytest.raises(SipParseError) as info:
        SipUri.parse(text)
    assert info.value.status == 416 and info.value.reason == "Unsupported URI Scheme"


@pytest.mark.parametrize(
    ("text", "field"),
    [
        ("<sip:a@example.com>", "scheme"),
        ("sip:", "invalid characters"),
        ("sip:a@", "host"),
        ("sip:@example.com", "user"),
        ("sip:a@example.com:99999", "port"),
        ("sip:a@example.com:5x", "port"),
        ("sip:a@[::1", "IPv6"),
        ("sip:a@[zz::1]", "IPv6"),
        ("sip:a@[::1]x", "junk"),
        ("sip:a b@example.com", "invalid characters"),
        ("sip:a@exa_mple.com", "host"),
        ("sip:a@example.com;=x", "parameter"),
        ("sip:a@example.com?=x", "header name"),
        ("sip:%ff%fe@example.com", "escape"),
        ("tel:call-me", "tel"),
        ("sip:a@-bad.example.com", "host"),
    ],
)
def test_rfc3261_25_1_malformed_uri(text: str, field: str) -> None:
    with pytest.raises(SipParseError, match=field) as info:
        SipUri.parse(text)
    assert info.value.status == 400


# ---------------------------------------------------------------- name-addr


def test_rfc3261_20_10_addr_spec_params_belong_to_header() -> None:
    na = NameAddr.parse("sip:alice@example.com;tag=88sja8x")
    assert na.uri.params == {} and na.tag == "88sja8x"
    assert str(na) == "<sip:alice@example.com>;tag=88sja8x"


def test_rfc3261_20_10_name_addr_params_inside_brackets_belong_to_uri() -> None:
    na = NameAddr.parse("<sip:alice@example.com;transport=tcp>;tag=1")
    assert na.uri.params == {"transport": "tcp"} and na.params == {"tag": "1"}


def test_quoted_display_name_with_escapes_round_trip() -> None:
    na = NameAddr.parse('"Bob \\"the\\" Builder, Jr." <sip:bob@example.com>;tag=a')
    assert na.display_name == 'Bob "the" Builder, Jr.'
    assert str(na) == '"Bob \\"the\\" Builder, Jr." <sip:bob@example.com>;tag=a'
    assert NameAddr.parse(str(na)) == na


def test_token_display_name_and_empty_quoted() -> None:
    assert NameAddr.parse("Bob  Smith <sip:b@example.com>").display_name == "Bob Smith"
    assert NameAddr.parse('"" <sip:b@example.com>').display_name == ""
    assert NameAddr.parse("<sip:b@example.com>").display_name is None


def test_with_tag_is_a_copy() -> None:
    na = NameAddr.parse("<sip:b@example.com>;x=1")
    tagged = na.with_tag("t9")
    assert tagged.tag == "t9" and na.tag is None
    assert str(tagged) == "<sip:b@example.com>;x=1;tag=t9"


def test_quoted_param_value_kept() -> None:
    na = NameAddr.parse('<sip:b@192.0.2.1>;+sip.instance="<urn:uuid:1;a=b>";expires=60')
    assert na.params == {"+sip.instance": '"<urn:uuid:1;a=b>"', "expires": "60"}


@pytest.mark.parametrize(
    ("text", "field"),
    [
        ("", "empty"),
        ('"unterminated <sip:b@example.com>', "unterminated"),
        ('"Bob" sip:b@example.com', "not followed"),
        ("<sip:b@example.com", "missing '>'"),
        ("<sip:b@example.com> junk", "junk"),
        ("Bell, Alexander <sip:b@example.com>", "display name"),
        ("<sip:b@example.com>;;", "parameter"),
    ],
)
def test_rfc3261_25_1_malformed_name_addr(text: str, field: str) -> None:
    with pytest.raises(SipParseError, match=field):
        NameAddr.parse(text)


# ---------------------------------------------------------------- Via


def test_via_round_trip_and_fields() -> None:
    text = "SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK776asdhds;received=10.0.0.1;rport=5062"
    via = Via.parse(text)
    assert (via.transport, via.host, via.port) == ("UDP", "192.0.2.1", 5060)
    assert (via.branch, via.received, via.rport) == ("z9hG4bK776asdhds", "10.0.0.1", 5062)
    assert str(via) == text


def test_rfc3581_rport_without_value() -> None:
    via = Via.parse("SIP/2.0/TCP [2001:db8::1]:5070;rport;branch=z9hG4bK1")
    assert "rport" in via.params and via.params["rport"] is None and via.rport is None
    assert via.host == "2001:db8::1" and via.port == 5070
    assert str(via) == "SIP/2.0/TCP [2001:db8::1]:5070;rport;branch=z9hG4bK1"


def test_via_lws_around_slashes_and_colon() -> None:
    via = Via.parse("SIP / 2.0 / tls  host.example.com : 5061 ; branch = z9hG4bKx")
    assert (via.transport, via.host, via.port, via.branch) == (
        "TLS", "host.example.com", 5061, "z9hG4bKx")


@pytest.mark.parametrize(
    ("text", "field"),
    [
        ("SIP/2.0 host", "sent-protocol"),
        ("SIP/3.0/UDP host", "protocol"),
        ("SIP/2.0/UDP", "sent-by"),
        ("SIP/2.0/UDP host:port", "port"),
        ("SIP/2.0/UDP host;;branch=1", "parameter"),
        ("SIP/2.0/U(P host", "transport"),
    ],
)
def test_rfc3261_20_42_malformed_via(text: str, field: str) -> None:
    with pytest.raises(SipParseError, match=field):
        Via.parse(text)


def test_invalid_utf8_rejected_on_parse_and_escaped_on_build() -> None:
    raw = b"sip:\xff@example.com".decode("utf-8", "surrogateescape")
    with pytest.raises(SipParseError, match="invalid characters"):
        SipUri.parse(raw)
    built = SipUri(user=b"\xff".decode("utf-8", "surrogateescape"), host="example.com")
    assert str(built) == "sip:%FF@example.com"
