"""The campaigns' dialler interface on the Asterisk backend.

Campaigns place calls through one shape (``originate(target, app, *, from_user, from_display,
headers, ring_timeout_s, tenant) -> CallRecord``), which the engine's SIP stack implements over
:meth:`engine.controller.CallController.originate`. :class:`AsteriskDialler` is the same shape
over AMI ``Originate``, so a campaign runs unchanged on an operator's Asterisk: the From user
and display name become Asterisk's caller ID, the extra SIP headers (P-Asserted-Identity,
Privacy, Identity, Call-Info) ride on the INVITE Asterisk's PJSIP sends, and the record, with
its disposition in the SIP vocabulary, is the one the SIP backend would return.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from engine.ami.originate import CallApp
from engine.cdr import CallRecord


class AsteriskOriginate(Protocol):
    """What the dialler uses of :class:`engine.ami.controller.AsteriskController`."""

    async def originate(self, target: str, app: CallApp, *, caller_id: str | None = None,
                        variables: dict[str, str] | None = None, ring_timeout_s: float = 60.0,
                        tenant: str | None = None, headers: Sequence[tuple[str, str]] = (),
                        call_id: str | None = None) -> CallRecord: ...


def caller_id_of(from_user: str, from_display: str | None) -> str:
    """Asterisk's ``CallerID`` (``"Name" <number>``) from a From user and display name; a
    quote or backslash in the name is escaped, as Asterisk's caller ID parser expects."""
    if not from_display:
        return from_user
    name = from_display.replace("\\", "\\\\").replace('"', '\\"')
    return f'"{name}" <{from_user}>'


class AsteriskDialler:
    """The Asterisk backend as a campaign dialler (the SIP dialler's arguments, mapped)."""

    def __init__(self, controller: AsteriskOriginate) -> None:
        self.controller = controller

    async def originate(self, target: str, app: CallApp, *, from_user: str,
                        from_display: str | None, headers: Sequence[tuple[str, str]],
                        ring_timeout_s: float, tenant: str | None,
                        variables: dict[str, str] | None = None) -> CallRecord:
        return await self.controller.originate(
            target, app, caller_id=caller_id_of(from_user, from_display), variables=variables,
            ring_timeout_s=ring_timeout_s, tenant=tenant, headers=headers)
