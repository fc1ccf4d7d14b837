"""The one dialler interface campaigns place calls through, and its SIP implementation.

A backend places one call and runs an application on it once answered; it returns the call's
record with the disposition in the engine's vocabulary (:mod:`engine.dispositions`: answered,
busy, no_answer, rejected, failed, with the cause and SIP status). The engine's own SIP stack
implements it here over :meth:`engine.controller.CallController.originate`; the Asterisk
backend (``engine/ami/``) implements the same shape. Nothing else of a backend is used.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Protocol

from core.call import Call
from engine.cdr import CallRecord

CallApp = Callable[[Call], Awaitable[None]]


class Dialler(Protocol):
    """Places calls for campaigns.

    ``target``: a SIP URI (``sip:+8613800138000@trunk``) or whatever the backend dials.
    ``app``: runs on the answered call (a flow); never called for an unanswered one.
    ``from_user`` / ``from_display``: the From header's user part and display name (the caller
    ID the callee sees). ``headers``: extra INVITE headers (P-Asserted-Identity, Privacy,
    Identity, Call-Info). ``ring_timeout_s``: CANCEL after this long unanswered (``no_answer``).
    ``tenant``: recorded with the call.
    Returns the finished call's record (after ``app`` returned and the call ended).
    """

    async def originate(self, target: str, app: CallApp, *, from_user: str,
                        from_display: str | None, headers: Sequence[tuple[str, str]],
                        ring_timeout_s: float, tenant: str | None) -> CallRecord: ...


class ControllerDialler:
    """The engine's SIP stack as a :class:`Dialler`."""

    def __init__(self, controller: Any) -> None:
        self.controller = controller  # engine.controller.CallController

    async def originate(self, target: str, app: CallApp, *, from_user: str,
                        from_display: str | None, headers: Sequence[tuple[str, str]],
                        ring_timeout_s: float, tenant: str | None) -> CallRecord:
        record: CallRecord = await self.controller.originate(
            target, app, from_user=from_user, from_display=from_display,
            headers=list(headers), ring_timeout_s=ring_timeout_s, tenant=tenant)
        return record
