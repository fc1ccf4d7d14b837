"""Inbound Identity verification as pure functions on an injected clock: freshness at the edges
of the window, certificate validity in time (and the chain cache not outliving it), orig
against From or P-Asserted-Identity, RFC 8224 §6.2.2 response codes, the evidence taken from a
parsed INVITE, and the checker's policy (proceed unverified, or refuse)."""

from __future__ import annotations

import datetime as dt

import pytest

from campaigns.branding import IdentityChecker
from campaigns.certs import make_test_ca
from campaigns.passport import (
    BAD_IDENTITY_INFO,
    FAILED,
    INVALID_IDENTITY_HEADER,
    NO_VALIDATION,
    PASSED,
    STALE_DATE,
    UNSUPPORTED_CREDENTIAL,
    TrustStore,
    identity_header,
    rich_call_data,
    sign,
    verify,
)
from core.call import UNVERIFIED_IDENTITY
from core.clock import FakeClock
from engine.identity import IdentityEvidence, IdentityVerdict, check_identity, evidence_of
from engine.sip.message import parse_message

URL = "https://cert.example.invalid/signer.pem"
ORIG, DEST = "+861055550101", "+8613800138000"
T0 = 1_750_000_000.0  # the injected "now" (epoch seconds)
ISSUED = dt.datetime.fromtimestamp(T0, dt.UTC)


@pytest.fixture(scope="module")
def pki() -> tuple:
    # valid from ISSUED - 5 min for `days` days (the signer), the CA for five times as long
    return make_test_ca("Acme", days=2, now=ISSUED)


def _value(pki: tuple, *, iat: float = T0, orig: str = ORIG, dest: str = DEST,
           x5u: str = URL) -> str:
    rcd, rcdi = rich_call_data("Acme 银行", call_reason="账单提醒")
    token = sign(pki[2], x5u=x5u, orig=orig, dest=[dest], iat=int(iat), rcd=rcd, rcdi=rcdi)
    return identity_header(token, x5u)[1]


def _trust(pki: tuple, max_age_s: float = 60.0) -> TrustStore:
    return TrustStore([pki[1]], {URL: [pki[3], pki[1]]}, max_age_s)


@pytest.mark.parametrize(("age_s", "verstat"), [
    (0, PASSED), (59, PASSED), (60, PASSED), (61, FAILED), (-61, FAILED), (3600, FAILED)])
def test_iat_freshness_window_on_the_injected_clock(pki: tuple, age_s: int,
                                                    verstat: str) -> None:
    """RFC 8224 §6.2: iat more than max_age_s from now either way (a replay, or a signer whose
    clock runs ahead) is stale; the response for it is 403 Stale Date."""
    r = verify(_value(pki), from_number=ORIG, to_number=DEST, now=T0 + age_s, trust=_trust(pki))
    assert r.verstat == verstat, r.reason
    if verstat == FAILED:
        assert "iat" in r.reason and r.sip_status == STALE_DATE


def test_freshness_window_is_configurable(pki: tuple) -> None:
    r = verify(_value(pki), from_number=ORIG, to_number=DEST, now=T0 + 100,
               trust=_trust(pki, max_age_s=300))
    assert r.passed, r.reason


def test_a_certificate_expired_at_now_fails_even_after_the_chain_was_cached(pki: tuple) -> None:
    """The chain is checked once per URL and remembered for its validity window only: two days
    later (the signer's certificate is gone) a token signed that very second still fails."""
    trust = _trust(pki, max_age_s=60)
    assert verify(_value(pki), from_number=ORIG, to_number=DEST, now=T0, trust=trust).passed
    assert URL in trust._checked  # cached: the next call does no chain work
    later = T0 + 3 * 86400
    r = verify(_value(pki, iat=later), from_number=ORIG, to_number=DEST, now=later, trust=trust)
    assert r.verstat == FAILED and "not valid at" in r.reason, r.reason
    assert r.sip_status == UNSUPPORTED_CREDENTIAL
    # and before the certificate's notBefore
    early = T0 - 3600
    r = verify(_value(pki, iat=early), from_number=ORIG, to_number=DEST, now=early, trust=trust)
    assert r.verstat == FAILED and "not valid at" in r.reason


def test_orig_may_match_p_asserted_identity(pki: tuple) -> None:
    """SHAKEN signs the PAI number when there is one; the From may then be anything."""
    value = _value(pki)
    r = verify(value, from_number="anonymous", to_number=DEST, now=T0, trust=_trust(pki),
               asserted=[ORIG])
    assert r.passed, r.reason
    r = verify(value, from_number="+861055550199", to_number=DEST, now=T0, trust=_trust(pki),
               asserted=["+861055550198"])
    assert r.verstat == FAILED and r.sip_status == INVALID_IDENTITY_HEADER
    assert "861055550199 or 861055550198" in r.reason
    r = verify(value, from_number="anonymous", to_number="ivr", now=T0, trust=_trust(pki))
    assert r.verstat == FAILED and "has no number" in r.reason


@pytest.mark.parametrize(("value", "status", "reason"), [
    ("garbage", INVALID_IDENTITY_HEADER, "malformed"),
    ("a.b.c;info=<x>", INVALID_IDENTITY_HEADER, "malformed"),
    ("", INVALID_IDENTITY_HEADER, "malformed"),
])
def test_garbage_is_a_failure_with_a_reason(pki: tuple, value: str, status: int,
                                            reason: str) -> None:
    r = verify(value, from_number=ORIG, to_number=DEST, now=T0, trust=_trust(pki))
    assert r.verstat == FAILED and reason in r.reason and r.sip_status == status


def test_unknown_certificate_url_is_436(pki: tuple) -> None:
    r = verify(_value(pki, x5u="https://other.invalid/c.pem"), from_number=ORIG,
               to_number=DEST, now=T0, trust=_trust(pki))
    assert r.sip_status == BAD_IDENTITY_INFO and "not available" in r.reason


INVITE = (
    "INVITE sip:8613800138000@127.0.0.1:5080 SIP/2.0\r\n"
    "Via: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bK-1\r\n"
    "From: \"Acme\" <sip:+861055550101@127.0.0.1>;tag=a\r\n"
    "To: <sip:+8613800138000@127.0.0.1>\r\n"
    "Call-ID: x@127.0.0.1\r\nCSeq: 1 INVITE\r\nMax-Forwards: 70\r\n"
    "P-Asserted-Identity: <tel:+861055550102>, <sip:not a uri>\r\n"
    "{identity}"
    "Content-Length: 0\r\n\r\n")


def test_evidence_of_an_invite() -> None:
    """Identity in its compact form ``y``, several of them, a PAI with a tel: URI and one that
    does not parse (left out, not an error)."""
    msg = parse_message(INVITE.format(identity="y: one;info=<u>\r\nIdentity: two\r\n").encode())
    ev = evidence_of(msg)  # type: ignore[arg-type]
    assert ev == IdentityEvidence(("one;info=<u>", "two"), "+861055550101", "+8613800138000",
                                  ("+861055550102",))


async def test_checker_verdicts_and_the_reject_policy(pki: tuple) -> None:
    clock = FakeClock(wall_start=T0)
    trust_args = ([pki[1]], {URL: [pki[3], pki[1]]})
    checker = IdentityChecker(TrustStore(*trust_args), clock.wall)
    good = IdentityEvidence((_value(pki),), ORIG, DEST)
    verdict = await checker.verify(good)
    assert verdict.verstat == PASSED and verdict.status is None
    assert verdict.values["name"] == "Acme 银行" and verdict.values["call_reason"] == "账单提醒"
    assert set(verdict.values) == set(UNVERIFIED_IDENTITY)
    none = await checker.verify(IdentityEvidence((), ORIG, DEST))
    assert none.verstat == NO_VALIDATION and none.status is None  # never refused for absence
    await clock.advance(120)
    stale = await checker.verify(good)
    assert stale.verstat == FAILED and stale.status is None  # default: proceed unverified
    strict = IdentityChecker(TrustStore(*trust_args), clock.wall, reject_invalid=True)
    assert (await strict.verify(good)).status == (403, "Stale Date")
    tampered = _value(pki, iat=clock.wall())[:-4] + "AAAA"
    assert (await strict.verify(IdentityEvidence((tampered,), ORIG, DEST))).status == (
        438, "Invalid Identity Header")
    assert (await strict.verify(IdentityEvidence((), ORIG, DEST))).status is None


async def test_a_verifier_that_crashes_never_breaks_the_call() -> None:
    class Broken:
        async def verify(self, evidence: IdentityEvidence) -> IdentityVerdict:
            raise RuntimeError("certificate store on fire")

    msg = parse_message(INVITE.format(identity="Identity: x\r\n").encode())
    verdict = await check_identity(Broken(), msg)  # type: ignore[arg-type]
    assert verdict.verstat == FAILED and "on fire" in verdict.reason and verdict.status is None
    assert verdict.values["verstat"] == FAILED and "on fire" in verdict.values["reason"]
