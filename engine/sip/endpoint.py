"""The SIP endpoint's shared plumbing: transports, the transaction layer and its timers,
the dialog registry, building and sending requests, and the 2xx retransmission of RFC 3261
§13.3.1.4.

:class:`~engine.sip.uac.Uac` (what the engine sends) and :class:`~engine.sip.ua.UserAgent`
(what it answers) build on it; INVITE sessions see it only through the narrow
:class:`~engine.sip.invite.SessionHost`. Everything that can be decided without the network lives
in the sans-IO modules; this one only glues them to asyncio. Every timer runs on the injected
clock.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any

from core.clock import Clock, SystemClock, TimerHandle
from core.tasks import TaskScope
from engine.sip import digest
from engine.sip.addr import DEFAULT_PORTS, Address
from engine.sip.dialog import Dialog
from engine.sip.grammar import split_commas
from engine.sip.headers import Headers
from engine.sip.invite import (
    ACK_WAIT_S,
    RETRANSMIT_2XX_INTERVALS,
    CallFailed,
    IncomingInvite,
    InviteSession,
)
from engine.sip.message import (
    SipRequest,
    SipResponse,
    SipUri,
    make_response,
    new_branch,
    new_call_id,
    new_tag,
)
from engine.sip.transaction import ClientTransaction, TransactionLayer, TransactionUser
from engine.sip.transport import MessageSink, StreamLimits, TransportSet

log = logging.getLogger("ivr.sip")


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
    refused_over_cps: int = 0  # INVITEs answered 503 by admission pacing (sip.max_cps)
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


class SipEndpoint:
    """Plumbing shared by the UAC and UAS halves; see the module docstring."""

    ALLOW = "INVITE, ACK, BYE, CANCEL, OPTIONS, INFO, NOTIFY, REFER"

    def __init__(self, *, inbound: MessageSink, tu: TransactionUser, user_agent: str,
                 clock: Clock | None, max_size: int, outbound_proxy: Address | None,
                 advertise_host: str | None, stream_limits: StreamLimits | None = None) -> None:
        self.user_agent = user_agent
        self.clock: Clock = clock or SystemClock()
        self.max_size = max_size
        self.outbound_proxy = outbound_proxy
        self.advertise_host = advertise_host
        self.transports = TransportSet(inbound, max_size=max_size, clock=self.clock,
                                       limits=stream_limits)
        self.layer = TransactionLayer(self.transports, tu)
        self.layer.on_deadline_change = self._deadline_changed
        self.sessions: dict[tuple[str, str, str], InviteSession] = {}
        self.pending_in: dict[tuple[str, ...], IncomingInvite] = {}
        self.stats = UaStats()
        self.tasks = TaskScope("sip-ua")
        self._timer: TimerHandle | None = None
        self._timer_at: float | None = None
        self._ack_waiters: dict[tuple[str, int], asyncio.Future[None]] = {}

    @property
    def active_calls(self) -> int:
        return len(self.sessions) + len(self.pending_in)

    # -- timers --------------------------------------------------------------------------------

    def _deadline_changed(self, deadline: float) -> None:
        if self._timer_at is not None and self._timer_at <= deadline:
            return
        if self._timer is not None:
            self._timer.cancel()
        self._timer_at = deadline
        self._timer = self.clock.call_at(deadline, self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        self._timer_at = None
        self.layer.poll(self.clock.now())
        nxt = self.layer.next_deadline()
        if nxt is not None:
            self._deadline_changed(nxt)

    def stop_timers(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
            self._timer_at = None

    # -- helpers for sessions ------------------------------------------------------------------

    def spawn(self, coro: Coroutine[Any, Any, None], name: str) -> None:
        self.tasks.spawn(coro, name)

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
            host = route_source_ip(toward or "8.8.8.8")
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
            for step in RETRANSMIT_2XX_INTERVALS if not dest.reliable else (ACK_WAIT_S,):
                interval = min(step, ACK_WAIT_S - elapsed)  # give up at 64*T1 exactly
                try:
                    await self.clock.wait_for(asyncio.shield(waiter), interval)
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

    def ack_received(self, call_id: str, cseq: int) -> None:
        """The ACK for a 2xx we retransmit arrived: stop retransmitting it."""
        waiter = self._ack_waiters.pop((call_id, cseq), None)
        if waiter is not None and not waiter.done():
            waiter.set_result(None)


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


def route_source_ip(toward: str) -> str:
    """The local IP the kernel would use toward ``toward`` (no packet is sent)."""
    fam = socket.AF_INET6 if ":" in toward else socket.AF_INET
    with socket.socket(fam, socket.SOCK_DGRAM) as s:
        try:
            s.connect((toward, 9))
            return str(s.getsockname()[0])
        except OSError:
            return "127.0.0.1"
