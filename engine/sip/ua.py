"""The SIP user agent: what the engine answers. Parses what the transports deliver,
applies the inbound trust policy and dispatches requests to transactions, dialogs and the
application (a new INVITE goes to the :class:`InviteHandler`).

Built on :class:`~engine.sip.uac.Uac` (what it sends) and
:class:`~engine.sip.endpoint.SipEndpoint` (the shared plumbing).
"""

from __future__ import annotations

import logging
from typing import Protocol

from core.clock import Clock
from engine.sip.addr import Address
from engine.sip.endpoint import Credentials, replace_top_via
from engine.sip.invite import CallFailed, IncomingInvite, OutgoingInvite, SessionEnd
from engine.sip.message import (
    SipParseError,
    SipRequest,
    SipResponse,
    Via,
    make_response,
    new_tag,
    parse_message,
)
from engine.sip.security import InboundPolicy
from engine.sip.transaction import ServerTransaction, response_destination
from engine.sip.transport import StreamLimits
from engine.sip.uac import Uac

log = logging.getLogger("ivr.sip.ua")

KNOWN_METHODS = frozenset(
    {"INVITE", "ACK", "BYE", "CANCEL", "OPTIONS", "INFO", "NOTIFY", "REFER", "REGISTER",
     "SUBSCRIBE", "PUBLISH", "MESSAGE", "UPDATE", "PRACK"}
)


class InviteHandler(Protocol):
    def on_invite(self, session: IncomingInvite) -> None:
        """A new call. Must not block: ring/answer/reject now or from a task."""


class UserAgent(Uac):
    def __init__(self, *, handler: InviteHandler | None = None, policy: InboundPolicy,
                 user_agent: str = "IVR-Engine", clock: Clock | None = None,
                 max_size: int = 65535, max_calls: int = 5000,
                 outbound_proxy: Address | None = None, advertise_host: str | None = None,
                 stream_limits: StreamLimits | None = None) -> None:
        super().__init__(inbound=self, tu=self, user_agent=user_agent, clock=clock,
                         max_size=max_size, outbound_proxy=outbound_proxy,
                         advertise_host=advertise_host, stream_limits=stream_limits)
        self.handler = handler
        self.policy = policy
        self.max_calls = max_calls
        self._accepting = True

    # -- lifecycle -----------------------------------------------------------------------------

    async def start(self, host: str, port: int, transports: list[str],
                    tls: tuple[object, object] | None = None,
                    tls_port: int | None = None) -> dict[str, tuple[str, int]]:
        if "udp" in transports:
            host_port = await self.transports.listen_udp(host, port)
            port = host_port[1]  # port 0: TCP takes the same number as UDP
        if "tcp" in transports:
            await self.transports.listen_stream("tcp", host, port)
        if "tls" in transports and tls is not None:
            server_ctx, client_ctx = tls
            if server_ctx is not None:
                await self.transports.listen_stream(
                    "tls", host, tls_port if tls_port is not None else port + 1,
                    server_ssl=server_ctx, client_ssl=client_ctx,  # type: ignore[arg-type]
                )
            else:  # no certificate: place TLS calls, accept none
                first = next(iter(self.transports.local.values()), (host, port))
                self.transports.add_client_stream("tls", client_ctx, first)  # type: ignore[arg-type]
        return dict(self.transports.local)

    def stop_accepting(self) -> None:
        """New INVITEs get 503 from now on (shutdown, drain); calls in progress go on."""
        self._accepting = False

    @property
    def accepting(self) -> bool:
        return self._accepting

    async def stop(self, drain_s: float = 5.0) -> None:
        """Stop accepting calls, hang up the rest (waiting up to ``drain_s``), close sockets."""
        self.stop_accepting()
        for session in list(self.sessions.values()):
            await session.bye("shutdown")  # sends BYE now; its transaction runs in self.tasks
        await self.tasks.wait(drain_s)
        await self.tasks.close(grace_s=1.0)
        self.stop_timers()
        await self.transports.close()

    # -- receiving -----------------------------------------------------------------------------

    def on_message(self, data: bytes, source: Address) -> None:
        """Transport callback: never raises; bad input is answered 4xx or dropped."""
        self.stats.received += 1
        if not data.strip(b"\r\n"):
            return  # keep-alive (RFC 5626 CRLF ping)
        now = self.clock.now()
        try:
            msg = parse_message(data, max_size=self.max_size)
        except SipParseError as e:
            self.stats.parse_errors += 1
            log.debug("unparseable message from %s: %s", source, e)
            partial = e.partial if isinstance(e.partial, SipRequest) else None
            if partial is not None and partial.method != "ACK":
                try:
                    self._stamp_via(partial, source)
                except SipParseError:
                    pass
                self._answer_bad_request(partial, source, e)
            return
        try:
            if isinstance(msg, SipRequest):
                self._stamp_via(msg, source)
                self.layer.receive_request(msg, source, now)
            else:
                self.layer.receive_response(msg, source, now)
        except SipParseError as e:
            # A header the parser reads lazily turned out malformed.
            self.stats.parse_errors += 1
            log.debug("malformed message from %s: %s", source, e)
            if isinstance(msg, SipRequest) and msg.method != "ACK":
                self._answer_bad_request(msg, source, e)

    def _answer_bad_request(self, msg: SipRequest, source: Address, e: SipParseError) -> None:
        try:
            resp = make_response(msg, e.status, e.reason)
            self.transports.send(resp.serialize(), response_destination(msg, source))
            self.stats.bad_requests_answered += 1
        except SipParseError:
            pass

    @staticmethod
    def _stamp_via(request: SipRequest, source: Address) -> None:
        """RFC 3581 / §18.2.1: record where the request really came from in the top Via."""
        vias = request.headers.get_all("Via")
        if not vias:
            return
        top = Via.parse(vias[0])  # a fresh object: the message's cached Vias stay untouched
        changed = False
        if top.host != source.host:
            top.params["received"] = source.host
            changed = True
        if "rport" in top.params and not top.params["rport"]:
            top.params["rport"] = str(source.port)
            top.params["received"] = source.host
            changed = True
        if changed:
            request.headers = replace_top_via(request.headers, str(top))

    # -- TransactionUser -----------------------------------------------------------------------

    def on_request(self, request: SipRequest, txn: ServerTransaction, source: Address) -> None:
        method = request.method
        to_tag = request.to.tag
        if to_tag:
            session = self.sessions.get((request.call_id, to_tag, request.from_.tag or ""))
            if session is None:
                txn.respond(make_response(request, 481))
                return
            session.on_request(request, txn)
            return
        if method == "CANCEL":
            self._on_cancel(request, txn)
            return
        if method not in KNOWN_METHODS:
            resp = make_response(request, 501, "Not Implemented")
            resp.headers.add("Allow", self.ALLOW)
            txn.respond(resp)
            return
        verdict = self.policy.check(request, source, self.clock.now())
        if not verdict.allowed:
            self.stats.rejected_untrusted += 1
            resp = make_response(request, verdict.status, verdict.reason, to_tag=new_tag())
            for ch in verdict.challenges:
                resp.headers.add("WWW-Authenticate", ch)
            txn.respond(resp)
            return
        if method == "OPTIONS":
            txn.respond(self._options_probe_response(request))
        elif method == "INVITE":
            self._on_invite(request, txn, source)
        elif method == "BYE":
            txn.respond(make_response(request, 481))
        else:
            txn.respond(self.method_not_allowed(request))

    @property
    def can_take_calls(self) -> bool:
        """Would a new INVITE be taken now (not draining, under ``max_calls``)?"""
        return self._accepting and self.active_calls < self.max_calls and \
            self.handler is not None

    def _options_probe_response(self, request: SipRequest) -> SipResponse:
        """Out-of-dialog OPTIONS is how a load balancer (Kamailio's dispatcher) probes a node:
        it answers what an INVITE would get, so a draining or full node is taken out of
        rotation before any call is refused (RFC 3261 §11.2)."""
        if self.can_take_calls:
            return self.options_response(request)
        resp = make_response(request, 503, "Service Unavailable",
                             to_tag=None if request.to.tag else new_tag())
        resp.headers.add("Retry-After", "5")
        return resp

    def _on_invite(self, request: SipRequest, txn: ServerTransaction, source: Address) -> None:
        if (request.headers.get("Contact") or "").strip() == "*":
            # RFC 3261 §10.2.2: "*" is a REGISTER-only wildcard; in an INVITE it is malformed
            txn.respond(make_response(request, 400, "Bad Request - Contact * only in REGISTER",
                                      to_tag=new_tag()))
            return
        txn.respond(make_response(request, 100))  # stop the caller's Timer A at once
        handler = self.handler
        if handler is None or not self.can_take_calls:
            resp = make_response(request, 503, "Service Unavailable", to_tag=new_tag())
            resp.headers.add("Retry-After", "5")
            txn.respond(resp)
            return
        session = IncomingInvite(self, request, txn, source)
        self.pending_in[txn.key] = session
        session.ended.add_done_callback(lambda _f: self.pending_in.pop(txn.key, None))
        self.stats.calls_in += 1
        handler.on_invite(session)

    def _on_cancel(self, request: SipRequest, txn: ServerTransaction) -> None:
        invite_txn = self.layer.find_invite_for_cancel(request)
        if invite_txn is None:
            txn.respond(make_response(request, 481))
            return
        txn.respond(make_response(request, 200))
        session = self.pending_in.get(invite_txn.key)
        if session is not None and not invite_txn.final_sent:
            session.on_cancel()

    def on_ack(self, request: SipRequest, source: Address) -> None:
        session = self.sessions.get((request.call_id, request.to.tag or "",
                                     request.from_.tag or ""))
        if session is not None:
            session.on_ack(request)
            self.ack_received(request.call_id, request.cseq[0])

    def on_stray_response(self, response: SipResponse, source: Address) -> None:
        if response.cseq[1] == "INVITE" and 200 <= response.status < 300:
            session = self.sessions.get((response.call_id, response.from_.tag or "",
                                         response.to.tag or ""))
            if isinstance(session, OutgoingInvite) and session.ack_bytes is not None:
                self.transports.send(session.ack_bytes, session.dest)

    def on_server_timeout(self, txn: ServerTransaction) -> None:
        log.debug("no ACK for final response to %s", txn.request.call_id)


__all__ = ["CallFailed", "Credentials", "IncomingInvite", "OutgoingInvite", "SessionEnd",
           "UserAgent"]
