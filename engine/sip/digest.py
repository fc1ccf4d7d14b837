"""HTTP Digest authentication for SIP (RFC 2617, RFC 7616, RFC 8760), both sides, sans-IO.

Client: parse ``WWW-Authenticate``/``Proxy-Authenticate``, pick the strongest challenge we can
answer (SHA-256 before MD5, as RFC 8760 asks) and build the ``Authorization`` value.

Server: nonces are ``base64url(timestamp || HMAC(secret, timestamp || realm))`` so any node holding
the secret validates them without shared state, and an old nonce is recognised as *stale* (the
client retries silently with a fresh one) rather than wrong. Time is always passed in. Nonce-count
replay tracking needs per-nonce state and is left to the caller.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import struct
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

__all__ = [
    "SUPPORTED_ALGORITHMS",
    "AuthResult",
    "Challenge",
    "DigestError",
    "build_authorization",
    "choose_challenge",
    "make_challenge",
    "parse_auth_params",
    "parse_challenge",
    "verify_authorization",
]

_HASHES: dict[str, Callable[[bytes], str]] = {
    "MD5": lambda b: hashlib.md5(b, usedforsecurity=False).hexdigest(),
    "SHA-256": lambda b: hashlib.sha256(b).hexdigest(),
}
#: algorithms we answer, best first (RFC 8760 §2.4: SHA-256 preferred over MD5)
SUPPORTED_ALGORITHMS = ("SHA-256", "SHA-256-sess", "MD5", "MD5-sess")
_NONCE_MAC_BYTES = 16


class DigestError(ValueError):
    """A challenge or credentials header that cannot be parsed; the message names the field."""


@dataclass(frozen=True, slots=True)
class Challenge:
    realm: str
    nonce: str
    algorithm: str = "MD5"
    qop: tuple[str, ...] = ()
    opaque: str | None = None
    stale: bool = False
    params: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class AuthResult:
    ok: bool
    username: str | None = None
    stale: bool = False
    reason: str = ""


def parse_auth_params(text: str) -> dict[str, str]:
    """``name=token, name="quoted \\" string"`` -> dict with lower-cased names, unquoted values."""
    out: dict[str, str] = {}
    i, n = 0, len(text)
    while i < n:
        while i < n and text[i] in " \t,":
            i += 1
        if i >= n:
            break
        eq = text.find("=", i)
        if eq < 0:
            raise DigestError(f"auth-param without '=' at {text[i:i + 20]!r}")
        name = text[i:eq].strip().lower()
        if not name or any(c in name for c in ' \t",'):
            raise DigestError(f"invalid auth-param name {name!r}")
        i = eq + 1
        while i < n and text[i] in " \t":
            i += 1
        if i < n and text[i] == '"':
            chars: list[str] = []
            i += 1
            while i < n and text[i] != '"':
                if text[i] == "\\" and i + 1 < n:
                    i += 1
                chars.append(text[i])
                i += 1
            if i >= n:
                raise DigestError(f"unterminated quoted value for {name!r}")
            i += 1
            value = "".join(chars)
        else:
            comma = text.find(",", i)
            end = n if comma < 0 else comma
            value = text[i:end].strip()
            i = end
        while i < n and text[i] in " \t":
            i += 1
        if i < n and text[i] != ",":
            raise DigestError(f"junk after auth-param {name!r}")
        out[name] = value
    return out


def _split_scheme(header_value: str) -> tuple[str, str]:
    scheme, _, rest = header_value.strip().partition(" ")
    return scheme, rest


def parse_challenge(header_value: str) -> Challenge:
    """Parse one ``WWW-Authenticate``/``Proxy-Authenticate`` value (Digest only)."""
    scheme, rest = _split_scheme(header_value)
    if scheme.lower() != "digest":
        raise DigestError(f"unsupported auth scheme {scheme!r}")
    p = parse_auth_params(rest)
    for required in ("realm", "nonce"):
        if required not in p:
            raise DigestError(f"challenge missing {required}")
    qop = tuple(q.strip() for q in p.get("qop", "").split(",") if q.strip())
    return Challenge(
        realm=p["realm"],
        nonce=p["nonce"],
        algorithm=_canonical_algorithm(p.get("algorithm", "MD5")),
        qop=qop,
        opaque=p.get("opaque"),
        stale=p.get("stale", "").lower() == "true",
        params=p,
    )


def _canonical_algorithm(name: str) -> str:
    for alg in SUPPORTED_ALGORITHMS:
        if alg.lower() == name.lower():
            return alg
    return name


def choose_challenge(header_values: Iterable[str]) -> Challenge:
    """The strongest Digest challenge we support among several (RFC 8760 §2.4)."""
    best: Challenge | None = None
    for value in header_values:
        try:
            ch = parse_challenge(value)
        except DigestError:
            continue
        if ch.algorithm not in SUPPORTED_ALGORITHMS:
            continue
        if ch.qop and "auth" not in ch.qop:
            continue
        if best is None or (SUPPORTED_ALGORITHMS.index(ch.algorithm)
                            < SUPPORTED_ALGORITHMS.index(best.algorithm)):
            best = ch
    if best is None:
        raise DigestError("no supported Digest challenge (need MD5/SHA-256 with qop auth)")
    return best


def _digest(algorithm: str, method: str, uri: str, *, username: str, password: str, realm: str,
            nonce: str, cnonce: str | None, nc: str | None, qop: str | None) -> str:
    base = algorithm.removesuffix("-sess")
    h = _HASHES.get(base)
    if h is None:
        raise DigestError(f"unsupported algorithm {algorithm!r}")
    ha1 = h(f"{username}:{realm}:{password}".encode())
    if algorithm.endswith("-sess"):
        ha1 = h(f"{ha1}:{nonce}:{cnonce}".encode())
    ha2 = h(f"{method}:{uri}".encode())
    if qop:
        return h(f"{ha1}:{nonce}:{nc}:{cnonce}:{qop}:{ha2}".encode())
    return h(f"{ha1}:{nonce}:{ha2}".encode())


def _q(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def build_authorization(
    challenge: Challenge, method: str, uri: str, username: str, password: str, *,
    cnonce: str, nc: int = 1,
) -> str:
    """The ``Authorization``/``Proxy-Authorization`` value answering ``challenge``.

    ``cnonce`` is passed in (not generated) so the function is deterministic and testable.
    """
    qop = "auth" if "auth" in challenge.qop else None
    if challenge.qop and qop is None:
        raise DigestError(f"challenge offers only qop={','.join(challenge.qop)}; need auth")
    nc_text = f"{nc:08x}"
    response = _digest(challenge.algorithm, method, uri, username=username, password=password,
                       realm=challenge.realm, nonce=challenge.nonce,
                       cnonce=cnonce if qop else None, nc=nc_text if qop else None, qop=qop)
    parts = [
        f"username={_q(username)}", f"realm={_q(challenge.realm)}", f"uri={_q(uri)}",
        f"algorithm={challenge.algorithm}", f"nonce={_q(challenge.nonce)}",
    ]
    if qop:
        parts += [f"nc={nc_text}", f"cnonce={_q(cnonce)}", f"qop={qop}"]
    parts.append(f"response={_q(response)}")
    if challenge.opaque is not None:
        parts.append(f"opaque={_q(challenge.opaque)}")
    return "Digest " + ", ".join(parts)


def _nonce_mac(secret: bytes, stamp: bytes, realm: str) -> bytes:
    return hmac.new(secret, stamp + realm.encode(), hashlib.sha256).digest()[:_NONCE_MAC_BYTES]


def make_nonce(realm: str, nonce_secret: bytes, now: float) -> str:
    stamp = struct.pack(">Q", max(0, int(now)))
    raw = stamp + _nonce_mac(nonce_secret, stamp, realm)
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _nonce_age(nonce: str, realm: str, nonce_secret: bytes, now: float) -> float | None:
    """Seconds since the nonce was issued, or None when it is not one of ours."""
    try:
        raw = base64.urlsafe_b64decode(nonce + "=" * (-len(nonce) % 4))
    except (ValueError, TypeError):
        return None
    if len(raw) != 8 + _NONCE_MAC_BYTES:
        return None
    stamp, mac = raw[:8], raw[8:]
    if not hmac.compare_digest(mac, _nonce_mac(nonce_secret, stamp, realm)):
        return None
    return now - struct.unpack(">Q", stamp)[0]


def make_challenge(realm: str, *, algorithm: str = "MD5", nonce_secret: bytes, now: float,
                   stale: bool = False, opaque: str | None = None) -> str:
    """A ``WWW-Authenticate`` value with a stateless, expiring nonce."""
    algorithm = _canonical_algorithm(algorithm)
    if algorithm not in SUPPORTED_ALGORITHMS:
        raise DigestError(f"unsupported algorithm {algorithm!r}")
    parts = [f"realm={_q(realm)}", f"nonce={_q(make_nonce(realm, nonce_secret, now))}",
             f"algorithm={algorithm}", 'qop="auth"']
    if opaque is not None:
        parts.append(f"opaque={_q(opaque)}")
    if stale:
        parts.append("stale=true")
    return "Digest " + ", ".join(parts)


def verify_authorization(  # noqa: PLR0917 - the security layer calls it positionally
    header_value: str,
    method: str,
    password_lookup: Callable[[str], str | None],
    realm: str,
    nonce_secret: bytes,
    now: float,
    max_age_s: float,
) -> AuthResult:
    """Check credentials against our nonce and the user's password; never raises on bad input.

    A correct response on an expired nonce yields ``stale=True`` so the server re-challenges with
    ``stale=true`` instead of treating the user as wrong (RFC 7616 §3.3).
    """
    scheme, rest = _split_scheme(header_value)
    if scheme.lower() != "digest":
        return AuthResult(False, reason=f"unsupported scheme {scheme!r}")
    try:
        p = parse_auth_params(rest)
    except DigestError as exc:
        return AuthResult(False, reason=str(exc))
    for required in ("username", "realm", "nonce", "uri", "response"):
        if required not in p:
            return AuthResult(False, reason=f"credentials missing {required}")
    username = p["username"]
    if p["realm"] != realm:
        return AuthResult(False, username, reason=f"wrong realm {p['realm']!r}")
    algorithm = _canonical_algorithm(p.get("algorithm", "MD5"))
    if algorithm not in SUPPORTED_ALGORITHMS:
        return AuthResult(False, username, reason=f"unsupported algorithm {algorithm!r}")
    qop = p.get("qop")
    if qop is not None and qop != "auth":
        return AuthResult(False, username, reason=f"unsupported qop {qop!r}")
    if qop and ("nc" not in p or "cnonce" not in p):
        return AuthResult(False, username, reason="qop=auth without nc/cnonce")
    age = _nonce_age(p["nonce"], realm, nonce_secret, now)
    if age is None or age < -1:
        return AuthResult(False, username, reason="nonce not issued by us")
    password = password_lookup(username)
    if password is None:
        return AuthResult(False, username, reason="unknown user")
    expected = _digest(algorithm, method, p["uri"], username=username, password=password,
                       realm=realm, nonce=p["nonce"], cnonce=p.get("cnonce"), nc=p.get("nc"),
                       qop=qop)
    # bytes, not str: compare_digest raises TypeError on non-ASCII str, and this is peer input
    given = p["response"].lower().encode("utf-8", "surrogateescape")
    if not hmac.compare_digest(expected.encode(), given):
        return AuthResult(False, username, reason="wrong password")
    if age > max_age_s:
        return AuthResult(False, username, stale=True, reason="nonce expired")
    return AuthResult(True, username)
