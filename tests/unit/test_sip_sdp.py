"""SDP codec and offer/answer (RFC 4566, RFC 3264): round trips, negotiation, negatives."""

from __future__ import annotations

import pytest

from engine.sip.sdp import (
    NegotiatedMedia,
    SdpNegotiationError,
    SdpParseError,
    SessionDescription,
    build_offer,
    negotiate_answer,
    parse_answer,
)


def sdp(*lines: str) -> bytes:
    return "".join(line + "\r\n" for line in lines).encode()


# RFC 4566 §5 example plus unknown attributes and extra lines, canonical order
RFC4566_EXAMPLE = sdp(
    "v=0",
    "o=jdoe 2890844526 2890842807 IN IP4 10.47.16.5",
    "s=SDP Seminar",
    "i=A Seminar on the session description protocol",
    "u=http://www.example.com/seminars/sdp.pdf",
    "e=j.doe@example.com (Jane Doe)",
    "c=IN IP4 224.2.17.12/127",
    "t=2873397496 2873404696",
    "a=recvonly",
    "m=audio 49170 RTP/AVP 0",
    "m=video 51372 RTP/AVP 99",
    "a=rtpmap:99 h263-1998/90000",
)

SNOM_OFFER = sdp(
    "v=0",
    "o=root 2009 2009 IN IP4 192.0.2.10",
    "s=call",
    "c=IN IP4 192.0.2.10",
    "b=AS:84",
    "t=0 0",
    "a=X-nat:0",
    "m=audio 16384 RTP/AVP 9 8 0 101",
    "b=TIAS:64000",
    "a=rtpmap:9 G722/8000",
    "a=rtpmap:8 PCMA/8000",
    "a=rtpmap:0 PCMU/8000",
    "a=rtpmap:101 telephone-event/8000",
    "a=fmtp:101 0-15",
    "a=ptime:30",
    "a=rtcp-mux",
    "a=sendrecv",
)


@pytest.mark.parametrize("data", [RFC4566_EXAMPLE, SNOM_OFFER], ids=["rfc4566", "snom"])
def test_rfc4566_5_byte_exact_round_trip(data: bytes) -> None:
    sd = SessionDescription.parse(data)
    assert sd.serialize() == data
    assert SessionDescription.parse(sd.serialize()) == sd


def test_parse_fields() -> None:
    sd = SessionDescription.parse(SNOM_OFFER)
    assert sd.origin.session_id == "2009" and sd.session_name == "call"
    assert sd.connection is not None and sd.connection.host == "192.0.2.10"
    (m,) = sd.media
    assert (m.media, m.port, m.proto, m.formats) == ("audio", 16384, "RTP/AVP",
                                                     ["9", "8", "0", "101"])
    assert m.rtpmap[101] == ("telephone-event", 8000, None)
    assert m.fmtp == {101: "0-15"} and m.ptime == 30 and m.direction == "sendrecv"
    assert ("rtcp-mux", None) in m.attributes and ("X-nat", "0") in sd.attributes
    assert m.bandwidths == ["TIAS:64000"] and sd.bandwidths == ["AS:84"]


def test_multicast_ttl_and_session_direction() -> None:
    sd = SessionDescription.parse(RFC4566_EXAMPLE)
    assert sd.connection is not None and sd.connection.host == "224.2.17.12"
    assert sd.media_direction(sd.media[0]) == "recvonly"


def test_lf_only_and_str_input() -> None:
    sd = SessionDescription.parse(SNOM_OFFER.decode().replace("\r\n", "\n"))
    assert sd.serialize() == SNOM_OFFER


@pytest.mark.parametrize(
    ("data", "field"),
    [
        (sdp("v=0", "o=a 1 1 IN IP4 h", "s=-", "t=0 0", "garbage"), "line 5"),
        (sdp("v=1", "o=a 1 1 IN IP4 h", "s=-", "t=0 0"), "v="),
        (sdp("v=0", "o=a 1 IN IP4 h", "s=-", "t=0 0"), "o= needs 6"),
        (sdp("v=0", "s=-", "t=0 0"), "o="),
        (sdp("v=0", "o=a 1 1 IN IP4 h", "s=-"), "t="),
        (sdp("v=0", "o=a 1 1 IN IP4 h", "s=-", "c=IN IPX h", "t=0 0"), "c="),
        (sdp("v=0", "o=a 1 1 IN IP4 h", "s=-", "t=0 0", "m=audio x RTP/AVP 0"), "port"),
        (sdp("v=0", "o=a 1 1 IN IP4 h", "s=-", "t=0 0", "m=audio 70000 RTP/AVP 0"), "port"),
        (sdp("v=0", "o=a 1 1 IN IP4 h", "s=-", "t=0 0", "m=audio 1"), "m= needs"),
        (sdp("v=0", "o=a 1 1 IN IP4 h", "s=-", "t=0 0", "a=:x"), "attribute"),
        (b"v=0\r\n\xff\xfe", "UTF-8"),
    ],
)
def test_rfc4566_5_malformed(data: bytes, field: str) -> None:
    with pytest.raises(SdpParseError, match=field):
        SessionDescription.parse(data)


# ---------------------------------------------------------------- negotiation


def answer(offer: bytes, **kw: object) -> tuple[SessionDescription, NegotiatedMedia]:
    args: dict[str, object] = {"local_ip": "198.51.100.7", "local_port": 40000,
                               "session_id": 77}
    args.update(kw)
    return negotiate_answer(SessionDescription.parse(offer), **args)  # type: ignore[arg-type]


def test_rfc3264_6_1_answer_picks_offerers_first_supported_codec() -> None:
    ans, chosen = answer(SNOM_OFFER)
    assert chosen == NegotiatedMedia("192.0.2.10", 16384, 8, "PCMA", 8000, 101, 30, "sendrecv")
    assert ans.serialize() == sdp(
        "v=0",
        "o=- 77 77 IN IP4 198.51.100.7",
        "s=-",
        "c=IN IP4 198.51.100.7",
        "t=0 0",
        "m=audio 40000 RTP/AVP 8 101",
        "a=rtpmap:8 PCMA/8000",
        "a=rtpmap:101 telephone-event/8000",
        "a=fmtp:101 0-15",
        "a=ptime:20",
        "a=sendrecv",
    )


def test_rfc3264_static_payload_without_rtpmap_and_g722_preference() -> None:
    offer = sdp("v=0", "o=a 1 1 IN IP4 h", "s=-", "c=IN IP4 192.0.2.1", "t=0 0",
                "m=audio 5004 RTP/AVP 9 0")
    _, chosen = answer(offer, supported=("G722", "PCMU"))
    assert (chosen.payload_type, chosen.codec, chosen.telephone_event_pt) == (9, "G722", None)
    assert chosen.ptime == 20


def test_rfc3264_6_rejected_streams_keep_their_m_line_with_port_zero() -> None:
    offer = sdp("v=0", "o=a 1 1 IN IP4 h", "s=-", "c=IN IP4 192.0.2.1", "t=0 0",
                "m=video 5006 RTP/AVP 31", "m=audio 5004 RTP/AVP 0", "m=audio 5008 RTP/AVP 8")
    ans, chosen = answer(offer)
    assert [(m.media, m.port) for m in ans.media] == [("video", 0), ("audio", 40000),
                                                      ("audio", 0)]
    assert chosen.remote_port == 5004


def test_media_level_connection_overrides_session_ipv6() -> None:
    offer = sdp("v=0", "o=a 1 1 IN IP6 h", "s=-", "c=IN IP4 192.0.2.1", "t=0 0",
                "m=audio 5004 RTP/AVP 0", "c=IN IP6 2001:db8::5")
    ans, chosen = answer(offer, local_ip="2001:db8::7")
    assert chosen.remote_ip == "2001:db8::5"
    assert ans.connection is not None and str(ans.connection) == "IN IP6 2001:db8::7"


@pytest.mark.parametrize(
    ("offer_dir", "ours", "hold"),
    [("sendrecv", "sendrecv", False), ("sendonly", "recvonly", True),
     ("recvonly", "sendonly", False), ("inactive", "inactive", True)],
)
def test_rfc3264_6_1_direction_mirrored(offer_dir: str, ours: str, hold: bool) -> None:
    offer = sdp("v=0", "o=a 1 1 IN IP4 h", "s=-", "c=IN IP4 192.0.2.1", "t=0 0",
                f"a={offer_dir}", "m=audio 5004 RTP/AVP 0")
    ans, chosen = answer(offer)
    assert (chosen.direction, chosen.on_hold) == (ours, hold)
    assert ans.media[0].direction == ours


def test_rfc3264_8_4_old_style_hold_zero_address() -> None:
    offer = sdp("v=0", "o=a 1 2 IN IP4 h", "s=-", "c=IN IP4 0.0.0.0", "t=0 0",
                "m=audio 5004 RTP/AVP 0", "a=sendrecv")
    _, chosen = answer(offer)
    assert chosen.on_hold and chosen.direction == "recvonly"


def test_rfc3264_6_no_common_codec_is_488_listing_offer() -> None:
    offer = sdp("v=0", "o=a 1 1 IN IP4 h", "s=-", "c=IN IP4 192.0.2.1", "t=0 0",
                "m=audio 5004 RTP/AVP 18 97", "a=rtpmap:97 opus/48000/2")
    with pytest.raises(SdpNegotiationError, match="G729/8000, opus/48000") as info:
        answer(offer)
    assert info.value.status == 488


def test_rfc3264_6_srtp_only_offer_rejected() -> None:
    offer = sdp("v=0", "o=a 1 1 IN IP4 h", "s=-", "c=IN IP4 192.0.2.1", "t=0 0",
                "m=audio 5004 RTP/SAVP 0")
    with pytest.raises(SdpNegotiationError, match="no RTP/AVP audio"):
        answer(offer)


def test_codec_name_case_and_clock_rate_checked() -> None:
    offer = sdp("v=0", "o=a 1 1 IN IP4 h", "s=-", "c=IN IP4 192.0.2.1", "t=0 0",
                "m=audio 5004 RTP/AVP 96 97", "a=rtpmap:96 PCMU/16000", "a=rtpmap:97 pcmu/8000")
    _, chosen = answer(offer)
    assert (chosen.payload_type, chosen.codec) == (97, "pcmu")


def test_missing_connection_is_parse_error() -> None:
    offer = sdp("v=0", "o=a 1 1 IN IP4 h", "s=-", "t=0 0", "m=audio 5004 RTP/AVP 0")
    with pytest.raises(SdpParseError, match="no c= line"):
        answer(offer)


# ---------------------------------------------------------------- our offers


def test_build_offer_exact() -> None:
    offer = build_offer("203.0.113.5", 30000, session_id=11, version=12)
    assert offer.serialize() == sdp(
        "v=0",
        "o=- 11 12 IN IP4 203.0.113.5",
        "s=-",
        "c=IN IP4 203.0.113.5",
        "t=0 0",
        "m=audio 30000 RTP/AVP 0 8 101",
        "a=rtpmap:0 PCMU/8000",
        "a=rtpmap:8 PCMA/8000",
        "a=rtpmap:101 telephone-event/8000",
        "a=fmtp:101 0-16",
        "a=ptime:20",
        "a=sendrecv",
    )


def test_build_offer_rejects_unknown_codec_and_direction() -> None:
    with pytest.raises(ValueError, match="opus"):
        build_offer("203.0.113.5", 30000, codecs=("opus",))
    with pytest.raises(ValueError, match="direction"):
        build_offer("203.0.113.5", 30000, direction="sideways")


def test_offer_answer_loop_between_two_engines() -> None:
    offer = build_offer("203.0.113.5", 30000, codecs=("PCMA", "PCMU"), session_id=1, version=1,
                        direction="sendonly")
    ans, theirs = negotiate_answer(SessionDescription.parse(offer.serialize()),
                                   local_ip="198.51.100.7", local_port=40000, session_id=2)
    ours = parse_answer(offer, SessionDescription.parse(ans.serialize()))
    assert theirs == NegotiatedMedia("203.0.113.5", 30000, 8, "PCMA", 8000, 101, 20,
                                     "recvonly", True)
    assert (ours.remote_ip, ours.remote_port, ours.payload_type, ours.telephone_event_pt,
            ours.direction) == ("198.51.100.7", 40000, 8, 101, "sendonly")


def test_rfc3264_7_answer_with_port_zero_rejects() -> None:
    offer = build_offer("203.0.113.5", 30000)
    ans = SessionDescription.parse(sdp("v=0", "o=b 1 1 IN IP4 h", "s=-", "c=IN IP4 192.0.2.9",
                                       "t=0 0", "m=audio 0 RTP/AVP 0"))
    with pytest.raises(SdpNegotiationError, match="PCMU/8000"):
        parse_answer(offer, ans)


def test_rfc3264_7_answer_codec_not_offered_rejects() -> None:
    offer = build_offer("203.0.113.5", 30000, codecs=("PCMU",))
    ans = SessionDescription.parse(sdp("v=0", "o=b 1 1 IN IP4 h", "s=-", "c=IN IP4 192.0.2.9",
                                       "t=0 0", "m=audio 4000 RTP/AVP 8"))
    with pytest.raises(SdpNegotiationError):
        parse_answer(offer, ans)
