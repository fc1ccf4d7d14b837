"""The Asterisk backend's controller: AudioSocket connections become calls; calls are placed
with AMI ``Originate``.

Inbound: the operator's dialplan answers, sets ``IVR_UUID=${UUID()}`` and runs
``AudioSocket(${IVR_UUID},<engine>)`` (docs/asterisk.md). The ``VarSet`` event of ``IVR_UUID``
tells which channel the connection carrying that UUID belongs to (caller ID, dialled number,
other ``IVR_*`` variables); the connection may come first, so it waits up to
``channel_wait_s`` for the event (not at all while AMI is down: the call then runs with what
the connection alone says). The dialled number picks the flow exactly as for SIP.

Outbound (:meth:`AsteriskController.originate`, the dialler interface): an asynchronous
``Originate`` whose channel runs ``AudioSocket`` with the call's id as UUID once answered; the
channel's Uniqueid is the call's id too (``ChannelId``), so its events need no lookup.

The record: ``call.invite``, ``call.answered`` and ``call.ended`` on the bus, as the SIP
controller publishes them, with ``backend="asterisk"``; the one
:class:`~engine.cdr_builder.CallRecordBuilder` assembles the same call record.

How a call's end is read: the AudioSocket connection closing says *that* the channel left the
app; *why* comes from the channel's ``Hangup`` event (Q.850 cause), or from Asterisk itself
going away (``Shutdown`` event, AMI connection lost): the controller waits up to
``end_grace_s`` for either before settling on a plain caller hang-up.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from core.bus import EventBus
from core.call import Call
from core.clock import Clock
from core.tasks import TaskScope, awaited
from engine.ami.audioserver import AudioSocketConnection, AudioSocketServer
from engine.ami.call import AsteriskCall, ChannelInfo
from engine.ami.client import AmiClient
from engine.ami.events import (
    SOFTHANGUP_SHUTDOWN,
    AmiEvent,
    HangupEvent,
    ShutdownEvent,
    SoftHangupRequestEvent,
    VarSetEvent,
)
from engine.ami.originate import Originator
from engine.cdr import CallRecord
from engine.cdr_builder import CallRecordBuilder
from engine.dispositions import Q850_TO_CAUSE
from engine.media.prompts import PromptCache
from engine.media.recorder import Recorder, save_recording
from engine.rtp.pacer import Pacer
from engine.sipcall.base import SpeechHooks, run_app

log = logging.getLogger("ivr.ami")

BACKEND = "asterisk"
CODEC = "slin"  # what the engine hears: Asterisk transcodes the caller's codec
MAX_TRACKED_CHANNELS = 10_000  # IVR_* variables kept per channel until its Hangup
LOST_WINDOW_S = 5.0  # an AudioSocket EOF this soon after AMI lost Asterisk: Asterisk went

CallApp = Callable[[Call], Awaitable[None]]
Router = Callable[[Call], CallApp]


@dataclass
class AsteriskOptions:
    audiosocket_host: str = "127.0.0.1"
    audiosocket_port: int = 9092
    # The host:port Asterisk connects to for Originate'd calls (default: the listen address).
    audiosocket_advertise: str | None = None
    transfer_context: str | None = "ivr-transfer"
    outbound_context: str | None = None  # None: Originate runs AudioSocket directly
    # How a dialled number becomes an Originate channel; a target containing "/" is used as is.
    dial_template: str = "PJSIP/{number}"
    channel_wait_s: float = 2.0
    end_grace_s: float = 1.0
    media_timeout_s: float = 30.0
    record_calls: bool = False
    recordings_dir: Path = Path("var/recordings")
    audiosocket_allow: tuple[str, ...] = ("127.0.0.0/8", "::1/128")  # Asterisk's networks
    max_calls: int = 1000


def hangup_cause(q850: int) -> str:
    """The engine's cause word for a Q.850 cause of an answered call's hang-up."""
    if q850 in (0, 16, 31):
        return "normal"
    return Q850_TO_CAUSE.get(q850, f"q850_{q850}")


class AsteriskController:
    def __init__(self, *, ami: AmiClient | None, pacer: Pacer, clock: Clock, router: Router,
                 options: AsteriskOptions, bus: EventBus, records: CallRecordBuilder,
                 speech: SpeechHooks | None = None, prompts: PromptCache | None = None) -> None:
        self.ami = ami
        self.pacer = pacer
        self.clock = clock
        self.router = router
        self.options = options
        self.bus = bus
        self.records = records
        self.speech = speech
        self.prompts = prompts or PromptCache()
        self.server = AudioSocketServer(self._on_connection, clock,
                                        media_timeout_s=options.media_timeout_s,
                                        allow=options.audiosocket_allow,
                                        max_connections=options.max_calls)
        self.calls: dict[str, AsteriskCall] = {}
        self.tasks = TaskScope("asterisk-calls")
        self.address: tuple[str, int] | None = None
        self._channels: OrderedDict[str, ChannelInfo] = OrderedDict()  # by Uniqueid
        self._by_uuid: dict[str, ChannelInfo] = {}
        self._uuid_waiters: dict[str, asyncio.Future[ChannelInfo]] = {}
        self._calls_by_uniqueid: dict[str, AsteriskCall] = {}
        self._gone_at: float | None = None  # when AMI last saw Asterisk go (loss, Shutdown)
        self._gone_cause = ""
        self._gone = asyncio.Event()
        self._removers: list[Callable[[], None]] = []
        self.originator = Originator(self)

    # -- lifecycle -----------------------------------------------------------------------------

    async def start(self) -> tuple[str, int]:
        o = self.options
        self.address = await self.server.start(o.audiosocket_host, o.audiosocket_port)
        if self.ami is not None:
            self._removers += [
                self.ami.on_event("VarSet", self._on_varset, containing=b"Variable: IVR_"),
                self.ami.on_event("Hangup", self._on_hangup),
                self.ami.on_event("Shutdown", self._on_shutdown),
                self.ami.on_event("SoftHangupRequest", self._on_softhangup),
                self.ami.on_connection(self._on_ami_connection),
            ]
            self._removers += self.originator.listen(self.ami)
        return self.address

    @property
    def advertise(self) -> str:
        """Where Asterisk reaches the AudioSocket server (``host:port``)."""
        if self.options.audiosocket_advertise:
            return self.options.audiosocket_advertise
        assert self.address is not None
        return f"{self.address[0]}:{self.address[1]}"

    @property
    def dial_template(self) -> str:
        return self.options.dial_template

    @property
    def outbound_context(self) -> str | None:
        return self.options.outbound_context

    @property
    def accepting(self) -> bool:
        return self.server.accepting

    def stop_accepting(self) -> None:
        """New AudioSocket connections are refused (Asterisk's app fails and its dialplan
        goes on at the next priority); calls in progress go on."""
        self.server.stop_listening()

    async def stop(self, drain_s: float = 5.0) -> None:
        """Stop accepting, let calls finish for ``drain_s``, hang up the rest (cause
        ``shutdown``), close the server."""
        self.stop_accepting()
        await self.tasks.wait(drain_s)
        for call in list(self.calls.values()):
            await call.hangup("shutdown")
        await self.tasks.wait(2.0)
        await self.tasks.close(grace_s=2.0)
        await self.server.stop()
        for remove in self._removers:
            remove()

    # -- AMI events (synchronous listeners: cheap, never raise) --------------------------------

    def _track(self, ev: VarSetEvent | HangupEvent) -> ChannelInfo:
        info = self._channels.get(ev.uniqueid)
        if info is None:
            info = self._channels[ev.uniqueid] = ChannelInfo(uniqueid=ev.uniqueid)
            if len(self._channels) > MAX_TRACKED_CHANNELS:
                _, old = self._channels.popitem(last=False)
                self._by_uuid.pop(old.variables.get("IVR_UUID", "").lower(), None)
        info.channel = ev.channel or info.channel
        info.linkedid = ev.linkedid or info.linkedid
        info.caller_id_num = ev.caller_id_num or info.caller_id_num
        info.caller_id_name = ev.caller_id_name or info.caller_id_name
        info.exten, info.context = ev.exten or info.exten, ev.context or info.context
        info.state = ev.state
        return info

    def _on_varset(self, event: AmiEvent) -> None:
        assert isinstance(event, VarSetEvent)
        if not event.variable.startswith("IVR_") or not event.uniqueid:
            return
        info = self._track(event)
        info.variables[event.variable] = event.value
        if event.variable == "IVR_UUID":
            self._by_uuid[event.value.lower()] = info
            waiter = self._uuid_waiters.pop(event.value.lower(), None)
            if waiter is not None and not waiter.done():
                waiter.set_result(info)

    def _on_hangup(self, event: AmiEvent) -> None:
        assert isinstance(event, HangupEvent)
        info = self._channels.pop(event.uniqueid, None)
        if info is not None:
            self._by_uuid.pop(info.variables.get("IVR_UUID", "").lower(), None)
        call = self._calls_by_uniqueid.get(event.uniqueid)
        if call is not None and not call.hangup_cause.done():
            call.hangup_cause.set_result(event.cause)

    def _on_softhangup(self, event: AmiEvent) -> None:
        """Asterisk hangs up every channel before its ``Shutdown`` event: this is the sign."""
        assert isinstance(event, SoftHangupRequestEvent)
        if event.cause & SOFTHANGUP_SHUTDOWN and self._asterisk_gone_recently() is None:
            self._went("asterisk_shutdown")

    def _on_shutdown(self, event: AmiEvent) -> None:
        assert isinstance(event, ShutdownEvent)
        self._went("asterisk_restart" if event.restart else "asterisk_shutdown")

    def _on_ami_connection(self, up: bool, reason: str) -> None:
        if up:  # Asterisk is back: ends from now on are ordinary again
            self._gone.clear()
            self._gone_at = None
            return
        if self._gone_at is None or self.clock.now() - self._gone_at > LOST_WINDOW_S:
            self._went("asterisk_lost")

    def _went(self, cause: str) -> None:
        self._gone_at, self._gone_cause = self.clock.now(), cause
        self._gone.set()
        log.warning("Asterisk went away (%s); %d calls in progress", cause, len(self.calls))

    def _asterisk_gone_recently(self) -> str | None:
        if self._gone_at is not None and self.clock.now() - self._gone_at <= LOST_WINDOW_S:
            return self._gone_cause
        return None

    # -- inbound -------------------------------------------------------------------------------

    def _on_connection(self, conn: AudioSocketConnection) -> None:
        assert conn.uuid is not None
        if self.originator.claim(conn):
            return
        self.tasks.spawn(self._inbound(conn), f"call-{conn.uuid}")

    async def _channel_info(self, call_uuid: str) -> ChannelInfo | None:
        key = call_uuid.lower()
        info = self._by_uuid.get(key)
        if info is not None or self.ami is None or not self.ami.connected:
            return info
        waiter = self._uuid_waiters.get(key)
        if waiter is None:
            waiter = self._uuid_waiters[key] = asyncio.get_running_loop().create_future()
        try:
            return await self.clock.wait_for(asyncio.shield(waiter), self.options.channel_wait_s)
        except TimeoutError:
            log.warning("call %s: no VarSet of IVR_UUID within %.1f s; caller and dialled "
                        "number unknown", call_uuid, self.options.channel_wait_s)
            return None
        finally:
            self._uuid_waiters.pop(key, None)

    async def _inbound(self, conn: AudioSocketConnection) -> None:
        assert conn.uuid is not None and conn.media is not None
        call_id = str(uuid.uuid4())  # never the dialplan's UUID: records must not collide
        info = await self._channel_info(conn.uuid) or ChannelInfo()
        callee = info.variables.get("IVR_CALLEE") or info.exten
        self.bus.publish("call.invite", call_id, direction="inbound", caller=info.caller_id_num,
                         callee=callee, sip_call_id=info.uniqueid, at=self.clock.wall(),
                         backend=BACKEND, channel=info.channel)
        call = self._new_call(call_id, conn, info, "inbound", caller=info.caller_id_num,
                              callee=callee)
        if conn.closed.done():  # the caller was gone before the call could start
            await self._finish(call, conn)
            return
        self._answered(call)
        await self._run(call, conn, self.router(call))

    def _new_call(self, call_id: str, conn: AudioSocketConnection, info: ChannelInfo,
                  direction: str, *, caller: str, callee: str) -> AsteriskCall:
        assert conn.media is not None
        call = AsteriskCall(call_id=call_id, caller=caller, callee=callee, direction=direction,
                            media=conn.media, channel=info, ami=self.ami, clock=self.clock,
                            prompts=self.prompts, recordings_dir=self.options.recordings_dir,
                            speech=self.speech, transfer_context=self.options.transfer_context)
        call.trace.add("asterisk.channel", channel=info.channel, uniqueid=info.uniqueid,
                       caller_name=info.caller_id_name, context=info.context, exten=info.exten,
                       variables=dict(info.variables))
        self.calls[call_id] = call
        if info.uniqueid:
            self._calls_by_uniqueid[info.uniqueid] = call

        def on_media_timeout() -> None:
            self.tasks.spawn(call.hangup("media_timeout"), f"media-timeout-{call_id}")

        conn.media.on_media_timeout = on_media_timeout
        return call

    def _answered(self, call: AsteriskCall) -> None:
        if self.options.record_calls:
            call.media.recorder = Recorder(self.options.recordings_dir / f"{call.call_id}.wav")
        call.media.last_rx = self.clock.now()
        self.pacer.add(call.media)
        call.trace.add("answer")
        self.bus.publish("call.answered", call.call_id, at=self.clock.wall(), codec=CODEC,
                         direction=call.direction, backend=BACKEND)

    async def _run(self, call: AsteriskCall, conn: AudioSocketConnection, app: CallApp) -> None:
        self.bus.publish("call.started", call.call_id, caller=call.caller, callee=call.callee)
        watcher = self.tasks.spawn(self._watch_end(call, conn), f"end-{call.call_id}")
        try:
            await run_app(call, app, unanswered_reason="normal")
        finally:
            await self._finish(call, conn, watcher)

    async def _watch_end(self, call: AsteriskCall, conn: AudioSocketConnection) -> None:
        """The connection closed: learn why, then end the call (unless the engine ended it)."""
        reason = await asyncio.shield(conn.closed)
        if not call.is_active:
            return
        cause, side, q850 = await self._end_reason(call, reason)
        call.end(cause, side, q850)

    async def _end_reason(self, call: AsteriskCall, reason: str,
                          ) -> tuple[str, str, int | None]:
        if call.transferring:
            return "transferred", "engine", None  # the Redirect took the channel away
        gone = self._asterisk_gone_recently()
        if gone is None and self.ami is not None and self.ami.connected and call.channel.uniqueid:
            went: asyncio.Future[object] = awaited(self._gone.wait(), f"gone-{call.call_id}")
            either: set[asyncio.Future[object]] = {call.hangup_cause, went}  # type: ignore[arg-type]
            try:
                await self.clock.wait_for(
                    asyncio.wait(either, return_when=asyncio.FIRST_COMPLETED),
                    self.options.end_grace_s)
            except TimeoutError:
                pass
            finally:
                went.cancel()
            gone = self._asterisk_gone_recently()
        if gone is not None:
            return gone, "system", None
        if call.hangup_cause.done():
            q850 = call.hangup_cause.result()
            return hangup_cause(q850), "caller", q850
        if reason.startswith(("protocol_error", "reset")):
            return "media_error", "system", None
        return "normal", "caller", None

    async def _finish(self, call: AsteriskCall, conn: AudioSocketConnection,
                      watcher: asyncio.Task[None] | None = None) -> None:
        if watcher is not None and not watcher.done():
            if call.is_active:  # still learning why the connection closed
                await asyncio.wait({watcher}, timeout=self.options.end_grace_s + 0.5)
            watcher.cancel()
        if call.is_active:
            call.end("normal", "caller")
        media = call.media
        self.pacer.remove(media)
        recording = await save_recording(media.recorder, call.call_id)
        conn.close()
        end = call.ended.result()
        cause, side = end.cause, end.side
        if media.timed_out:
            cause, side = "media_timeout", "system"
        self.calls.pop(call.call_id, None)
        self._calls_by_uniqueid.pop(call.channel.uniqueid, None)
        self.bus.publish(
            "call.ended", call.call_id, direction=call.direction, disposition="answered",
            cause=cause, side=side, sip_status=None, at=self.clock.wall(),
            digits="".join(call.digits.history), trace=call.trace.as_list(),
            recording_path=recording, backend=BACKEND, q850=end.q850,
            media={**media.stats.as_dict(), "channel": call.channel.channel,
                   "uniqueid": call.channel.uniqueid, "audiosocket_errors": conn.errors})

    # -- outbound ------------------------------------------------------------------------------

    async def run_answered(self, call_id: str, conn: AudioSocketConnection, info: ChannelInfo,
                           *, caller: str, callee: str, app: CallApp) -> None:
        call = self._new_call(call_id, conn, info, "outbound", caller=caller, callee=callee)
        self._answered(call)
        await self._run(call, conn, app)

    async def originate(self, target: str, app: CallApp, *, caller_id: str | None = None,
                        variables: dict[str, str] | None = None, ring_timeout_s: float = 60.0,
                        tenant: str | None = None, headers: Sequence[tuple[str, str]] = (),
                        call_id: str | None = None) -> CallRecord:
        """Place a call through Asterisk and run ``app`` once answered; returns the call
        record (see :class:`~engine.ami.originate.Originator`). ``headers``: SIP headers for
        the INVITE Asterisk's PJSIP sends; ``call_id``: a UUID for the call (new by default)."""
        return await self.originator.originate(target, app, caller_id=caller_id,
                                               variables=variables,
                                               ring_timeout_s=ring_timeout_s, tenant=tenant,
                                               headers=headers, call_id=call_id)

