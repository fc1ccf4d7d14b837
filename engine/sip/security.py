"""Who may start calls here: trusted peer networks, or digest credentials.

An IVR reachable from the internet and answering anyone is toll fraud waiting to happen (an
attacker dials in and transfers out). Requests that create something (INVITE, OPTIONS, REFER,
MESSAGE, ...) outside a dialog must come from a configured trusted network or carry valid digest
credentials (RFC 8760: SHA-256 offered first, MD5 for old peers); anything else is refused with
401 (challenge) when users are configured, else 403. In-dialog requests are authorised by the
dialog they belong to.
"""

from __future__ import annotations

import ipaddress
import secrets
from dataclasses import dataclass, field

from engine.sip import digest
from engine.sip.addr import Address
from engine.sip.message import SipRequest

NONCE_MAX_AGE_S = 300.0


@dataclass(frozen=True, slots=True)
class Verdict:
    allowed: bool
    status: int = 200  # 401 or 403 when refused
    reason: str = ""
    challenges: tuple[str, ...] = ()  # WWW-Authenticate values to send with a 401
    username: str | None = None


@dataclass
class InboundPolicy:
    trusted_networks: list[ipaddress.IPv4Network | ipaddress.IPv6Network]
    users: dict[str, str] = field(default_factory=dict)  # username -> password
    realm: str = "ivr-engine"
    nonce_secret: bytes = field(default_factory=lambda: secrets.token_bytes(32))

    @classmethod
    def from_config(cls, trusted: list[str], users: dict[str, str], realm: str) -> InboundPolicy:
        nets = [ipaddress.ip_network(n, strict=False) for n in trusted]
        return cls(nets, dict(users), realm)

    def is_trusted(self, host: str) -> bool:
        try:
            ip = ipaddress.ip_address(host)
        except ValueError:
            return False
        return any(ip in net for net in self.trusted_networks)

    def check(self, request: SipRequest, source: Address, now: float) -> Verdict:
        if self.is_trusted(source.host):
            return Verdict(True)
        if not self.users:
            return Verdict(False, 403, "Forbidden - untrusted source")
        header = request.headers.get("Authorization")
        if header:
            result = digest.verify_authorization(
                header, request.method, self.users.get, self.realm, self.nonce_secret, now,
                NONCE_MAX_AGE_S,
            )
            if result.ok:
                return Verdict(True, username=result.username)
            if not result.stale:
                return Verdict(False, 403, f"Forbidden - {result.reason}")
        return Verdict(False, 401, "Unauthorized", self._challenges(now))

    def _challenges(self, now: float) -> tuple[str, ...]:
        return tuple(
            digest.make_challenge(self.realm, algorithm=alg, nonce_secret=self.nonce_secret,
                                  now=now)
            for alg in ("SHA-256", "MD5")
        )
