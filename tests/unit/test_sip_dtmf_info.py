"""SIP INFO DTMF bodies: both de-facto formats, round trips and negatives."""

from __future__ import annotations

import pytest

from engine.sip.dtmf_info import DtmfInfoError, build_dtmf_info, parse_dtmf_info


@pytest.mark.parametrize("digit", list("0123456789*#ABCD"))
def test_round_trip_both_formats(digit: str) -> None:
    for relay in (True, False):
        ctype, body = build_dtmf_info(digit, 250, relay=relay)
        assert parse_dtmf_info(ctype, body) == (digit, 250 if relay else 160)


def test_dtmf_relay_exact_body() -> None:
    assert build_dtmf_info("5") == ("application/dtmf-relay", b"Signal=5\r\nDuration=160\r\n")
    assert build_dtmf_info("#", relay=False) == ("application/dtmf", b"#")


def test_parse_variants() -> None:
    assert parse_dtmf_info("application/dtmf-relay", b"Signal=5\r\nDuration=160") == ("5", 160)
    assert parse_dtmf_info("Application/DTMF-Relay; charset=x", b"signal= *\nduration=80\n") == (
        "*", 80)
    assert parse_dtmf_info("application/dtmf-relay", b"Signal=11\r\n") == ("#", 160)
    assert parse_dtmf_info("application/dtmf", b"a\r\n") == ("A", 160)
    assert parse_dtmf_info("application/dtmf", b"10") == ("*", 160)


@pytest.mark.parametrize(
    ("ctype", "body", "field"),
    [
        ("text/plain", b"Signal=5", "Content-Type"),
        (None, b"5", "Content-Type"),
        ("application/dtmf-relay", b"Duration=160", "no Signal"),
        ("application/dtmf-relay", b"Signal=X", "Signal"),
        ("application/dtmf-relay", b"Signal=16", "Signal"),
        ("application/dtmf-relay", b"Signal 5", "without '='"),
        ("application/dtmf-relay", b"Signal=5\r\nDuration=-1", "Duration"),
        ("application/dtmf-relay", b"Signal=5\r\nDuration=0", "Duration"),
        ("application/dtmf-relay", b"Signal=5\r\nDuration=99999999", "Duration"),
        ("application/dtmf", b"55", "key"),
        ("application/dtmf", b"", "key"),
        ("application/dtmf", "５".encode(), "ASCII"),
    ],
)
def test_malformed_bodies(ctype: str | None, body: bytes, field: str) -> None:
    with pytest.raises(DtmfInfoError, match=field):
        parse_dtmf_info(ctype, body)


def test_build_rejects_bad_digit_and_duration() -> None:
    with pytest.raises(DtmfInfoError, match="digit"):
        build_dtmf_info("12")
    with pytest.raises(DtmfInfoError, match="duration"):
        build_dtmf_info("1", 0)
