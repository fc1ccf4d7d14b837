"""Digest auth: RFC 2617 / RFC 7616 vectors reproduced exactly, server nonces, negatives."""

from __future__ import annotations

import pytest

from engine.sip import digest
from engine.sip.digest import (
    AuthResult,
    DigestError,
    build_authorization,
    choose_challenge,
    make_challenge,
    parse_auth_params,
    parse_challenge,
    verify_authorization,
)

SECRET = b"0123456789abcdef0123456789abcdef"
USERS = {"alice": "wonderland", "bob": "s3cret"}


def test_rfc2617_3_5_example() -> None:
    ch = parse_challenge(
        'Digest realm="testrealm@host.com", qop="auth,auth-int", '
        'nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093", opaque="5ccc069c403ebaf9f0171e9517f40e41"'
    )
    value = build_authorization(ch, "GET", "/dir/index.html", "Mufasa", "Circle Of Life",
                                cnonce="0a4f113b", nc=1)
    p = parse_auth_params(value.removeprefix("Digest "))
    assert p["response"] == "6629fae49393a05397450978507c4ef1"
    assert (p["nc"], p["qop"], p["cnonce"]) == ("00000001", "auth", "0a4f113b")
    assert p["opaque"] == "5ccc069c403ebaf9f0171e9517f40e41"


@pytest.mark.parametrize(
    ("algorithm", "response"),
    [
        ("MD5", "8ca523f5e9506fed4657c9700eebdbec"),
        ("SHA-256", "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1"),
    ],
)
def test_rfc7616_3_9_1_example(algorithm: str, response: str) -> None:
    ch = parse_challenge(
        f'Digest realm="http-auth@example.org", qop="auth, auth-int", algorithm={algorithm}, '
        'nonce="7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v", '
        'opaque="FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS"'
    )
    assert ch.qop == ("auth", "auth-int") and ch.algorithm == algorithm
    value = build_authorization(ch, "GET", "/dir/index.html", "Mufasa", "Circle of Life",
                                cnonce="f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ")
    assert f'response="{response}"' in value
    assert f"algorithm={algorithm}" in value


def test_rfc2617_without_qop_uses_legacy_formula() -> None:
    ch = parse_challenge('Digest realm="r", nonce="n"')
    value = build_authorization(ch, "REGISTER", "sip:r", "u", "p", cnonce="c")
    assert "qop" not in value and "nc=" not in value
    ha1 = digest._HASHES["MD5"](b"u:r:p")
    ha2 = digest._HASHES["MD5"](b"REGISTER:sip:r")
    assert f'response="{digest._HASHES["MD5"](f"{ha1}:n:{ha2}".encode())}"' in value


def test_rfc8760_2_4_choose_sha256_first() -> None:
    md5 = 'Digest realm="r", nonce="n1", algorithm=MD5, qop="auth"'
    sha = 'Digest realm="r", nonce="n2", algorithm=SHA-256, qop="auth"'
    unknown = 'Digest realm="r", nonce="n3", algorithm=SHA-512-256, qop="auth"'
    assert choose_challenge([md5, unknown, sha]).nonce == "n2"
    assert choose_challenge([md5, 'Basic realm="x"']).nonce == "n1"


def test_choose_challenge_none_supported() -> None:
    with pytest.raises(DigestError, match="no supported"):
        choose_challenge(['Digest realm="r", nonce="n", qop="auth-int"', 'Basic realm="r"'])


def test_challenge_stale_and_sess() -> None:
    ch = parse_challenge('Digest realm="r", nonce="n", algorithm=md5-sess, stale=TRUE')
    assert ch.stale and ch.algorithm == "MD5-sess"


@pytest.mark.parametrize(
    ("value", "field"),
    [
        ('Basic realm="r"', "scheme"),
        ('Digest nonce="n"', "realm"),
        ('Digest realm="r"', "nonce"),
        ('Digest nonce=n, realm="r', "unterminated"),
        ("Digest realm", "without '='"),
        ('Digest realm="r" junk, nonce="n"', "junk"),
    ],
)
def test_rfc7616_3_3_malformed_challenge(value: str, field: str) -> None:
    with pytest.raises(DigestError, match=field):
        parse_challenge(value)


# ---------------------------------------------------------------- server side


def login(now: float, *, algorithm: str = "SHA-256", user: str = "alice",
          password: str = "wonderland", method: str = "INVITE") -> str:
    challenge = parse_challenge(
        make_challenge("ivr", algorithm=algorithm, nonce_secret=SECRET, now=now))
    return build_authorization(challenge, method, "sip:100@ivr.example.com", user, password,
                               cnonce="abcdef", nc=1)


def check(value: str, now: float, *, method: str = "INVITE") -> AuthResult:
    return verify_authorization(value, method, USERS.get, "ivr", SECRET, now, 300.0)


@pytest.mark.parametrize("algorithm", digest.SUPPORTED_ALGORITHMS)
def test_server_round_trip(algorithm: str) -> None:
    result = check(login(1000.0, algorithm=algorithm), 1010.0)
    assert result == AuthResult(True, "alice")


def test_rfc7616_3_3_expired_nonce_is_stale_not_wrong() -> None:
    result = check(login(1000.0), 1000.0 + 301)
    assert not result.ok and result.stale and result.username == "alice"


def test_wrong_password_not_stale() -> None:
    result = check(login(1000.0, password="nope"), 1001.0)
    assert not result.ok and not result.stale and result.reason == "wrong password"


def test_unknown_user() -> None:
    assert check(login(1000.0, user="mallory"), 1001.0).reason == "unknown user"


def test_method_bound_into_response() -> None:
    assert check(login(1000.0, method="REGISTER"), 1001.0, method="INVITE").reason == (
        "wrong password")


def test_forged_nonce_rejected() -> None:
    other = parse_challenge(
        make_challenge("ivr", algorithm="MD5", nonce_secret=b"other-secret", now=1000.0))
    value = build_authorization(other, "INVITE", "sip:x", "alice", "wonderland", cnonce="c")
    assert check(value, 1001.0).reason == "nonce not issued by us"
    garbage = value.replace(other.nonce, "!!notbase64!!")
    assert check(garbage, 1001.0).reason == "nonce not issued by us"


def test_nonce_bound_to_realm() -> None:
    value = login(1000.0)
    result = verify_authorization(value.replace('realm="ivr"', 'realm="other"'), "INVITE",
                                  USERS.get, "other", SECRET, 1001.0, 300.0)
    assert result.reason == "nonce not issued by us"


def test_wrong_realm() -> None:
    result = verify_authorization(login(1000.0), "INVITE", USERS.get, "elsewhere", SECRET,
                                  1001.0, 300.0)
    assert result.reason.startswith("wrong realm")


@pytest.mark.parametrize(
    ("mutate", "reason"),
    [
        (lambda v: v.replace("Digest ", "Basic ", 1), "unsupported scheme"),
        (lambda v: v.replace("username=", "user="), "missing username"),
        (lambda v: v.replace("algorithm=SHA-256", "algorithm=SHA-512"), "unsupported algorithm"),
        (lambda v: v.replace("qop=auth", "qop=auth-int"), "unsupported qop"),
        (lambda v: v.replace("cnonce=", "xnonce="), "without nc/cnonce"),
        (lambda v: v + ', broken="', "unterminated"),
    ],
)
def test_rfc7616_3_4_malformed_credentials(mutate: object, reason: str) -> None:
    value = mutate(login(1000.0))  # type: ignore[operator]
    result = check(value, 1001.0)
    assert not result.ok and reason in result.reason


def test_make_challenge_format() -> None:
    value = make_challenge("ivr", algorithm="sha-256", nonce_secret=SECRET, now=5.0, stale=True,
                           opaque="op")
    ch = parse_challenge(value)
    assert (ch.realm, ch.algorithm, ch.qop, ch.stale, ch.opaque) == (
        "ivr", "SHA-256", ("auth",), True, "op")
    with pytest.raises(DigestError, match="algorithm"):
        make_challenge("ivr", algorithm="SHA-1", nonce_secret=SECRET, now=5.0)


def test_non_ascii_response_is_rejected_not_raised() -> None:
    value = login(1000.0)
    p = parse_auth_params(value.removeprefix("Digest "))
    result = check(value.replace(p["response"], "é" * 64), 1001.0)
    assert not result.ok and result.reason == "wrong password"
