"""Branded caller ID: the PASSporT verifies with a standard JWT library (PyJWT) and with our
verifier under RFC 8224/8225/9795 rules; tampering, staleness, a wrong number, an unknown
certificate and a broken rcdi are each refused with the reason."""

from __future__ import annotations

import base64
import json
import time

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from campaigns.certs import ChainError, make_test_ca, verify_chain
from campaigns.passport import (
    FAILED,
    NO_VALIDATION,
    PASSED,
    TrustStore,
    b64url,
    b64url_decode,
    call_info_headers,
    canonical,
    identity_header,
    integrity,
    parse_identity,
    rich_call_data,
    sign,
    verify,
    verify_headers,
)

URL = "https://cert.example.invalid/signer.pem"
ORIG, DEST = "+8610 5555 0101", "+8613800138000"
LOGO = b"\x89PNG fake logo bytes"


@pytest.fixture(scope="module")
def pki() -> tuple:
    return make_test_ca("Acme")


def _token(pki: tuple, **kw) -> str:
    _, _, key, _ = pki
    rcd, rcdi = rich_call_data("Acme 银行", logo_url="https://acme.example/logo.png",
                               call_reason="账单提醒", logo_bytes=LOGO)
    args = dict(x5u=URL, orig=ORIG, dest=[DEST], iat=int(time.time()), rcd=rcd, rcdi=rcdi)
    args.update(kw)
    return sign(key, **args)


def _trust(pki: tuple, **kw) -> TrustStore:
    _, ca, _, signer = pki
    return TrustStore([ca], {URL: [signer, ca]}, contents={"https://acme.example/logo.png": LOGO},
                      **kw)


def test_pyjwt_verifies_the_passport(pki: tuple) -> None:
    _, _, _, signer = pki
    token = _token(pki)
    claims = jwt.decode(token, signer.public_key(), algorithms=["ES256"])
    header = jwt.get_unverified_header(token)
    assert header == {"alg": "ES256", "ppt": "rcd", "typ": "passport", "x5u": URL}
    assert claims["orig"] == {"tn": "861055550101"} and claims["dest"] == {"tn": ["8613800138000"]}
    assert claims["rcd"] == {"nam": "Acme 银行", "icn": "https://acme.example/logo.png",
                             "crn": "账单提醒"}
    assert claims["rcdi"]["/icn"] == integrity(LOGO)
    # RFC 8225 §9: sorted keys, no whitespace: the signed bytes are the canonical form
    h64, c64, _ = token.split(".")
    assert b64url_decode(c64) == canonical(claims) and b64url_decode(h64) == canonical(header)


def test_tampered_passport_is_refused_by_pyjwt_and_by_us(pki: tuple) -> None:
    _, _, _, signer = pki
    token = _token(pki)
    h64, c64, s64 = token.split(".")
    claims = json.loads(b64url_decode(c64))
    claims["rcd"]["nam"] = "Police"  # a spoofer rewrites the name
    forged = f"{h64}.{b64url(canonical(claims))}.{s64}"
    with pytest.raises(jwt.InvalidSignatureError):
        jwt.decode(forged, signer.public_key(), algorithms=["ES256"])
    r = verify(identity_header(forged, URL)[1], from_number=ORIG, to_number=DEST,
               now=time.time(), trust=_trust(pki))
    assert r.verstat == FAILED and "signature" in r.reason
    # a signature from another key, with the right x5u
    other = ec.generate_private_key(ec.SECP256R1())
    fake = sign(other, x5u=URL, orig=ORIG, dest=[DEST], iat=int(time.time()),
                rcd={"nam": "Acme"})
    assert verify(identity_header(fake, URL)[1], from_number=ORIG, to_number=DEST,
                  now=time.time(), trust=_trust(pki)).verstat == FAILED


def test_valid_identity_header_passes_with_the_verified_name(pki: tuple) -> None:
    name, value = identity_header(_token(pki), URL)
    assert name == "Identity" and value.endswith(f";info=<{URL}>;alg=ES256;ppt=rcd")
    r = verify(value, from_number="+86 10 5555 0101", to_number=DEST, now=time.time(),
               trust=_trust(pki))
    assert r.verstat == PASSED, r.reason
    assert (r.name, r.call_reason) == ("Acme 银行", "账单提醒")
    assert r.as_flow_value()["verstat"] == "TN-Validation-Passed"


@pytest.mark.parametrize(("change", "reason"), [
    ({"iat": int(time.time()) - 600}, "iat"),
    ({"orig": "+8610 5555 0199"}, "orig.tn"),
    ({"dest": ["+8613900139000"]}, "dest.tn"),
    ({"x5u": "https://elsewhere.invalid/x.pem"}, "not available"),
])
def test_rfc8224_checks(pki: tuple, change: dict, reason: str) -> None:
    token = _token(pki, **change)
    url = change.get("x5u", URL)
    r = verify(identity_header(token, url)[1], from_number=ORIG, to_number=DEST,
               now=time.time(), trust=_trust(pki))
    assert r.verstat == FAILED and reason in r.reason


@pytest.mark.parametrize(("rcd", "rcdi", "reason"), [
    ({"crn": "x"}, None, "rcd.nam"),
    ({"nam": "Acme", "icn": "https://acme.example/logo.png"}, {}, "no digest for /icn"),
    ({"nam": "Acme", "icn": "https://acme.example/logo.png"},
     {"/icn": integrity(b"another logo")}, "does not match"),
    ({"nam": "Acme"}, {"/jcd": "sha256-AAAA"}, "points at nothing"),
    ({"nam": "Acme", "icn": "https://acme.example/logo.png"}, {"/icn": "md5-abc"},
     "is not sha256"),
])
def test_rfc9795_rcd_rules(pki: tuple, rcd: dict, rcdi: dict | None, reason: str) -> None:
    _, _, key, _ = pki
    token = sign(key, x5u=URL, orig=ORIG, dest=[DEST], iat=int(time.time()), rcd=rcd,
                 rcdi=rcdi)
    if rcdi == {}:  # sign() drops an empty rcdi: add it so the rule about URLs applies
        h64, c64, _ = token.split(".")
        claims = json.loads(b64url_decode(c64))
        claims["rcdi"] = {}
        signing_input = f"{h64}.{b64url(canonical(claims))}"
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
        r_, s_ = decode_dss_signature(key.sign(signing_input.encode(), ec.ECDSA(hashes.SHA256())))
        token = f"{signing_input}.{b64url(r_.to_bytes(32, 'big') + s_.to_bytes(32, 'big'))}"
    r = verify(identity_header(token, URL)[1], from_number=ORIG, to_number=DEST,
               now=time.time(), trust=_trust(pki))
    assert r.verstat == FAILED and reason in r.reason, r.reason


def test_jcd_digest_is_over_the_canonical_object(pki: tuple) -> None:
    _, _, key, _ = pki
    card = ["vcard", [["fn", {}, "text", "Acme"]]]
    token = sign(key, x5u=URL, orig=ORIG, dest=[DEST], iat=int(time.time()),
                 rcd={"nam": "Acme", "jcd": card}, rcdi={"/jcd": integrity(canonical(card))})
    assert verify(identity_header(token, URL)[1], from_number=ORIG, to_number=DEST,
                  now=time.time(), trust=_trust(pki)).passed


def test_untrusted_chain_and_no_header(pki: tuple) -> None:
    other = make_test_ca("Mallory")
    _, _, _, signer = pki
    with pytest.raises(ChainError):
        verify_chain([signer], [other[1]], __import__("datetime").datetime.now(
            __import__("datetime").UTC))
    trust = TrustStore([other[1]], {URL: [pki[3], pki[1]]})
    r = verify(identity_header(_token(pki), URL)[1], from_number=ORIG, to_number=DEST,
               now=time.time(), trust=trust)
    assert r.verstat == FAILED and "certificate chain" in r.reason
    assert verify_headers([], from_number=ORIG, to_number=DEST, now=time.time(),
                          trust=trust).verstat == NO_VALIDATION
    assert verify("garbage;info=<x>", from_number=ORIG, to_number=DEST, now=time.time(),
                  trust=trust).verstat == FAILED


def test_shaken_passport_carries_attestation(pki: tuple) -> None:
    token = _token(pki, ppt="shaken", attest="B", origid="123e4567-e89b-12d3-a456-426655440000")
    value = identity_header(token, URL, "shaken")[1]
    assert parse_identity(value).ppt == "shaken"
    r = verify(value, from_number=ORIG, to_number=DEST, now=time.time(), trust=_trust(pki))
    assert r.passed and r.attest == "B" and r.name == "Acme 银行"


def test_call_info_per_rfc9796() -> None:
    rcd, _ = rich_call_data("Acme", logo_url="https://acme.example/l.png",
                            call_reason='Bill "due"')
    (icon, jcard) = call_info_headers(rcd)
    assert icon == ("Call-Info", "<https://acme.example/l.png>;purpose=icon")
    assert jcard[1].endswith(';purpose=jcard;call-reason="Bill \\"due\\""')
    data = jcard[1].split("base64,", 1)[1].split(">", 1)[0]
    card = json.loads(base64.b64decode(data))
    assert card[1][1] == ["fn", {}, "text", "Acme"]
