"""Branded caller ID on campaign calls, and Identity checks on incoming ones.

:class:`Brander` signs a PASSporT per call (the pool number as ``orig``, the contact as
``dest``, the campaign's name, logo and call reason as Rich Call Data) and returns the
``Identity`` and ``Call-Info`` headers the dialler adds to the INVITE. :class:`IdentityChecker`
turns an incoming INVITE's Identity headers into a :class:`campaigns.passport.Verification`
(flows read it as ``identity.verstat``, ``identity.name`` ...).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric import ec

from campaigns.certs import load_chain, load_key
from campaigns.passport import (
    FAILED,
    RESPONSE_REASONS,
    TrustStore,
    Verification,
    call_info_headers,
    identity_header,
    rich_call_data,
    sign,
    verify_headers,
)
from engine.identity import IdentityEvidence, IdentityVerdict

log = logging.getLogger("ivr.callerid")


class Brander:
    def __init__(self, key: ec.EllipticCurvePrivateKey, cert_url: str, *, ppt: str = "rcd",
                 attest: str = "A", wall: Callable[[], float] = time.time) -> None:
        if not cert_url:
            raise ValueError("callerid.cert_url: needed to sign (verifiers fetch it)")
        self.key = key
        self.cert_url = cert_url
        self.ppt = ppt
        self.attest = attest
        self.wall = wall
        self._logos: dict[str, bytes | None] = {}

    @classmethod
    def from_files(cls, key_path: str, cert_url: str, **kwargs: Any) -> Brander:
        return cls(load_key(key_path), cert_url, **kwargs)

    def _logo(self, path: str | None) -> bytes | None:
        if not path:
            return None
        if path not in self._logos:
            self._logos[path] = Path(path).read_bytes()
        return self._logos[path]

    def headers(self, orig: str, dest: str, *, name: str, logo_url: str | None = None,
                logo_file: str | None = None, call_reason: str | None = None
                ) -> list[tuple[str, str]]:
        rcd, rcdi = rich_call_data(name, logo_url=logo_url, call_reason=call_reason,
                                   logo_bytes=self._logo(logo_file))
        token = sign(self.key, x5u=self.cert_url, orig=orig, dest=[dest],
                     iat=int(self.wall()), ppt=self.ppt, rcd=rcd, rcdi=rcdi,
                     attest=self.attest)
        return [identity_header(token, self.cert_url, self.ppt), *call_info_headers(rcd)]

    def __call__(self, campaign: Any, orig: str, dest: str) -> list[tuple[str, str]]:
        """The runner's hook: the campaign's branding for one call."""
        b = campaign.spec.branding
        name = b.name or campaign.spec.caller_id.display_name or campaign.name
        return self.headers(orig, dest, name=name, logo_url=b.logo_url, logo_file=b.logo_file,
                            call_reason=b.call_reason)


class IdentityChecker:
    """Inbound verification (:class:`engine.identity.IdentityVerifier`) with the configured
    trust anchors and certificates.

    Runs on the event loop: the certificates are loaded once at start (:meth:`from_config`,
    in a worker thread) and a chain is checked once per URL while it stays valid, so a call
    costs one JSON parse and one ES256 verify, ~0.3 ms (docs/benchmarks.md) - less than
    handing it to a thread would. ``reject_invalid``: refuse an INVITE whose Identity fails
    with RFC 8224's response for the failure (438 Invalid Identity Header, 436, 437, 403 Stale
    Date) instead of letting the call go on unverified.
    """

    def __init__(self, trust: TrustStore, wall: Callable[[], float] = time.time, *,
                 reject_invalid: bool = False) -> None:
        self.trust = trust
        self.wall = wall
        self.reject_invalid = reject_invalid

    @classmethod
    def from_config(cls, anchors: Sequence[str], certs: dict[str, str], max_age_s: float,
                    wall: Callable[[], float] = time.time, *,
                    reject_invalid: bool = False) -> IdentityChecker:
        """Blocking (reads files). A file that cannot be read is logged and left out: calls
        signed with it fail verification with the reason, every other call is verified."""
        anchor_certs = []
        for path in anchors:
            try:
                anchor_certs.extend(load_chain(path))
            except (OSError, ValueError) as e:
                log.error("callerid.trust_anchors: %s: %s", path, e)
        chains = {}
        for url, path in certs.items():
            try:
                chains[url] = load_chain(path)
            except (OSError, ValueError) as e:
                log.error("callerid.certs[%r]: %s: %s", url, path, e)
        if not anchor_certs:
            log.warning("callerid.verify_inbound: no trust anchor loaded: no inbound Identity "
                        "can pass")
        return cls(TrustStore(anchor_certs, chains, max_age_s), wall,
                   reject_invalid=reject_invalid)

    def check(self, identity_values: Sequence[str], from_number: str, to_number: str,
              asserted: Sequence[str] = ()) -> Verification:
        return verify_headers(list(identity_values), from_number=from_number,
                              to_number=to_number, asserted=asserted, now=self.wall(),
                              trust=self.trust)

    async def verify(self, evidence: IdentityEvidence) -> IdentityVerdict:
        v = self.check(evidence.identity, evidence.from_number, evidence.to_number,
                       evidence.asserted)
        status = None
        if self.reject_invalid and v.verstat == FAILED:
            status = (v.sip_status, RESPONSE_REASONS.get(v.sip_status, "Forbidden"))
        return IdentityVerdict(v.verstat, v.reason, v.as_flow_value(), status)
