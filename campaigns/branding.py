"""Branded caller ID on campaign calls, and Identity checks on incoming ones.

:class:`Brander` signs a PASSporT per call (the pool number as ``orig``, the contact as
``dest``, the campaign's name, logo and call reason as Rich Call Data) and returns the
``Identity`` and ``Call-Info`` headers the dialler adds to the INVITE. :class:`IdentityChecker`
turns an incoming INVITE's Identity headers into a :class:`campaigns.passport.Verification`
(flows read it as ``identity.verstat``, ``identity.name`` ...).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric import ec

from campaigns.certs import load_chain, load_key
from campaigns.passport import (
    TrustStore,
    Verification,
    call_info_headers,
    identity_header,
    rich_call_data,
    sign,
    verify_headers,
)


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
    """Inbound verification with the configured trust anchors and certificates."""

    def __init__(self, trust: TrustStore, wall: Callable[[], float] = time.time) -> None:
        self.trust = trust
        self.wall = wall

    @classmethod
    def from_config(cls, anchors: Sequence[str], certs: dict[str, str], max_age_s: float,
                    wall: Callable[[], float] = time.time) -> IdentityChecker:
        trust = TrustStore([c for path in anchors for c in load_chain(path)],
                           {url: load_chain(path) for url, path in certs.items()}, max_age_s)
        return cls(trust, wall)

    def check(self, identity_values: Sequence[str], from_number: str, to_number: str
              ) -> Verification:
        return verify_headers(list(identity_values), from_number=from_number,
                              to_number=to_number, now=self.wall(), trust=self.trust)
