"""The SIP half of a call: an INVITE dialog usage, incoming (UAS) or outgoing (UAC).

Signalling only. The media session and the call state live elsewhere and talk to this object
through :class:`SessionHandler` (re-INVITE offers, INFO, NOTIFY, the far end hanging up).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from engine.sip.addr import Address
from engine.sip.dialog import Dialog, DialogError
from engine.sip.message import SipRequest, SipResponse, make_response, new_tag
from engine.sip.transaction import T1_S, T2_S, TIMEOUT_S, ServerTransaction

log = logging.getLogger("ivr.sip.invite")


@dataclass(frozen=True, slots=True)
class SessionEnd:
    cause: str  # normal, cancelled, rejected, no_ack, timeout, busy, no_answer, error
    side: Literal["caller", "callee", "engine", "system"]
    status: int | None = None  # the SIP status involved, if any


class CallFailed(Exception):
    def __init__(self, status: int, reason: str) -> None:
        super().__init__(f"{status} {reason}")
        self.status = status
        self.reason = reason


class SessionHandler(Protocol):
    def on_reinvite(self, offer: bytes) -> bytes:
        """Return the SDP answer; raise ``ValueError`` to refuse with 488."""
        ...

    def on_info(self, content_type: str, body: bytes) -> int:
        """Return the status to answer with (200, or 415 for a body type we do not take)."""
        ...

    def on_notify(self, request: SipRequest) -> None: ...


class SessionHost(Protocol):
    """What an INVITE session needs from the user agent that owns it, and nothing more."""

    ALLOW: str

    def contact_for(self, dest: Address) -> str: ...

    def register_session(self, session: InviteSession) -> None: ...

    def forget_session(self, session: InviteSession) -> None: ...

    def options_response(self, request: SipRequest) -> SipResponse: ...

    def method_not_allowed(self, request: SipRequest) -> SipResponse: ...

    def retransmit_2xx_until_ack(self, session: InviteSession, response: SipResponse,
                                 dest: Address, cseq: int) -> None: ...

    def spawn(self, coro: Coroutine[Any, Any, None], name: str) -> None:
        """Run ``coro`` in the user agent's task scope (it outlives the session)."""
        ...

    async def request_in_dialog(self, dialog: Dialog, method: str,
                                content_type: str | None = None, body: bytes = b"",
                                extra_headers: list[tuple[str, str]] | None = None,
                                ) -> SipResponse: ...

    async def reinvite(self, session: InviteSession, sdp: bytes) -> SipResponse: ...

    async def send_cancel(self, session: OutgoingInvite) -> None: ...


class InviteSession:
    """One INVITE dialog usage. ``ended`` resolves once, with why and which side ended it."""

    direction: Literal["inbound", "outbound"]

    def __init__(self, ua: SessionHost, invite: SipRequest) -> None:
        self.ua = ua
        self.invite = invite
        self.call_id = invite.call_id
        self.dialog: Dialog | None = None
        self.handler: SessionHandler | None = None
        self.remote_sdp: bytes | None = invite.body or None
        self.ended: asyncio.Future[SessionEnd] = asyncio.get_running_loop().create_future()
        self._bye_sent = False

    @property
    def active(self) -> bool:
        return not self.ended.done()

    def _end(self, end: SessionEnd) -> None:
        if not self.ended.done():
            self.ended.set_result(end)
        if self.dialog is not None:
            self.ua.forget_session(self)

    # -- in-dialog requests from the far end ---------------------------------------------------

    def on_request(self, request: SipRequest, txn: ServerTransaction) -> None:
        assert self.dialog is not None
        try:
            self.dialog.receive_request(request)
        except DialogError as e:
            txn.respond(make_response(request, e.status, e.reason))
            return
        method = request.method
        if method == "BYE":
            txn.respond(make_response(request, 200))
            self._end(SessionEnd("normal", "callee" if self.direction == "outbound" else "caller"))
        elif method == "INVITE":
            self._on_reinvite(request, txn)
        elif method == "INFO":
            status = 200
            if self.handler is not None and request.body:
                status = self.handler.on_info(request.content_type or "", request.body)
            txn.respond(make_response(request, status))
        elif method == "NOTIFY":
            txn.respond(make_response(request, 200))
            if self.handler is not None:
                self.handler.on_notify(request)
        elif method in ("OPTIONS", "UPDATE"):
            txn.respond(self.ua.options_response(request))
        else:
            txn.respond(self.ua.method_not_allowed(request))

    def _on_reinvite(self, request: SipRequest, txn: ServerTransaction) -> None:
        if not request.body or self.handler is None:
            txn.respond(make_response(request, 488, "Not Acceptable Here - offer required"))
            return
        try:
            answer = self.handler.on_reinvite(request.body)
        except ValueError as e:
            txn.respond(make_response(request, 488, f"Not Acceptable Here - {e}"[:120]))
            return
        self.remote_sdp = request.body
        resp = make_response(request, 200)
        resp.headers.add("Contact", self.ua.contact_for(txn.dest))
        resp.headers.add("Content-Type", "application/sdp")
        resp.body = answer
        txn.respond(resp)
        self.ua.retransmit_2xx_until_ack(self, resp, txn.dest, request.cseq[0])

    def on_ack(self, request: SipRequest) -> None:
        """ACK for our 2xx (initial or re-INVITE)."""

    # -- requests we send in the dialog --------------------------------------------------------

    async def bye(self, cause: str = "normal") -> None:
        """Hang up from our side. The session ends now; the BYE transaction finishes in the UA's
        background (a peer that never answers BYE must not hold the call open for Timer F)."""
        if self._bye_sent or self.dialog is None:
            self._end(SessionEnd(cause, "engine"))
            return
        self._bye_sent = True
        dialog = self.dialog
        self._end(SessionEnd(cause, "engine"))
        self.ua.spawn(self._send_bye(dialog), f"bye-{self.call_id}")

    async def _send_bye(self, dialog: Dialog) -> None:
        try:
            await self.ua.request_in_dialog(dialog, "BYE")
        except (CallFailed, TimeoutError, OSError) as e:
            log.debug("BYE for %s: %s", self.call_id, e)

    async def info(self, content_type: str, body: bytes) -> SipResponse:
        assert self.dialog is not None
        return await self.ua.request_in_dialog(self.dialog, "INFO", content_type, body)

    async def refer(self, target: str) -> SipResponse:
        """RFC 3515 blind transfer: ask the far end to call ``target``."""
        assert self.dialog is not None
        return await self.ua.request_in_dialog(
            self.dialog, "REFER", extra_headers=[("Refer-To", f"<{target}>"),
                                                 ("Referred-By", self.dialog.local_uri)]
        )

    async def reinvite(self, sdp: bytes) -> SipResponse:
        assert self.dialog is not None
        return await self.ua.reinvite(self, sdp)


class IncomingInvite(InviteSession):
    """A call arriving at the engine. The app rings, answers or rejects it."""

    direction = "inbound"

    def __init__(self, ua: SessionHost, invite: SipRequest, txn: ServerTransaction,
                 source: Address) -> None:
        super().__init__(ua, invite)
        self.txn = txn
        self.source = source
        self.local_tag = new_tag()
        self.acked = asyncio.get_running_loop().create_future()

    @property
    def caller(self) -> str:
        return self.invite.from_.uri.user or ""

    @property
    def callee(self) -> str:
        return self.invite.uri.user or self.invite.to.uri.user or ""

    def ring(self) -> None:
        if not self.txn.final_sent:
            self.txn.respond(make_response(self.invite, 180, to_tag=self.local_tag))

    def reject(self, status: int, reason: str | None = None,
               headers: list[tuple[str, str]] | None = None) -> None:
        if self.txn.final_sent:
            return
        resp = make_response(self.invite, status, reason, to_tag=self.local_tag)
        for name, value in headers or []:
            resp.headers.add(name, value)
        self.txn.respond(resp)
        self._end(SessionEnd("rejected", "engine", status))

    def answer(self, sdp: bytes) -> None:
        """Send 200 OK with ``sdp``; it is retransmitted until the ACK comes (§13.3.1.4)."""
        if self.txn.final_sent or not self.active:
            raise RuntimeError("INVITE already answered or ended")
        self.dialog = Dialog.as_uas(self.invite, self.local_tag)
        self.ua.register_session(self)
        resp = make_response(self.invite, 200, to_tag=self.local_tag)
        resp.headers.add("Contact", self.ua.contact_for(self.txn.dest))
        resp.headers.add("Allow", self.ua.ALLOW)
        resp.headers.add("Content-Type", "application/sdp")
        resp.body = sdp
        self.txn.respond(resp)
        self.ua.retransmit_2xx_until_ack(self, resp, self.txn.dest, self.invite.cseq[0])

    def on_cancel(self) -> None:
        resp = make_response(self.invite, 487, to_tag=self.local_tag)
        self.txn.respond(resp)
        self._end(SessionEnd("cancelled", "caller", 487))

    def on_ack(self, request: SipRequest) -> None:
        if not self.acked.done():
            self.acked.set_result(None)


class OutgoingInvite(InviteSession):
    """A call the engine places. ``answered`` resolves with the 2xx or fails with CallFailed."""

    direction = "outbound"

    def __init__(self, ua: SessionHost, invite: SipRequest, dest: Address) -> None:
        super().__init__(ua, invite)
        self.dest = dest
        self.remote_sdp = None
        self.provisional: list[int] = []
        self.answered: asyncio.Future[SipResponse] = asyncio.get_running_loop().create_future()
        self.ack_bytes: bytes | None = None
        self._cancel_requested = False
        self.got_provisional = asyncio.Event()

    async def cancel(self) -> None:
        """§9.1: CANCEL a ringing call (after a provisional response has arrived)."""
        if self.answered.done():
            return
        self._cancel_requested = True
        await self.ua.send_cancel(self)


RETRANSMIT_2XX_INTERVALS = tuple(
    min(T1_S * 2**i, T2_S) for i in range(12)
)  # 0.5, 1, 2, 4, 4, ...: up to 64*T1 in total
ACK_WAIT_S = TIMEOUT_S
