"""PASSporT (RFC 8225) with SHAKEN (RFC 8588) and Rich Call Data (RFC 9795): signing, the SIP
Identity header (RFC 8224), Call-Info for RCD (RFC 9796), and verification. Pure apart from the
ECDSA operations; time is passed in.

A PASSporT is a compact JWS signed with ES256: header ``{"alg":"ES256","ppt":..,"typ":
"passport","x5u":URL}``; claims ``orig.tn``, ``dest.tn`` (E.164 digits, no ``+``), ``iat``
and, for branded calls, ``rcd`` (``nam`` the name shown; optional ``icn`` a logo URL and
``crn`` a call reason) with ``rcdi``: for every URL in ``rcd`` a JSON pointer to it and the
digest of what it points to (``"/icn": "sha256-<base64>"``), so a verifier who fetches the logo
knows it is the one the signer saw. JSON objects are serialised with sorted keys and no
whitespace (RFC 8225 §9), so the same claims always give the same bytes.

Verification gives a ``verstat`` (3GPP TS 24.229): ``TN-Validation-Passed``,
``TN-Validation-Failed`` or ``No-TN-Validation``, with the reason and the verified name.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import (
    decode_dss_signature,
    encode_dss_signature,
)
from cryptography.x509 import Certificate

from campaigns.certs import ChainError, chain_window, verify_chain
from core.call import VERSTAT_FAILED, VERSTAT_NONE, VERSTAT_PASSED

ALG = "ES256"
ES256_SIGNATURE_BYTES = 64
MAX_AGE_S = 60.0  # RFC 8224 §6.2: "iat" older than this is stale
PASSED, FAILED, NO_VALIDATION = VERSTAT_PASSED, VERSTAT_FAILED, VERSTAT_NONE
# RFC 8224 §6.2.2: the response a verifier that refuses the call sends, per kind of failure
STALE_DATE = 403  # "iat" outside the freshness window
BAD_IDENTITY_INFO = 436  # the x5u / info URL cannot be dereferenced
UNSUPPORTED_CREDENTIAL = 437  # the certificate is not trusted (chain, validity)
INVALID_IDENTITY_HEADER = 438  # malformed, bad signature, claims that do not match the call
RESPONSE_REASONS = {STALE_DATE: "Stale Date", BAD_IDENTITY_INFO: "Bad Identity Info",
                    UNSUPPORTED_CREDENTIAL: "Unsupported Credential",
                    INVALID_IDENTITY_HEADER: "Invalid Identity Header"}
DIGEST_ALGS = {"sha256": hashlib.sha256, "sha384": hashlib.sha384, "sha512": hashlib.sha512}
_INFO = re.compile(r";\s*info\s*=\s*<([^>]*)>", re.I)
_DIGIT = re.compile(r"[0-9]")
_PARAM = re.compile(r";\s*(alg|ppt)\s*=\s*\"?([A-Za-z0-9._-]+)\"?", re.I)


class PassportError(ValueError):
    pass


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(text: str) -> bytes:
    if not re.fullmatch(r"[A-Za-z0-9_-]*", text):
        raise PassportError("not base64url")
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def canonical(obj: Any) -> bytes:
    """RFC 8225 §9 / RFC 8785-style: sorted keys, no whitespace, UTF-8."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def tn(number: str) -> str:
    """A telephone number as PASSporT carries it: digits only (``+8613800138000`` ->
    ``8613800138000``)."""
    digits = re.sub(r"[^0-9]", "", number)
    if not digits:
        raise PassportError(f"tn: {number!r} has no digits")
    return digits


def integrity(content: bytes, alg: str = "sha256") -> str:
    """``sha256-<base64>``: the digest form of ``rcdi`` values (SRI style)."""
    return f"{alg}-" + base64.b64encode(DIGEST_ALGS[alg](content).digest()).decode("ascii")


def rich_call_data(name: str, *, logo_url: str | None = None, call_reason: str | None = None,
                   logo_bytes: bytes | None = None) -> tuple[dict[str, Any], dict[str, str]]:
    """(rcd, rcdi) for a branded call."""
    rcd: dict[str, Any] = {"nam": name}
    rcdi: dict[str, str] = {}
    if logo_url:
        rcd["icn"] = logo_url
        if logo_bytes is not None:
            rcdi["/icn"] = integrity(logo_bytes)
    if call_reason:
        rcd["crn"] = call_reason
    return rcd, rcdi


def sign(key: ec.EllipticCurvePrivateKey, *, x5u: str, orig: str, dest: Sequence[str],
         iat: int, ppt: str = "rcd", rcd: Mapping[str, Any] | None = None,
         rcdi: Mapping[str, str] | None = None, attest: str | None = None,
         origid: str | None = None) -> str:
    header = {"alg": ALG, "ppt": ppt, "typ": "passport", "x5u": x5u}
    claims: dict[str, Any] = {"dest": {"tn": [tn(d) for d in dest]}, "iat": int(iat),
                              "orig": {"tn": tn(orig)}}
    if ppt == "shaken":
        claims["attest"] = attest or "A"
        claims["origid"] = origid or "00000000-0000-0000-0000-000000000000"
    if rcd is not None:
        claims["rcd"] = dict(rcd)
    if rcdi:
        claims["rcdi"] = dict(rcdi)
    signing_input = f"{b64url(canonical(header))}.{b64url(canonical(claims))}"
    der = key.sign(signing_input.encode("ascii"), ec.ECDSA(hashes.SHA256()))
    r, s = decode_dss_signature(der)
    return f"{signing_input}.{b64url(r.to_bytes(32, 'big') + s.to_bytes(32, 'big'))}"


def identity_header(passport: str, info_url: str, ppt: str = "rcd") -> tuple[str, str]:
    """RFC 8224 §4.1: ``Identity: <jws>;info=<url>;alg=ES256;ppt=rcd``."""
    return "Identity", f"{passport};info=<{info_url}>;alg={ALG};ppt={ppt}"


def call_info_headers(rcd: Mapping[str, Any]) -> list[tuple[str, str]]:
    """RFC 9796: the logo as ``purpose=icon`` and a jCard (name, logo) as ``purpose=jcard``
    with the ``call-reason`` parameter."""
    card: list[Any] = ["vcard", [["version", {}, "text", "4.0"],
                                 ["fn", {}, "text", str(rcd.get("nam", ""))]]]
    if rcd.get("icn"):
        card[1].append(["logo", {}, "uri", str(rcd["icn"])])
    data = base64.b64encode(canonical(card)).decode("ascii")
    value = f"<data:application/json;base64,{data}>;purpose=jcard"
    if rcd.get("crn"):
        reason = str(rcd["crn"]).replace("\\", "\\\\").replace('"', '\\"')
        value += f';call-reason="{reason}"'
    out = [("Call-Info", value)]
    if rcd.get("icn"):
        out.insert(0, ("Call-Info", f"<{rcd['icn']}>;purpose=icon"))
    return out


@dataclass(frozen=True, slots=True)
class ParsedIdentity:
    passport: str
    info: str
    alg: str
    ppt: str


def parse_identity(value: str) -> ParsedIdentity:
    value = value.strip()
    token, _, rest = value.partition(";")
    token = token.strip().strip("<>")
    if token.count(".") != 2:
        raise PassportError("Identity: not a compact JWS (three parts)")
    info = _INFO.search(";" + rest)
    params = {k.lower(): v for k, v in _PARAM.findall(";" + rest)}
    return ParsedIdentity(token, info.group(1) if info else "", params.get("alg", ALG),
                          params.get("ppt", "shaken"))


@dataclass(slots=True)
class Verification:
    verstat: str
    reason: str = ""
    sip_status: int = INVALID_IDENTITY_HEADER  # what refusing the call would answer
    name: str | None = None  # rcd "nam", verified
    call_reason: str | None = None
    logo: str | None = None
    attest: str | None = None
    ppt: str | None = None
    claims: dict[str, Any] = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        return self.verstat == PASSED

    def as_flow_value(self) -> dict[str, Any]:
        """What flows read as ``identity``."""
        return {"verstat": self.verstat, "reason": self.reason, "name": self.name or "",
                "call_reason": self.call_reason or "", "logo": self.logo or "",
                "attest": self.attest or "", "ppt": self.ppt or ""}


@dataclass(frozen=True, slots=True)
class TrustStore:
    """Trust anchors and the certificates a PASSporT's ``x5u`` may name, all loaded from
    config: nothing is fetched (see docs/campaigns.md, "Verifying inbound calls")."""

    anchors: list[Certificate]
    chains: dict[str, list[Certificate]]  # x5u URL -> chain (leaf first)
    max_age_s: float = MAX_AGE_S
    contents: dict[str, bytes] = field(default_factory=dict)  # URL -> bytes (rcdi checks)
    # x5u -> (from, until): the chain's signatures checked out and every certificate in it
    # is valid in this window, so a call inside it needs no chain work (one ECDSA verify less
    # per hop and call)
    _checked: dict[str, tuple[datetime, datetime]] = field(default_factory=dict)

    def check_chain(self, x5u: str, chain: list[Certificate], at: datetime) -> None:
        """Raises :class:`ChainError` unless ``chain`` leads to an anchor and is valid at
        ``at``; remembers a chain that did, for as long as all of it stays valid."""
        window = self._checked.get(x5u)
        if window is not None and window[0] <= at <= window[1]:
            return
        verify_chain(chain, self.anchors, at)
        self._checked[x5u] = chain_window(chain, self.anchors)


def _pointer(doc: Any, pointer: str) -> Any:
    """RFC 6901."""
    if pointer == "":
        return doc
    if not pointer.startswith("/"):
        raise KeyError(pointer)
    for raw in pointer[1:].split("/"):
        part = raw.replace("~1", "/").replace("~0", "~")
        if isinstance(doc, list):
            doc = doc[int(part)]
        elif isinstance(doc, dict):
            doc = doc[part]
        else:
            raise KeyError(pointer)
    return doc


def _urls(doc: Any, path: str = "") -> list[str]:
    """JSON pointers of every URL-valued string in ``doc``."""
    if isinstance(doc, str):
        return [path] if re.match(r"^(https?|data):", doc) else []
    if isinstance(doc, dict):
        return [p for k, v in doc.items() for p in _urls(v, f"{path}/{k}")]
    if isinstance(doc, list):
        return [p for i, v in enumerate(doc) for p in _urls(v, f"{path}/{i}")]
    return []


def check_rcd(claims: Mapping[str, Any], contents: Mapping[str, bytes]) -> None:
    """RFC 9795's rules for ``rcd`` and ``rcdi``; raises :class:`PassportError`."""
    rcd = claims.get("rcd")
    if not isinstance(rcd, dict):
        raise PassportError("rcd: missing or not an object")
    if not isinstance(rcd.get("nam"), str):
        raise PassportError("rcd.nam: missing or not a string")
    for key in ("icn", "crn", "jcl"):
        if key in rcd and not isinstance(rcd[key], str):
            raise PassportError(f"rcd.{key}: not a string")
    rcdi = claims.get("rcdi")
    if rcdi is None:
        return
    if not isinstance(rcdi, dict):
        raise PassportError("rcdi: not an object")
    for pointer, digest in rcdi.items():
        try:
            target = _pointer(rcd, pointer)
        except (KeyError, IndexError, ValueError) as e:
            raise PassportError(f"rcdi: {pointer!r} points at nothing in rcd") from e
        alg, _, value = str(digest).partition("-")
        if alg not in DIGEST_ALGS or not value:
            raise PassportError(f"rcdi[{pointer}]: {digest!r} is not sha256-/sha384-/sha512-")
        if isinstance(target, dict | list):  # an embedded object (jcd): its canonical JSON
            if integrity(canonical(target), alg) != digest:
                raise PassportError(f"rcdi[{pointer}]: digest does not match the object")
        elif (isinstance(target, str) and target in contents
              and integrity(contents[target], alg) != digest):
                raise PassportError(f"rcdi[{pointer}]: {target} does not match its digest")
    missing = [p for p in _urls(rcd) if p not in rcdi]
    if missing:
        raise PassportError(f"rcdi: no digest for {', '.join(missing)}")


def verify(value: str, *, from_number: str, to_number: str, now: float,
           trust: TrustStore, asserted: Sequence[str] = ()) -> Verification:
    """Check one Identity header value against the call's From and To numbers (``orig``
    may also be a P-Asserted-Identity number, ``asserted``, as SHAKEN compares it to PAI).
    ``now`` is wall-clock epoch seconds (the caller's clock): ``iat`` freshness and the
    certificates' validity are judged at it."""
    try:
        parsed = parse_identity(value)
        h64, c64, s64 = parsed.passport.split(".")
        header = json.loads(b64url_decode(h64))
        claims = json.loads(b64url_decode(c64))
        signature = b64url_decode(s64)
    except (PassportError, ValueError) as e:
        return Verification(FAILED, f"malformed Identity header: {e}")
    if not isinstance(header, dict) or not isinstance(claims, dict):
        return Verification(FAILED, "malformed PASSporT: header and claims must be objects")
    ppt = header.get("ppt")
    result = Verification(FAILED, ppt=ppt, claims=claims)
    if header.get("alg") != ALG or parsed.alg.upper() != ALG:
        result.reason = f"alg {header.get('alg')!r}: only ES256 is accepted"
        return result
    if header.get("typ") != "passport":
        result.reason = "typ is not passport"
        return result
    if ppt != parsed.ppt:
        result.reason = f"ppt {ppt!r} does not match the header's ppt={parsed.ppt}"
        return result
    x5u = header.get("x5u")
    if not isinstance(x5u, str) or (parsed.info and parsed.info != x5u):
        result.reason = "x5u missing or not the Identity header's info URL"
        return result
    chain = trust.chains.get(x5u)
    if chain is None:
        result.reason = f"certificate {x5u} is not available (not in [callerid].certs)"
        result.sip_status = BAD_IDENTITY_INFO
        return result
    try:
        trust.check_chain(x5u, chain, datetime.fromtimestamp(now, UTC))
    except ChainError as e:
        result.reason = f"certificate chain: {e}"
        result.sip_status = UNSUPPORTED_CREDENTIAL
        return result
    if len(signature) != ES256_SIGNATURE_BYTES:
        result.reason = "signature is not 64 bytes (ES256 r||s)"
        return result
    der = encode_dss_signature(int.from_bytes(signature[:32], "big"),
                               int.from_bytes(signature[32:], "big"))
    public = chain[0].public_key()
    if not isinstance(public, ec.EllipticCurvePublicKey):
        result.reason = "the certificate's key is not an EC key"
        result.sip_status = UNSUPPORTED_CREDENTIAL
        return result
    try:
        public.verify(der, f"{h64}.{c64}".encode("ascii"), ec.ECDSA(hashes.SHA256()))
    except InvalidSignature:
        result.reason = "signature does not verify"
        return result
    iat = claims.get("iat")
    if not isinstance(iat, int | float) or abs(now - float(iat)) > trust.max_age_s:
        result.reason = f"iat {iat} is not within {trust.max_age_s:g} s of now (stale or replayed)"
        result.sip_status = STALE_DATE
        return result
    orig = (claims.get("orig") or {}).get("tn") if isinstance(claims.get("orig"), dict) else None
    dest = (claims.get("dest") or {}).get("tn") if isinstance(claims.get("dest"), dict) else None
    dests = dest if isinstance(dest, list) else [dest]
    callers = list(dict.fromkeys(tn(n) for n in (from_number, *asserted) if _DIGIT.search(n)))
    if orig not in callers:
        shown = " or ".join(callers) or f"(From {from_number!r} has no number)"
        result.reason = f"orig.tn {orig} is not the calling number {shown}"
        return result
    if not _DIGIT.search(to_number) or tn(to_number) not in dests:
        result.reason = f"dest.tn {dests} does not hold the called number {to_number}"
        return result
    if ppt == "rcd" or "rcd" in claims:
        try:
            check_rcd(claims, trust.contents)
        except PassportError as e:
            result.reason = str(e)
            return result
        rcd = claims["rcd"]
        result.name, result.call_reason, result.logo = rcd["nam"], rcd.get("crn"), rcd.get("icn")
    result.attest = claims.get("attest")
    result.verstat, result.reason = PASSED, "verified"
    return result


def verify_headers(values: Sequence[str], **kwargs: Any) -> Verification:
    """Several Identity headers (SHAKEN and RCD side by side): the first that passes, else
    the last failure; none at all is ``No-TN-Validation``."""
    if not values:
        return Verification(NO_VALIDATION, "no Identity header")
    last = Verification(FAILED, "no Identity header verified")
    best: Verification | None = None
    for v in values:
        r = verify(v, **kwargs)
        if r.passed and (best is None or (r.name and not best.name)):
            best = r
        last = r
    return best or last
