"""The SIP user agent core: parses what the transports deliver, runs the transaction layer's
timers on the event loop, dispatches requests, and places requests of its own.

Everything that can be decided without the network (parsing, transactions, dialogs, digest)
lives in the sans-IO modules; this one only glues them to asyncio.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from engine.clock import Clock, SystemClock
from engine.sip import digest
from engine.sip.addr import DEFAULT_PORTS, Address
from engine.sip.dialog import Dialog
from engine.sip.headers import Headers, split_commas
from engine.sip.invite import (
    ACK_WAIT_S,
    RETRANSMIT_2XX_INTERVALS,
    CallFailed,
    IncomingInvite,
    InviteSession,
    OutgoingInvite,
    SessionEnd,
)
from engine.sip.message import (
    SipParseError,
    SipRequest,
    SipResponse,
    SipUri,
    Via,
    make_response,
    new_branch,
    new_call_id,
    new_tag,
    parse_message,
)
from engine.sip.security import InboundPolicy
from engine.sip.transaction import (
    ClientTransaction,
    ServerTransaction,
    TransactionLayer,
    response_destination,
)
from engine.sip.transport import TransportSet
from engine.sip.uac import UacMixin
from engine.tasks import TaskScope

log = logging.getLogger("ivr.sip.ua")

KNOWN_METHODS = frozenset(
    {"INVITE", "ACK", "BYE", "CANCEL", "OPTIONS", "INFO", "NOTIFY", "REFER", "REGISTER",
     "SUBSCRIBE", "PUBLISH", "MESSAGE", "UPDATE", "PRACK"}
)


class InviteHandler(Protocol):
    def on_invite(self, session: IncomingInvite) -> None:
        """A new call. Must not block: ring/answer/reject now or from a task."""


@dataclass(slots=True)
class Credentials:
    username: str
    password: str


@dataclass
class UaStats:
    received: int = 0
    parse_errors: int = 0
    rejected_untrusted: int = 0
    calls_in: int = 0
    calls_out: int = 0
    bad_requests_answered: int = 0
    extra: dict[str, int] = field(default_factory=dict)


class _FutureListener:
    """Collects a client transaction's responses for an awaiting coroutine."""

    __slots__ = ("final", "on_provisional")

    def __init__(self, on_provisional: Callable[[SipResponse], None] | None = None) -> None:
        self.final: asyncio.Future[SipResponse] = asyncio.get_running_loop().create_future()
        self.on_provisional = on_provisional

    def on_response(self, txn: ClientTransaction, response: SipResponse) -> None:
        if response.status < 200:
            if self.on_provisional is not None:
                self.on_provisional(response)
        elif not self.final.done():
            self.final.set_result(response)
        elif self.on_provisional is not None and response.status < 300:
            self.on_provisional(response)  # a 2xx retransmission: the owner re-ACKs

    def on_timeout(self, txn: ClientTransaction) -> None:
        if not self.final.done():
            self.final.set_exception(TimeoutError(f"{txn.request.method} timed out (no answer)"))


class UserAgent(UacMixin):
    ALLOW = "INVITE, ACK, BYE, CANCEL, OPTIONS, INFO, NOTIFY, REFER"

    def __init__(self, *, handler: InviteHandler | None = None, policy: InboundPolicy,
                 user_agent: str = "IVR-Engine", clock: Clock | None = None,
                 max_size: int = 65535, max_calls: int = 5000,
                 outbound_proxy: Address | None = None, advertise_host: str | None = None) -> None:
        self.handler = handler
        self.policy = policy
        self.user_agent = user_agent
        self.clock = clock or SystemClock()
        self.max_size = max_size
        self.max_calls = max_calls
        self.outbound_proxy = outbound_proxy
        self.advertise_host = advertise_host
        self.transports = TransportSet(self, max_size=max_size)
        self.layer = TransactionLayer(self.transports, self)
        self.layer.on_deadline_change = self._deadline_changed
        self.sessions: dict[tuple[str, str, str], InviteSession] = {}
        self.pending_in: dict[tuple[str, ...], IncomingInvite] = {}
        self.stats = UaStats()
        self.tasks = TaskScope("sip-ua")
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at: float | None = None
        self._accepting = True
        self._ack_waiters: dict[tuple[str, int], asyncio.Future[None]] = {}

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

    async def stop(self, drain_s: float = 5.0) -> None:
        """Stop accepting calls, hang up the rest (waiting up to ``drain_s``), close sockets."""
        self._accepting = False
        for session in list(self.sessions.values()):
            await session.bye("shutdown")  # sends BYE now; its transaction runs in self.tasks
        pending = [t for t in self.tasks._tasks if not t.done()]
        if pending:
            await asyncio.wait(pending, timeout=drain_s)
        await self.tasks.close(grace_s=1.0)
        if self._timer is not None:
            self._timer.cancel()
        await self.transports.close()

    @property
    def active_calls(self) -> int:
        return len(self.sessions) + len(self.pending_in)

    # -- timers --------------------------------------------------------------------------------

    def _deadline_changed(self, deadline: float) -> None:
        if self._timer_at is not None and self._timer_at <= deadline:
            return
        if self._timer is not None:
            self._timer.cancel()
        loop = asyncio.get_running_loop()
        self._timer_at = deadline
        self._timer = loop.call_at(deadline, self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        self._timer_at = None
        self.layer.poll(self.clock.now())
        nxt = self.layer.next_deadline()
        if nxt is not None:
            self._deadline_changed(nxt)

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
            partial = getattr(e, "partial", None)
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
            txn.respond(self.options_response(request))
        elif method == "INVITE":
            self._on_invite(request, txn, source)
        elif method == "BYE":
            txn.respond(make_response(request, 481))
        else:
            txn.respond(self.method_not_allowed(request))

    def _on_invite(self, request: SipRequest, txn: ServerTransaction, source: Address) -> None:
        txn.respond(make_response(request, 100))  # stop the caller's Timer A at once
        if not self._accepting or self.active_calls >= self.max_calls or self.handler is None:
            resp = make_response(request, 503, "Service Unavailable", to_tag=new_tag())
            resp.headers.add("Retry-After", "5")
            txn.respond(resp)
            return
        session = IncomingInvite(self, request, txn, source)
        self.pending_in[txn.key] = session
        session.ended.add_done_callback(lambda _f: self.pending_in.pop(txn.key, None))
        self.stats.calls_in += 1
        self.handler.on_invite(session)

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
            ack_waiter = self._ack_waiters.pop((request.call_id, request.cseq[0]), None)
            if ack_waiter is not None and not ack_waiter.done():
                ack_waiter.set_result(None)

    def on_stray_response(self, response: SipResponse, source: Address) -> None:
        if response.cseq[1] == "INVITE" and 200 <= response.status < 300:
            session = self.sessions.get((response.call_id, response.from_.tag or "",
                                         response.to.tag or ""))
            if isinstance(session, OutgoingInvite) and session.ack_bytes is not None:
                self.transports.send(session.ack_bytes, session.dest)

    def on_server_timeout(self, txn: ServerTransaction) -> None:
        log.debug("no ACK for final response to %s", txn.request.call_id)

    # -- helpers for sessions ------------------------------------------------------------------

    def register_session(self, session: InviteSession) -> None:
        assert session.dialog is not None
        self.sessions[session.dialog.id] = session
        if isinstance(session, IncomingInvite):  # answered: counted once, as a dialog
            self.pending_in.pop(session.txn.key, None)

    def forget_session(self, session: InviteSession) -> None:
        if session.dialog is not None:
            self.sessions.pop(session.dialog.id, None)

    def options_response(self, request: SipRequest) -> SipResponse:
        resp = make_response(request, 200, to_tag=None if request.to.tag else new_tag())
        resp.headers.add("Allow", self.ALLOW)
        resp.headers.add("Accept", "application/sdp, application/dtmf-relay, application/dtmf")
        resp.headers.add("Accept-Encoding", "identity")
        resp.headers.add("Supported", "replaces")
        resp.headers.add("Server", self.user_agent)
        return resp

    def method_not_allowed(self, request: SipRequest) -> SipResponse:
        resp = make_response(request, 405, to_tag=None if request.to.tag else new_tag())
        resp.headers.add("Allow", self.ALLOW)
        return resp

    def local_address(self, transport: str, toward: str | None = None) -> tuple[str, int]:
        host, port = self.transports.local[transport]
        if self.advertise_host:
            host = self.advertise_host
        elif host in ("0.0.0.0", "::"):
            host = _route_source_ip(toward or "8.8.8.8")
        return host, port

    def contact_for(self, dest: Address) -> str:
        host, port = self.local_address(dest.transport, dest.host)
        hostpart = f"[{host}]" if ":" in host else host
        tp = "" if dest.transport == "udp" else f";transport={dest.transport}"
        return f"<sip:ivr@{hostpart}:{port}{tp}>"

    def via_for(self, dest: Address) -> str:
        host, port = self.local_address(dest.transport, dest.host)
        hostpart = f"[{host}]" if ":" in host else host
        return f"SIP/2.0/{dest.transport.upper()} {hostpart}:{port};rport;branch={new_branch()}"

    def retransmit_2xx_until_ack(self, session: InviteSession, response: SipResponse,
                                 dest: Address, cseq: int) -> None:
        """§13.3.1.4: the UAS core resends its 2xx until the ACK; no ACK -> BYE."""
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._ack_waiters[(session.call_id, cseq)] = waiter
        self.tasks.spawn(self._retransmit_2xx(session, response.serialize(), dest, waiter, cseq),
                         f"2xx-{session.call_id}")

    async def _retransmit_2xx(self, session: InviteSession, data: bytes, dest: Address,
                              waiter: asyncio.Future[None], cseq: int) -> None:
        elapsed = 0.0
        try:
            for interval in RETRANSMIT_2XX_INTERVALS if not dest.reliable else (ACK_WAIT_S,):
                try:
                    await asyncio.wait_for(asyncio.shield(waiter), interval)
                    return
                except TimeoutError:
                    pass
                elapsed += interval
                if elapsed >= ACK_WAIT_S or not session.active:
                    break
                self.transports.send(data, dest)
                self.layer.retransmissions += 1
            if not waiter.done() and session.active:
                log.info("no ACK for 2xx on %s; hanging up", session.call_id)
                await session.bye("no_ack")
        finally:
            self._ack_waiters.pop((session.call_id, cseq), None)

    # -- sending requests ----------------------------------------------------------------------

    async def resolve(self, uri: SipUri) -> Address:
        """Where to send a request for ``uri`` (outbound proxy first). A records only, no SRV."""
        if self.outbound_proxy is not None:
            return self.outbound_proxy
        transport = (uri.params.get("transport") or ("tls" if uri.scheme == "sips" else "udp"))
        transport = transport.lower()
        host = uri.params.get("maddr") or uri.host
        port = uri.port or DEFAULT_PORTS.get(transport, 5060)
        host = host.strip("[]")
        try:
            socket.inet_pton(socket.AF_INET6 if ":" in host else socket.AF_INET, host)
        except OSError:
            infos = await asyncio.get_running_loop().getaddrinfo(host, port,
                                                                  type=socket.SOCK_DGRAM)
            if not infos:
                raise CallFailed(503, f"cannot resolve {host}") from None
            host = str(infos[0][4][0])
        return Address(transport, host, port)

    async def send_request(self, request: SipRequest, dest: Address,
                           on_provisional: Callable[[SipResponse], None] | None = None,
                           ) -> SipResponse:
        listener = _FutureListener(on_provisional)
        self.layer.send_request(request, dest, listener, self.clock.now())
        return await listener.final

    async def request_with_auth(self, build: Callable[[int, list[tuple[str, str]]], SipRequest],
                                dest: Address, creds: Credentials | None,
                                on_provisional: Callable[[SipResponse], None] | None = None,
                                ) -> tuple[SipRequest, SipResponse]:
        """Send ``build(cseq, auth_headers)``; answer one 401/407 challenge with credentials."""
        auth_headers: list[tuple[str, str]] = []
        for attempt in range(3):
            request = build(attempt, auth_headers)
            response = await self.send_request(request, dest, on_provisional)
            if response.status not in (401, 407) or creds is None:
                return request, response
            header = "WWW-Authenticate" if response.status == 401 else "Proxy-Authenticate"
            challenges = response.headers.get_all(header)
            try:
                challenge = digest.choose_challenge(challenges)
            except ValueError:
                return request, response
            value = digest.build_authorization(
                challenge, request.method, str(request.uri), creds.username, creds.password,
                cnonce=new_tag(), nc=1,
            )
            auth_headers = [("Authorization" if response.status == 401
                             else "Proxy-Authorization", value)]
        return request, response

    def new_request(self, method: str, uri: SipUri, dest: Address, *, from_user: str = "ivr",
                    from_display: str | None = None, to_uri: SipUri | None = None,
                    call_id: str | None = None, from_tag: str | None = None,
                    cseq: int = 1) -> SipRequest:
        req = SipRequest(method, uri)
        h = req.headers
        h.add("Via", self.via_for(dest))
        h.add("Max-Forwards", "70")
        host, port = self.local_address(dest.transport, dest.host)
        hostpart = f"[{host}]" if ":" in host else host
        disp = f'"{from_display}" ' if from_display else ""
        h.add("From", f"{disp}<sip:{from_user}@{hostpart}:{port}>;tag={from_tag or new_tag()}")
        h.add("To", f"<{to_uri or uri}>")
        h.add("Call-ID", call_id or new_call_id(host))
        h.add("CSeq", f"{cseq} {method}")
        h.add("User-Agent", self.user_agent)
        return req

    async def options(self, uri: SipUri, creds: Credentials | None = None) -> SipResponse:
        dest = await self.resolve(uri)
        call_id = new_call_id("opt")
        tag = new_tag()

        def build(n: int, auth: list[tuple[str, str]]) -> SipRequest:
            req = self.new_request("OPTIONS", uri, dest, call_id=call_id, from_tag=tag, cseq=1 + n)
            req.headers.add("Accept", "application/sdp")
            for name, value in auth:
                req.headers.add(name, value)
            return req

        _, resp = await self.request_with_auth(build, dest, creds)
        return resp

    async def request_in_dialog(self, dialog: Dialog, method: str, content_type: str | None = None,
                                body: bytes = b"",
                                extra_headers: list[tuple[str, str]] | None = None,
                                ) -> SipResponse:
        dest = await self.resolve(dialog.next_hop_uri())
        req = dialog.create_request(method, via=self.via_for(dest),
                                    contact=self.contact_for(dest)
                                    if method in ("INVITE", "REFER") else None)
        for name, value in extra_headers or []:
            req.headers.add(name, value)
        if content_type:
            req.headers.add("Content-Type", content_type)
            req.body = body
        resp = await self.send_request(req, dest)
        return resp



def replace_top_via(headers: Headers, new_top: str) -> Headers:
    """A copy of ``headers`` with the topmost Via value replaced (comma lists respected)."""
    items = list(headers)
    for i, (name, value) in enumerate(items):
        if name == "Via":
            parts = split_commas(value)
            parts[0] = new_top
            items[i] = (name, ", ".join(parts))
            break
    return Headers(items)


def _route_source_ip(toward: str) -> str:
    """The local IP the kernel would use toward ``toward`` (no packet is sent)."""
    fam = socket.AF_INET6 if ":" in toward else socket.AF_INET
    with socket.socket(fam, socket.SOCK_DGRAM) as s:
        try:
            s.connect((toward, 9))
            return str(s.getsockname()[0])
        except OSError:
            return "127.0.0.1"


__all__ = ["CallFailed", "Credentials", "IncomingInvite", "OutgoingInvite", "SessionEnd",
           "UserAgent"]
