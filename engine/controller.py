"""The call controller: turns an INVITE into a running call, and places calls.

Inbound: negotiate SDP (488 when nothing fits), bind an RTP port, build the media session and
the ``SipCall``, pick the application for the dialled number, run it, then tear down whatever
happened. Outbound: offer SDP, wait for the answer (ring timeout on the injected clock), same
from there. One task per call, named after it, created through ``core.tasks``.

Every resource acquired for a call (an RTP port and its socket) has one owner at a time: the
setup code until the media session takes it, then the call's teardown; each path releases it.
The controller never writes call records: it publishes ``call.invite``, ``call.answered`` and
``call.ended`` on the bus, and :class:`~engine.cdr_builder.CallRecordBuilder` assembles them.
"""

from __future__ import annotations

import asyncio
import logging
import random
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from core.bus import EventBus
from core.call import VERSTAT_NONE, TransferResult
from core.clock import Clock
from core.tasks import TaskScope
from engine.bridge import bridge_to
from engine.cdr import CallRecord
from engine.cdr_builder import CallRecordBuilder
from engine.dispositions import outbound_disposition
from engine.identity import IdentityVerdict, IdentityVerifier, check_identity
from engine.media.ports import PortAllocator, PortsExhausted
from engine.media.prompts import PromptCache
from engine.media.recorder import Recorder, save_recording
from engine.media.session import CODECS, MediaSession
from engine.rtp.pacer import Pacer
from engine.rtp.rxlane import RtpProtocol
from engine.sip.invite import CallFailed, IncomingInvite, InviteSession, OutgoingInvite
from engine.sip.message import SipResponse
from engine.sip.sdp import (
    SdpNegotiationError,
    SdpParseError,
    SessionDescription,
    build_offer,
    negotiate_answer,
    parse_answer,
)
from engine.sip.ua import Credentials, UserAgent
from engine.sipcall import SipCall, SpeechHooks
from engine.sipcall.base import run_app

log = logging.getLogger("ivr.controller")

CallApp = Callable[[SipCall], Awaitable[None]]
Router = Callable[[SipCall], CallApp]


@dataclass
class MediaOptions:
    local_ip: str = "127.0.0.1"
    codecs: tuple[str, ...] = ("PCMU", "PCMA")
    media_timeout_s: float = 30.0
    symmetric: bool = True
    record_calls: bool = False
    recordings_dir: Path = Path("var/recordings")
    inband_dtmf: str = "auto"
    strict_source: bool = True  # RTP only from the SDP's or the signalling's address
    bind_ip: str | None = None  # where RTP sockets bind (default: local_ip)


@dataclass(frozen=True, slots=True)
class _MediaSocket:
    port: int
    transport: asyncio.DatagramTransport
    protocol: RtpProtocol


class RecordSink(Protocol):
    """Where finished call records go (``engine.cdr_writer.CdrWriter``)."""

    def put(self, record: CallRecord) -> None: ...


class _Reject(Exception):
    def __init__(self, status: int, reason: str, headers: list[tuple[str, str]] | None = None):
        super().__init__(f"{status} {reason}")
        self.status, self.reason, self.headers = status, reason, headers


def _warning(code: int, error: Exception) -> tuple[str, str]:
    """A Warning header (RFC 3261 §20.43) saying why the offer was refused."""
    text = str(error).replace('"', "'").replace("\r", " ").replace("\n", " ")
    return "Warning", f'{code} ivr "{text}"'[:200]


class CallController:
    def __init__(self, *, ua: UserAgent, pacer: Pacer, ports: PortAllocator, clock: Clock,
                 cdr: RecordSink, router: Router, options: MediaOptions,
                 bus: EventBus | None = None, speech: SpeechHooks | None = None,
                 node: str = "", identity: IdentityVerifier | None = None) -> None:
        self.ua = ua
        self.pacer = pacer
        self.ports = ports
        self.clock = clock
        self.cdr = cdr
        self.router = router
        self.options = options
        self.bus = bus or EventBus()
        self.speech = speech
        self.identity = identity  # checks inbound Identity headers ([callerid] verify_inbound)
        self.prompts = PromptCache()
        self.records = CallRecordBuilder(self.bus, cdr.put, node=node)
        self.calls: dict[str, SipCall] = {}
        # RTP counters of calls that have ended (metrics add the live calls' to them)
        self.rtp_totals: Counter[str] = Counter()
        self.tasks = TaskScope("calls")
        ua.handler = self

    # -- inbound -------------------------------------------------------------------------------

    def on_invite(self, session: IncomingInvite) -> None:
        self.tasks.spawn(self._inbound(session), f"call-{session.call_id}")

    async def _inbound(self, inv: IncomingInvite) -> None:
        call_id = str(uuid.uuid4())
        self._invited(call_id, inv, "inbound", inv.caller, inv.callee)
        sock: _MediaSocket | None = None
        verdict: IdentityVerdict | None = None
        try:
            if self.identity is not None:
                verdict = await self._verify_identity(call_id, inv, self.identity)
                if verdict.status is not None:  # policy: refuse (RFC 8224 §6.2.2)
                    status, reason = verdict.status
                    raise _Reject(status, reason, [_warning(399, ValueError(verdict.reason))])
            offer = self._offer_of(inv)
            sock = await self._bind()
            try:
                answer, chosen = negotiate_answer(
                    offer, supported=self.options.codecs, local_ip=self.options.local_ip,
                    local_port=sock.port, session_id=random.randint(1, 2**31))
            except SdpNegotiationError as e:
                raise _Reject(488, "Not Acceptable Here", [_warning(304, e)]) from e
            except SdpParseError as e:  # a malformed line found while negotiating
                raise _Reject(400, "Bad Request - SDP", [_warning(399, e)]) from e
            media = self._media(chosen, sock, inv.source.host)
        except _Reject as r:
            self._release(sock)
            inv.reject(r.status, r.reason, r.headers)
            trace = ([{"at": self.clock.wall(), "kind": "identity", **verdict.trace_data()}]
                     if verdict is not None else None)
            self._ended_unanswered(call_id, inv, "rejected", trace=trace)
            return
        except Exception:  # a bug must still answer the INVITE and give the port back
            log.exception("call %s: setting up the INVITE failed", call_id)
            self._release(sock)
            inv.reject(500, "Server Internal Error")
            self._ended_unanswered(call_id, inv, "failed", "setup_error")
            return
        except BaseException:  # cancelled (shutdown): give the port back, let it propagate
            self._release(sock)
            raise
        call = self._call(call_id, inv, media, answer_sdp=answer.serialize(), caller=inv.caller,
                          callee=inv.callee)
        if verdict is not None:
            call.identity = verdict.values
            call.trace.add("identity", **verdict.trace_data())
        inv.ring()
        await self._run(call, sock.port)

    async def _verify_identity(self, call_id: str, inv: IncomingInvite,
                               verifier: IdentityVerifier) -> IdentityVerdict:
        """The verdict on the INVITE's Identity headers, published as ``call.identity``."""
        verdict = await check_identity(verifier, inv.invite)
        self.bus.publish("call.identity", call_id, verstat=verdict.verstat,
                         reason=verdict.reason, name=verdict.values.get("name", ""),
                         rejected=verdict.status[0] if verdict.status else None)
        if verdict.verstat != VERSTAT_NONE:  # the call carried an Identity header
            log.info("call %s: identity %s (%s)", call_id, verdict.verstat, verdict.reason)
        return verdict

    @staticmethod
    def _offer_of(inv: IncomingInvite) -> SessionDescription:
        if not inv.remote_sdp:
            raise _Reject(488, "Not Acceptable Here - SDP offer required")
        content_type = (inv.invite.content_type or "").lower()
        if content_type != "application/sdp":
            # RFC 3261 §21.4.13: a body we cannot read is refused, with what we accept
            raise _Reject(415, "Unsupported Media Type", [("Accept", "application/sdp")])
        try:
            return SessionDescription.parse(inv.remote_sdp)
        except SdpParseError as e:
            raise _Reject(400, f"Bad Request - SDP: {e}"[:120], [_warning(399, e)]) from e

    async def _bind(self) -> _MediaSocket:
        try:
            port, transport, proto = await self.ports.bind(
                self.options.bind_ip or self.options.local_ip, RtpProtocol)
        except PortsExhausted as e:
            raise _Reject(503, "Service Unavailable - no media ports",
                          [("Retry-After", "5")]) from e
        return _MediaSocket(port, transport, proto)

    def _release(self, sock: _MediaSocket | None) -> None:
        """Give back a port no media session took over."""
        if sock is not None:
            sock.transport.close()
            self.ports.release(sock.port)

    def _invited(self, call_id: str, session: InviteSession | None, direction: str,
                 caller: str, callee: str, **extra: Any) -> None:
        self.bus.publish("call.invite", call_id, direction=direction, caller=caller,
                         callee=callee, sip_call_id=session.call_id if session else "",
                         at=self.clock.wall(), **extra)

    def _ended_unanswered(self, call_id: str, session: InviteSession | None, disposition: str,
                          cause: str = "", status: int | None = None, *,
                          trace: list[dict[str, Any]] | None = None) -> None:
        side = "engine"
        if session is not None and session.ended.done():
            end = session.ended.result()
            cause, side, status = cause or end.cause, end.side, end.status
        self.bus.publish("call.ended", call_id, disposition=disposition, cause=cause, side=side,
                         sip_status=status, at=self.clock.wall(),
                         direction=session.direction if session else "outbound",
                         **({"trace": trace} if trace else {}))

    def _sources(self, sdp_host: str, signalling_host: str) -> frozenset[str] | None:
        return frozenset({sdp_host, signalling_host}) if self.options.strict_source else None

    def _media(self, chosen: Any, sock: _MediaSocket, signalling_host: str) -> MediaSession:
        return MediaSession(
            codec=chosen.codec, payload_type=chosen.payload_type,
            telephone_event_pt=chosen.telephone_event_pt,
            remote=(chosen.remote_ip, chosen.remote_port), local_port=sock.port,
            transport=sock.transport, protocol=sock.protocol, symmetric=self.options.symmetric,
            media_timeout_s=self.options.media_timeout_s,
            inband_dtmf=self.options.inband_dtmf,  # type: ignore[arg-type]
            clock=self.clock,
            allowed_sources=self._sources(chosen.remote_ip, signalling_host),
        )

    def _call(self, call_id: str, session: InviteSession, media: MediaSession, *,
              answer_sdp: bytes | None, caller: str, callee: str) -> SipCall:
        signalling_host = (session.source.host if isinstance(session, IncomingInvite)
                           else session.dest.host if isinstance(session, OutgoingInvite) else "")
        call = SipCall(call_id=call_id, caller=caller, callee=callee, session=session,
                       media=media, clock=self.clock, prompts=self.prompts,
                       local_ip=self.options.local_ip, answer_sdp=answer_sdp,
                       sources=(lambda sdp_host: self._sources(sdp_host, signalling_host)),
                       on_answer=self._answered, recordings_dir=self.options.recordings_dir,
                       speech=self.speech, transfer_bridge=self._bridge_transfer)

        def on_media_timeout() -> None:
            self.tasks.spawn(call.hangup("media_timeout"), f"media-timeout-{call_id}")

        media.on_media_timeout = on_media_timeout
        return call

    def _answered(self, call: SipCall) -> None:
        if self.options.record_calls and call.media.recorder is None:
            call.media.recorder = Recorder(self.options.recordings_dir / f"{call.call_id}.wav")
        call.media.last_rx = self.clock.now()
        self.pacer.add(call.media)
        self.bus.publish("call.answered", call.call_id, at=self.clock.wall(),
                         codec=call.media.codec, direction=call.session.direction)

    async def _run(self, call: SipCall, port: int, app: CallApp | None = None) -> None:
        """Run ``app`` (outbound: the caller's; inbound: the router's choice) to the end."""
        self.calls[call.call_id] = call
        self.bus.publish("call.started", call.call_id, caller=call.caller, callee=call.callee)
        try:
            await run_app(call, app or self.router(call), unanswered_reason="app_error")
        finally:
            await self._teardown(call, port)

    async def _teardown(self, call: SipCall, port: int) -> None:
        media = call.media
        self.pacer.remove(media)
        recording = await save_recording(media.recorder, call.call_id)
        media.close()
        self.ports.release(port)
        js = media.jitter.stats
        self.rtp_totals.update(received=media.stats.rx_packets, foreign=media.stats.rx_foreign,
                               lost=js.lost, late=js.late)
        end = call.ended.result() if call.ended.done() else None
        cause, side = (end.cause, end.side) if end is not None else ("", "")
        if media.timed_out:
            cause, side = "media_timeout", "system"
        if call.answered:
            disposition = "answered"
        elif end is not None and end.cause in ("cancelled", "busy", "no_answer", "rejected"):
            disposition = end.cause
        else:
            disposition = "failed"
        self.calls.pop(call.call_id, None)
        self.bus.publish(
            "call.ended", call.call_id, direction=call.session.direction,
            disposition=disposition, cause=cause, side=side,
            sip_status=end.status if end is not None else None, at=self.clock.wall(),
            digits="".join(call.digits.history), trace=call.trace.as_list(),
            recording_path=recording,
            media={"rx": media.stats.rx_packets, "tx": media.stats.tx_packets,
                   "rx_bad": media.stats.rx_bad, "rx_foreign": media.stats.rx_foreign,
                   "dtmf_rx": media.stats.dtmf_rx,
                   "dtmf_tx": media.stats.dtmf_tx, "jitter": media.jitter.stats.as_dict(),
                   "latched": media.stats.latched})

    # -- outbound ------------------------------------------------------------------------------

    async def originate(self, target: str, app: CallApp, *, from_user: str = "ivr",
                        from_display: str | None = None, creds: Credentials | None = None,
                        ring_timeout_s: float = 60.0,
                        headers: list[tuple[str, str]] | None = None,
                        abandon: asyncio.Future[Any] | None = None,
                        tenant: str | None = None, call_id: str | None = None) -> CallRecord:
        """Place a call to ``target`` and run ``app`` once answered. Returns the call record.

        ``abandon``: when it completes while the target still rings (the first leg of a bridge
        hung up), the INVITE is cancelled (``no_answer``, cause ``abandoned``). Unanswered calls
        end ``busy``, ``no_answer`` (rang out, 408, 480), ``rejected`` (603) or ``failed`` (404,
        5xx, no response, an unreachable or unresolvable target), with the cause and status:
        see :mod:`engine.dispositions`. ``call_id``: the id the call's events and record will
        carry (the console hands it to a watcher before the call starts); a new one by default.
        """
        call_id = call_id or str(uuid.uuid4())
        record = self.records.expect(call_id)
        extra = {"tenant": tenant} if tenant else {}
        sock: _MediaSocket | None = None
        try:
            sock = await self._bind()
        except _Reject as r:
            self._invited(call_id, None, "outbound", from_user, target, **extra)
            self._ended_unanswered(call_id, None, "failed", "no_media_ports", r.status)
            return await record
        offer = build_offer(self.options.local_ip, sock.port, self.options.codecs,
                            session_id=random.randint(1, 2**31))
        try:
            session: OutgoingInvite = await self.ua.invite(
                target, offer.serialize(), from_user=from_user, from_display=from_display,
                creds=creds, headers=headers)
        except (CallFailed, OSError, ValueError) as e:
            self._release(sock)
            self._invited(call_id, None, "outbound", from_user, target, **extra)
            status = e.status if isinstance(e, CallFailed) else None
            log.info("call to %s not placed: %s", target, e)
            self._ended_unanswered(call_id, None, "failed", f"network_error: {e}"[:64], status)
            return await record
        self._invited(call_id, session, "outbound", from_user, target, **extra)
        resp, abandoned = await self._await_answer(session, ring_timeout_s, abandon)
        if resp is None:
            self._release(sock)
            self._ended_unanswered(call_id, session, outbound_disposition(session),
                                   "abandoned" if abandoned else "")
            return await record
        try:
            chosen = parse_answer(offer, SessionDescription.parse(resp.body))
            media = self._media(chosen, sock, session.dest.host)
        except (SdpParseError, SdpNegotiationError) as e:
            log.warning("call %s: unusable SDP answer: %s", call_id, e)
            await session.bye("bad_sdp")
            self._release(sock)
            self._ended_unanswered(call_id, session, "failed", "bad_sdp")
            return await record
        except BaseException:
            self._release(sock)
            raise
        call = self._call(call_id, session, media, answer_sdp=None, caller=from_user,
                          callee=target)
        self._answered(call)
        await self._run(call, sock.port, app)
        return await record

    async def _await_answer(self, session: OutgoingInvite, ring_timeout_s: float,
                            abandon: asyncio.Future[Any] | None,
                            ) -> tuple[SipResponse | None, bool]:
        """(the 2xx or None, whether the caller abandoned it). None when the call failed, rang
        out (then CANCEL) or was abandoned (CANCEL too)."""
        waiters: set[asyncio.Future[Any]] = {session.answered}
        if abandon is not None:
            waiters.add(abandon)
        try:
            await self.clock.wait_for(
                asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED), ring_timeout_s)
        except TimeoutError:
            pass
        if session.answered.done():
            try:
                return session.answered.result(), False
            except CallFailed:
                return None, False
        await session.cancel()  # rang out, or whoever wanted the call is gone
        return None, abandon is not None and abandon.done()

    async def _bridge_transfer(self, call: SipCall, target: str) -> TransferResult:
        return await bridge_to(self, call, target)

    async def stop(self, drain_s: float = 5.0) -> None:
        await self.tasks.close(grace_s=drain_s)
        self.records.close()


__all__ = ["CODECS", "CallApp", "CallController", "MediaOptions", "Router"]
