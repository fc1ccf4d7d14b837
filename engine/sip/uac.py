"""What the engine sends as a UAC: INVITE (with digest retry), CANCEL, re-INVITE, REGISTER.

:class:`Uac` adds the outbound procedures to the shared :class:`~engine.sip.endpoint.SipEndpoint`;
:class:`~engine.sip.ua.UserAgent` adds the inbound dispatch on top, so each half stays readable.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass

from engine.sip import digest
from engine.sip.dialog import Dialog
from engine.sip.endpoint import Credentials, SipEndpoint
from engine.sip.invite import CallFailed, InviteSession, OutgoingInvite, SessionEnd
from engine.sip.message import SipRequest, SipResponse, SipUri, new_call_id, new_tag
from engine.sip.transaction import TIMEOUT_S, ClientTransaction, mirror_invite

log = logging.getLogger("ivr.sip.uac")

# The cause a failed INVITE ends with (engine.dispositions maps causes to dispositions).
FAILURE_CAUSES = {486: "busy", 600: "busy", 408: "no_answer", 480: "no_answer",
                  487: "cancelled", 404: "not_found", 604: "not_found", 603: "declined"}


class _InviteListener:
    """Client INVITE transaction events for one attempt of an outgoing call."""

    def __init__(self, uac: Uac, session: OutgoingInvite) -> None:
        self.uac = uac
        self.session = session
        self.final: asyncio.Future[SipResponse] = asyncio.get_running_loop().create_future()

    def on_response(self, txn: ClientTransaction, response: SipResponse) -> None:
        s = self.session
        if response.status < 200:
            s.provisional.append(response.status)
            s.got_provisional.set()
            return
        if not self.final.done():
            self.final.set_result(response)
        elif response.status < 300 and s.ack_bytes is not None:
            self.uac.transports.send(s.ack_bytes, s.dest)  # 2xx retransmission: ACK again

    def on_timeout(self, txn: ClientTransaction) -> None:
        if not self.final.done():
            self.final.set_exception(TimeoutError("INVITE timed out"))


class Uac(SipEndpoint):
    """The outbound procedures; see the module docstring."""

    async def invite(self, target: str | SipUri, sdp: bytes, *,
                     from_user: str = "ivr", from_display: str | None = None,
                     creds: Credentials | None = None,
                     headers: list[tuple[str, str]] | None = None) -> OutgoingInvite:
        """Start an outgoing call; await ``session.answered`` for the 2xx (or CallFailed)."""
        uri = SipUri.parse(target) if isinstance(target, str) else target
        dest = await self.resolve(uri)
        call_id = new_call_id(dest.host)
        tag = new_tag()

        def build(n: int, auth: list[tuple[str, str]]) -> SipRequest:
            req = self.new_request("INVITE", uri, dest, from_user=from_user,
                                   from_display=from_display, call_id=call_id, from_tag=tag,
                                   cseq=1 + n)
            h = req.headers
            h.add("Contact", self.contact_for(dest))
            h.add("Allow", self.ALLOW)
            for name, value in [*(headers or []), *auth]:
                h.add(name, value)
            h.add("Content-Type", "application/sdp")
            req.body = sdp
            return req

        session = OutgoingInvite(self, build(0, []), dest)
        session.answered.add_done_callback(_consume_exception)
        self.stats.calls_out += 1
        self.tasks.spawn(self._run_invite(session, build, creds), f"invite-{call_id}")
        return session

    async def _run_invite(self, session: OutgoingInvite,
                          build: Callable[[int, list[tuple[str, str]]], SipRequest],
                          creds: Credentials | None) -> None:
        request = session.invite
        attempt = 0
        while True:
            listener = _InviteListener(self, session)
            session.invite = request
            self.layer.send_request(request, session.dest, listener, self.clock.now())
            try:
                response = await listener.final
            except TimeoutError:  # Timer B: nobody answered at all (not a 408 from the far end)
                self._fail(session, 408, "Request Timeout", cause="timeout")
                return
            status = response.status
            if status in (401, 407) and creds is not None and attempt < 2:
                attempt += 1
                header = "WWW-Authenticate" if status == 401 else "Proxy-Authenticate"
                try:
                    challenge = digest.choose_challenge(response.headers.get_all(header))
                except ValueError as e:
                    self._fail(session, status, f"bad challenge: {e}")
                    return
                value = digest.build_authorization(
                    challenge, "INVITE", str(request.uri), creds.username, creds.password,
                    cnonce=new_tag(), nc=1,
                )
                auth_name = "Authorization" if status == 401 else "Proxy-Authorization"
                request = build(attempt, [(auth_name, value)])
                continue
            if 200 <= status < 300:
                self._accept(session, request, response)
            else:
                self._fail(session, status, response.reason)
            return

    def _accept(self, session: OutgoingInvite, request: SipRequest,
                response: SipResponse) -> None:
        dialog = Dialog.as_uac(request, response)
        session.dialog = dialog
        session.remote_sdp = response.body or None
        self.register_session(session)
        ack = dialog.create_request("ACK", via=self.via_for(session.dest), cseq=request.cseq[0])
        session.ack_bytes = self.layer.send_ack(ack, session.dest)
        if session._cancel_requested:
            self.tasks.spawn(session.bye("cancelled"), f"bye-{session.call_id}")
            self._fail(session, 487, "Request Terminated")
            return
        if not session.answered.done():
            session.answered.set_result(response)

    def _fail(self, session: OutgoingInvite, status: int, reason: str,
              cause: str | None = None) -> None:
        if not session.answered.done():
            session.answered.set_exception(CallFailed(status, reason))
        session._end(SessionEnd(cause or FAILURE_CAUSES.get(status, "rejected"), "callee", status))

    async def send_cancel(self, session: OutgoingInvite) -> None:
        """§9.1: CANCEL mirrors the INVITE (same Via branch, CSeq number) once it is ringing."""
        try:
            await self.clock.wait_for(session.got_provisional.wait(), TIMEOUT_S)
        except TimeoutError:
            return
        if session.answered.done():
            return
        cancel = mirror_invite(session.invite, "CANCEL")
        try:
            await self.send_request(cancel, session.dest)
        except TimeoutError:
            log.info("CANCEL for %s got no answer", session.call_id)

    async def reinvite(self, session: InviteSession, sdp: bytes) -> SipResponse:
        """Send a re-INVITE (hold/unhold, codec change) in the session's dialog and ACK it."""
        assert session.dialog is not None
        dialog = session.dialog
        dest = await self.resolve(dialog.next_hop_uri())
        req = dialog.create_request("INVITE", via=self.via_for(dest),
                                    contact=self.contact_for(dest))
        req.headers.add("Content-Type", "application/sdp")
        req.body = sdp
        resp = await self.send_request(req, dest)
        if 200 <= resp.status < 300:
            ack = dialog.create_request("ACK", via=self.via_for(dest), cseq=req.cseq[0])
            self.layer.send_ack(ack, dest)
            session.remote_sdp = resp.body or session.remote_sdp
        return resp

    async def register(self, registrar: str | SipUri, aor_user: str,
                       creds: Credentials | None, expires: int = 3600, *,
                       binding: RegistrationIds | None = None) -> SipResponse:
        """REGISTER our contact for ``aor_user`` at ``registrar`` (trunks that need it).

        Refreshes pass the same ``binding`` so Call-ID and From tag stay and CSeq grows, as
        §10.2.4 asks; ``expires=0`` removes the binding.
        """
        reg_uri = SipUri.parse(registrar) if isinstance(registrar, str) else registrar
        dest = await self.resolve(reg_uri)
        ids = binding or RegistrationIds(new_call_id(dest.host), new_tag())
        aor = SipUri.parse(f"sip:{aor_user}@{reg_uri.host}")

        def build(n: int, auth: list[tuple[str, str]]) -> SipRequest:
            ids.cseq += 1
            req = self.new_request("REGISTER", SipUri.parse(f"sip:{reg_uri.host}"), dest,
                                   from_user=aor_user, to_uri=aor, call_id=ids.call_id,
                                   from_tag=ids.tag, cseq=ids.cseq)
            tag = ids.tag
            # From and To carry the address of record (§10.2).
            req.headers.set("From", f"<{aor}>;tag={tag}")
            req.headers.add("Contact", self.contact_for(dest))
            req.headers.add("Expires", str(expires))
            for name, value in auth:
                req.headers.add(name, value)
            return req

        _, resp = await self.request_with_auth(build, dest, creds)
        return resp


@dataclass
class RegistrationIds:
    """What stays the same across the REGISTERs of one binding: Call-ID, From tag; CSeq grows."""

    call_id: str
    tag: str
    cseq: int = 0


def _consume_exception(fut: asyncio.Future[SipResponse]) -> None:
    if not fut.cancelled():
        fut.exception()  # mark retrieved: an unanswered call is not an unhandled error
