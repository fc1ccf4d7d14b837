"""The call controller: turns an INVITE into a running call, and places calls.

Inbound: negotiate SDP (488 when nothing fits), bind an RTP port, build the media session and
the ``SipCall``, pick the application for the dialled number, run it, then tear down and write
the call record whatever happened. Outbound: offer SDP, wait for the answer, same from there.
One task per call, named after it, created through ``core.tasks``.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from core.bus import EventBus
from core.call import CallHungUp, TransferResult
from core.clock import Clock
from core.tasks import TaskScope
from engine.bridge import bridge_to
from engine.cdr import CallRecord, CdrWriter
from engine.media.ports import PortAllocator, PortsExhausted
from engine.media.prompts import PromptCache
from engine.media.recorder import Recorder
from engine.media.session import CODECS, MediaSession, _RtpProtocol
from engine.rtp.pacer import Pacer
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


class CallController:
    def __init__(self, *, ua: UserAgent, pacer: Pacer, ports: PortAllocator, clock: Clock,
                 cdr: CdrWriter, router: Router, options: MediaOptions,
                 bus: EventBus | None = None, speech: SpeechHooks | None = None) -> None:
        self.ua = ua
        self.pacer = pacer
        self.ports = ports
        self.clock = clock
        self.cdr = cdr
        self.router = router
        self.options = options
        self.bus = bus or EventBus()
        self.speech = speech
        self.prompts = PromptCache()
        self.calls: dict[str, SipCall] = {}
        self.tasks = TaskScope("calls")
        ua.handler = self

    # -- inbound -------------------------------------------------------------------------------

    def on_invite(self, session: IncomingInvite) -> None:
        self.tasks.spawn(self._inbound(session), f"call-{session.call_id}")

    async def _inbound(self, inv: IncomingInvite) -> None:
        rec = CallRecord(sip_call_id=inv.call_id, direction="inbound", from_number=inv.caller,
                         to_number=inv.callee)
        self.bus.publish("call.invite", rec.id, caller=rec.from_number, callee=rec.to_number)
        if not inv.remote_sdp:
            inv.reject(488, "Not Acceptable Here - SDP offer required")
            return self._finish_unanswered(rec, inv, "rejected")
        try:
            offer = SessionDescription.parse(inv.remote_sdp)
        except SdpParseError as e:
            inv.reject(400, f"Bad Request - SDP: {e}"[:120])
            return self._finish_unanswered(rec, inv, "rejected")
        try:
            port, transport, proto = await self.ports.bind(self.options.local_ip, _RtpProtocol)
        except PortsExhausted:
            inv.reject(503, "Service Unavailable - no media ports",
                       [("Retry-After", "5")])
            return self._finish_unanswered(rec, inv, "rejected")
        try:
            answer, chosen = negotiate_answer(
                offer, supported=self.options.codecs, local_ip=self.options.local_ip,
                local_port=port, session_id=random.randint(1, 2**31))
        except SdpNegotiationError as e:
            transport.close()
            self.ports.release(port)
            inv.reject(488, "Not Acceptable Here", [("Warning", f'304 ivr "{e}"'[:200])])
            return self._finish_unanswered(rec, inv, "rejected")
        media = self._media(chosen, port, transport, proto)
        call = self._call(inv, media, rec, answer.serialize())
        inv.ring()
        await self._run(call, port)

    def _finish_unanswered(self, rec: CallRecord, session: InviteSession, disp: str) -> None:
        rec.end_at = time.time()
        rec.disposition = disp
        if session.ended.done():
            end = session.ended.result()
            rec.hangup_cause, rec.hangup_side, rec.sip_status = end.cause, end.side, end.status
        self.cdr.put(rec)
        self.bus.publish("call.ended", rec.id, disposition=disp, direction=rec.direction)

    def _media(self, chosen: Any, port: int, transport: asyncio.DatagramTransport,
               proto: _RtpProtocol) -> MediaSession:
        return MediaSession(
            codec=chosen.codec, payload_type=chosen.payload_type,
            telephone_event_pt=chosen.telephone_event_pt,
            remote=(chosen.remote_ip, chosen.remote_port), local_port=port,
            transport=transport, protocol=proto, symmetric=self.options.symmetric,
            media_timeout_s=self.options.media_timeout_s,
            inband_dtmf=self.options.inband_dtmf,  # type: ignore[arg-type]
            now=self.clock.now,
        )

    def _call(self, session: InviteSession, media: MediaSession, rec: CallRecord,
              answer_sdp: bytes | None) -> SipCall:
        rec.codec = media.codec
        call = SipCall(session=session, media=media, record=rec, clock=self.clock,
                       prompts=self.prompts, answer_sdp=answer_sdp, on_answer=self._answered,
                       recordings_dir=self.options.recordings_dir, speech=self.speech,
                       transfer_bridge=self._bridge_transfer)
        def on_media_timeout() -> None:
            self.tasks.spawn(call.hangup("media_timeout"), f"media-timeout-{rec.id}")

        media.on_media_timeout = on_media_timeout
        return call

    def _answered(self, call: SipCall) -> None:
        if self.options.record_calls and call.media.recorder is None:
            call.media.recorder = Recorder(self.options.recordings_dir / f"{call.call_id}.wav")
        call.media.last_rx = self.clock.now()
        self.pacer.add(call.media)
        self.bus.publish("call.answered", call.call_id)

    async def _run(self, call: SipCall, port: int, app: CallApp | None = None) -> None:
        """Run ``app`` (outbound: the caller's; inbound: the router's choice) to the end."""
        rec = call.record_
        self.calls[rec.id] = call
        self.bus.publish("call.started", rec.id, caller=rec.from_number, callee=rec.to_number)
        try:
            await (app or self.router(call))(call)
        except CallHungUp:
            pass
        except Exception as e:
            log.exception("call %s: application failed", rec.id)
            call.trace.add("error", error=repr(e)[:200])
        finally:
            if call.is_active:
                try:
                    await call.hangup("normal" if call.answered else "app_error")
                except Exception:  # teardown must go on whatever BYE did
                    log.exception("call %s: hangup failed", rec.id)
            await self._teardown(call, port)

    async def _teardown(self, call: SipCall, port: int) -> None:
        rec = call.record_
        media = call.media
        self.pacer.remove(media)
        if media.recorder is not None:
            try:
                rec.recording_path = str(await media.recorder.save())
            except OSError as e:
                log.warning("call %s: recording not saved: %s", rec.id, e)
        media.close()
        self.ports.release(port)
        rec.end_at = time.time()
        end = call.ended.result() if call.ended.done() else None
        if end is not None:
            rec.hangup_cause, rec.hangup_side = end.cause, end.side
            rec.sip_status = end.status
        if media._timed_out:
            rec.hangup_cause, rec.hangup_side = "media_timeout", "system"
        if call.answered:
            rec.disposition = "answered"
        elif end is not None and end.cause in ("cancelled", "busy", "no_answer", "rejected"):
            rec.disposition = end.cause
        rec.digits = "".join(call.digits.history)
        rec.trace = call.trace.as_list()
        rec.media = {"rx": media.stats.rx_packets, "tx": media.stats.tx_packets,
                     "rx_bad": media.stats.rx_bad, "dtmf_rx": media.stats.dtmf_rx,
                     "dtmf_tx": media.stats.dtmf_tx, "jitter": media.jitter.stats.as_dict(),
                     "latched": media.stats.latched}
        self.calls.pop(rec.id, None)
        self.cdr.put(rec)
        self.bus.publish("call.ended", rec.id, disposition=rec.disposition,
                         direction=rec.direction,
                         cause=rec.hangup_cause)

    # -- outbound ------------------------------------------------------------------------------

    async def originate(self, target: str, app: CallApp, *, from_user: str = "ivr",
                        from_display: str | None = None, creds: Credentials | None = None,
                        ring_timeout_s: float = 60.0,
                        headers: list[tuple[str, str]] | None = None,
                        abandon: asyncio.Future[Any] | None = None) -> CallRecord:
        """Place a call to ``target`` and run ``app`` once answered. Returns the call record.

        ``abandon``: when it completes while the target still rings (the first leg of a bridge
        hung up), the INVITE is cancelled.
        """
        port, transport, proto = await self.ports.bind(self.options.local_ip, _RtpProtocol)
        offer = build_offer(self.options.local_ip, port, self.options.codecs,
                            session_id=random.randint(1, 2**31))
        try:
            session: OutgoingInvite = await self.ua.invite(
                target, offer.serialize(), from_user=from_user, from_display=from_display,
                creds=creds, headers=headers)
        except (CallFailed, OSError) as e:
            transport.close()
            self.ports.release(port)
            rec = CallRecord(sip_call_id="", direction="outbound", from_number=from_user,
                             to_number=target, disposition="failed", hangup_cause=str(e))
            rec.end_at = time.time()
            self.cdr.put(rec)
            return rec
        rec = CallRecord(sip_call_id=session.call_id, direction="outbound",
                         from_number=from_user, to_number=target)
        resp = await self._await_answer(session, ring_timeout_s, abandon)
        if resp is None:
            transport.close()
            self.ports.release(port)
            self._finish_unanswered(rec, session, "no_answer")
            if session.ended.done():
                rec.disposition = {"busy": "busy", "cancelled": "no_answer"}.get(
                    session.ended.result().cause, "failed")
            return rec
        try:
            chosen = parse_answer(offer, SessionDescription.parse(resp.body))
        except (SdpParseError, SdpNegotiationError) as e:
            log.warning("call %s: unusable SDP answer: %s", rec.id, e)
            await session.bye("bad_sdp")
            transport.close()
            self.ports.release(port)
            self._finish_unanswered(rec, session, "failed")
            return rec
        media = self._media(chosen, port, transport, proto)
        call = self._call(session, media, rec, None)
        rec.answer_at = time.time()
        self._answered(call)
        await self._run(call, port, app)
        return rec

    @staticmethod
    async def _await_answer(session: OutgoingInvite, ring_timeout_s: float,
                            abandon: asyncio.Future[Any] | None) -> SipResponse | None:
        """The 2xx, or None when the call failed, rang out, or was abandoned (then CANCEL)."""
        waiters: set[asyncio.Future[Any]] = {session.answered}
        if abandon is not None:
            waiters.add(abandon)
        done, _ = await asyncio.wait(waiters, timeout=ring_timeout_s,
                                     return_when=asyncio.FIRST_COMPLETED)
        if session.answered in done:
            try:
                return session.answered.result()
            except CallFailed:
                return None
        await session.cancel()  # rang out, or whoever wanted the call is gone
        return None

    async def _bridge_transfer(self, call: SipCall, target: str) -> TransferResult:
        return await bridge_to(self, call, target)

    async def stop(self, drain_s: float = 5.0) -> None:
        await self.tasks.close(grace_s=drain_s)


__all__ = ["CODECS", "CallApp", "CallController", "MediaOptions", "Router"]
