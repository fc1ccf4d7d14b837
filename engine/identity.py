"""Inbound caller identity (RFC 8224 STIR): what the controller hands a verifier from an INVITE,
and what it does with the verdict.

The verifier itself (PASSporT signatures, certificates, Rich Call Data) lives in
:mod:`campaigns.passport` and is injected by the composition root, so the engine knows SIP and
nothing of the cryptography. The controller asks once per inbound INVITE that carries or lacks
an Identity header, before it negotiates media; the verdict becomes the call's ``identity``
(flows read ``identity.verstat``, ``identity.name`` ...), an ``identity`` entry in the call's
trace (and so in its record) and a ``call.identity`` bus event. A verdict with a ``status``
refuses the call with that response (RFC 8224 §6.2.2: 438 Invalid Identity Header and its
siblings); without one the call goes on, verified or not.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from core.call import UNVERIFIED_IDENTITY, VERSTAT_FAILED
from engine.sip.grammar import SipParseError
from engine.sip.message import SipRequest
from engine.sip.uri import NameAddr, SipUri

log = logging.getLogger("ivr.identity")

MAX_IDENTITY_HEADERS = 8  # more than SHAKEN + RCD + a few: the rest are not looked at



@dataclass(frozen=True, slots=True)
class IdentityEvidence:
    """What a verifier needs from the INVITE, as plain text."""

    identity: tuple[str, ...]  # every Identity header field value, in order
    from_number: str  # the From URI's user part (or a tel: URI's number)
    to_number: str  # the To URI's
    asserted: tuple[str, ...] = ()  # P-Asserted-Identity numbers (SHAKEN compares orig to it)


@dataclass(frozen=True, slots=True)
class IdentityVerdict:
    verstat: str  # core.call.VERSTAT_*
    reason: str  # why, for the trace ("verified", "signature does not verify", ...)
    values: Mapping[str, Any] = field(default_factory=lambda: dict(UNVERIFIED_IDENTITY))
    status: tuple[int, str] | None = None  # refuse the call with this response (policy)

    @classmethod
    def unverified(cls, verstat: str, reason: str) -> IdentityVerdict:
        """A verdict without Rich Call Data (the flow sees the same verstat and reason)."""
        return cls(verstat, reason, {**UNVERIFIED_IDENTITY, "verstat": verstat, "reason": reason})

    def trace_data(self) -> dict[str, Any]:
        data = {k: v for k, v in self.values.items() if v}
        data.update(verstat=self.verstat, reason=self.reason)
        if self.status is not None:
            data["rejected"] = self.status[0]
        return data


class IdentityVerifier(Protocol):
    """Checks an INVITE's Identity headers (``campaigns.branding.IdentityChecker``)."""

    async def verify(self, evidence: IdentityEvidence) -> IdentityVerdict: ...


def number_of(uri: SipUri) -> str:
    """The telephone number (or user) a URI names: a tel: URI's number, a sip: URI's user."""
    return uri.host if uri.scheme == "tel" else (uri.user or "")


def evidence_of(invite: SipRequest) -> IdentityEvidence:
    """The Identity evidence of an INVITE. From and To were parsed when the INVITE was accepted;
    a P-Asserted-Identity that does not parse is left out (it only widens what ``orig`` may
    match), never an error."""
    headers = invite.headers
    asserted: list[str] = []
    for value in headers.get_all("P-Asserted-Identity"):
        try:
            number = number_of(NameAddr.parse(value).uri)
        except SipParseError:
            log.debug("P-Asserted-Identity %r does not parse: ignored", value[:80])
            continue
        if number:
            asserted.append(number)
    return IdentityEvidence(
        identity=tuple(headers.get_raw_all("Identity")[:MAX_IDENTITY_HEADERS]),
        from_number=number_of(invite.from_.uri), to_number=number_of(invite.to.uri),
        asserted=tuple(asserted))


async def check_identity(verifier: IdentityVerifier, invite: SipRequest) -> IdentityVerdict:
    """The verifier's verdict on ``invite``; a failure of the verifier itself (a bug, a bad
    certificate file) is a failed verification with the reason, never a broken call."""
    try:
        return await verifier.verify(evidence_of(invite))
    except SipParseError as e:
        return IdentityVerdict.unverified(VERSTAT_FAILED, f"INVITE: {e}")
    except Exception as e:
        log.exception("identity verification failed unexpectedly")
        return IdentityVerdict.unverified(VERSTAT_FAILED,
                                          f"verifier error: {type(e).__name__}: {e}")
