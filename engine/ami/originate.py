"""Outbound calls through Asterisk: the dialler interface over AMI ``Originate``.

``originate(target, app, *, caller_id, variables, ring_timeout_s, tenant) -> CallRecord`` has
the shape of :meth:`engine.controller.CallController.originate` (docs/asterisk.md, "The dialler
interface"): it returns when the call is over, with its record, answered or not.

One Originate per call, asynchronous, whose channel runs ``AudioSocket(<call id>,<engine>)``
once answered. The call's id is the AudioSocket UUID and, through ``ChannelId``, the channel's
Uniqueid, so the connection, the ``Hangup`` event and the ``OriginateResponse`` (also matched by
its ActionID) all name the call directly. Unanswered calls end with the disposition of
:func:`engine.dispositions.asterisk_disposition`. The Originate is never sent twice: if AMI
drops after writing it, the call ends ``failed`` (``asterisk_lost``) and a late answer of that
channel is hung up.
"""

from __future__ import annotations

import asyncio
import logging
import re
import uuid
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from core.bus import EventBus
from core.call import Call
from core.clock import Clock
from engine.ami.audioserver import AudioSocketConnection
from engine.ami.call import ChannelInfo
from engine.ami.client import AmiActionFailed, AmiClient, AmiError
from engine.ami.events import AmiEvent, HangupEvent, OriginateResponseEvent
from engine.cdr import CallRecord
from engine.cdr_builder import CallRecordBuilder
from engine.dispositions import asterisk_disposition

log = logging.getLogger("ivr.ami.originate")

ORIGINATE_MARGIN_S = 5.0  # beyond the ring timeout Asterisk enforces, before we give up
CONNECT_WAIT_S = 5.0  # answered: the AudioSocket connection should follow at once
RESULT_GRACE_S = 1.0  # a failed Originate: wait this long for the channel's Hangup cause
MAX_ABANDONED = 1000
_VARIABLE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_CALLER_NUMBER = re.compile(r"<([^>]*)>")
_HEADER_NAME = re.compile(r"^[A-Za-z0-9!%*_+`'~.-]+$")  # a SIP token (RFC 3261 25.1)


@dataclass(eq=False)
class _Attempt:
    call_id: str
    connected: asyncio.Future[AudioSocketConnection]
    response: asyncio.Future[OriginateResponseEvent]
    hangup: asyncio.Future[int]
    lost: asyncio.Future[str]


CallApp = Callable[[Call], Awaitable[None]]


class OriginateHost(Protocol):
    """What the originator needs from the Asterisk controller."""

    ami: AmiClient | None
    bus: EventBus
    records: CallRecordBuilder
    clock: Clock

    @property
    def advertise(self) -> str:
        """Where Asterisk reaches the AudioSocket server (``host:port``)."""
        ...

    @property
    def dial_template(self) -> str: ...

    @property
    def outbound_context(self) -> str | None:
        """A dialplan context for answered outbound calls (None: run AudioSocket directly)."""
        ...

    async def run_answered(self, call_id: str, conn: AudioSocketConnection, info: ChannelInfo,
                           *, caller: str, callee: str, app: CallApp) -> None:
        """Run ``app`` on the answered call until it ends (its record is then published)."""
        ...


def caller_number(caller_id: str | None) -> str:
    """The number of a caller ID (``"Name" <number>`` or a bare number)."""
    if not caller_id:
        return ""
    m = _CALLER_NUMBER.search(caller_id)
    return (m.group(1) if m else caller_id).strip()


def variable_line(name: str, value: str) -> str:
    """``name=value`` for one ``Variable`` header. Asterisk splits the header on commas and
    drops quotes and backslashes (``AST_STANDARD_APP_ARGS``), so those are escaped: the
    dialplan sees the value as given."""
    if not _VARIABLE.match(name):
        raise ValueError(f"variables: {name!r} is not a valid channel variable name")
    return f"{name}={_escape(value)}"


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace(",", "\\,").replace('"', '\\"')


def header_line(name: str, value: str) -> str:
    """``PJSIP_HEADER(add,Name)=value`` for one ``Variable`` header: Asterisk sets it on the
    outgoing PJSIP channel before it sends the INVITE, so the header reaches the trunk (the
    SIP dialler's ``headers``: P-Asserted-Identity, Privacy, Identity, Call-Info)."""
    if not _HEADER_NAME.match(name):
        raise ValueError(f"headers: {name!r} is not a SIP header name")
    return f"PJSIP_HEADER(add,{name})={_escape(value)}"


def call_uuid(call_id: str | None) -> str:
    """A new call id, or the caller's own in canonical form: it is AudioSocket's 16-byte UUID
    and the channel's Uniqueid too, so it must be a UUID."""
    if not call_id:
        return str(uuid.uuid4())
    try:
        return str(uuid.UUID(call_id))
    except ValueError as e:
        raise ValueError(f"call_id: {call_id!r} is not a UUID (AudioSocket needs one)") from e


class Originator:
    def __init__(self, host: OriginateHost) -> None:
        self.c = host
        self._attempts: dict[str, _Attempt] = {}
        self._abandoned: OrderedDict[str, None] = OrderedDict()

    def listen(self, ami: AmiClient) -> list[Callable[[], None]]:
        """Start reading the events originated calls need; returns their removers."""
        return [ami.on_event("OriginateResponse", self._on_response),
                ami.on_event("Hangup", self._on_hangup),
                ami.on_connection(self._on_connection)]

    def channel_for(self, target: str) -> str:
        """The Originate channel: a target with ``/`` as is (``PJSIP/1000@trunk``), else the
        configured template with the number (``PJSIP/{number}``)."""
        if "/" in target:
            return target
        number = target.removeprefix("tel:").removeprefix("sip:")
        return self.c.dial_template.format(number=number, target=target)

    # -- events --------------------------------------------------------------------------------

    def _on_response(self, event: AmiEvent) -> None:
        assert isinstance(event, OriginateResponseEvent)
        attempt = self._attempts.get(event.uniqueid)
        if attempt is None and event.action_id.startswith("originate-"):
            attempt = self._attempts.get(event.action_id.removeprefix("originate-"))
        if attempt is not None and not attempt.response.done():
            attempt.response.set_result(event)

    def _on_hangup(self, event: AmiEvent) -> None:
        assert isinstance(event, HangupEvent)
        attempt = self._attempts.get(event.uniqueid)
        if attempt is not None and not attempt.hangup.done():
            attempt.hangup.set_result(event.cause)

    def _on_connection(self, up: bool, reason: str) -> None:
        if up:
            return
        for attempt in self._attempts.values():
            if not attempt.lost.done() and not attempt.connected.done():
                attempt.lost.set_result(reason)

    def claim(self, conn: AudioSocketConnection) -> bool:
        """The connection of a call being originated (True), or of one given up on (then it
        is hung up, True); False for an inbound call."""
        key = (conn.uuid or "").lower()
        attempt = self._attempts.get(key)
        if attempt is not None and not attempt.connected.done():
            attempt.connected.set_result(conn)
            return True
        if key in self._abandoned or attempt is not None:
            log.warning("audiosocket %s: answer of a call already given up on; hanging up", key)
            if conn.media is not None:
                conn.media.send_hangup()
            conn.close()
            return True
        return False

    # -- the dialler interface -----------------------------------------------------------------

    async def originate(self, target: str, app: CallApp, *,
                        caller_id: str | None = None, variables: dict[str, str] | None = None,
                        ring_timeout_s: float = 60.0, tenant: str | None = None,
                        headers: Sequence[tuple[str, str]] = (),
                        call_id: str | None = None) -> CallRecord:
        c = self.c
        call_id = call_uuid(call_id)
        record = c.records.expect(call_id)
        channel = self.channel_for(target)
        caller = caller_number(caller_id)
        extra = {"tenant": tenant} if tenant else {}
        c.bus.publish("call.invite", call_id, direction="outbound", caller=caller, callee=target,
                      sip_call_id=call_id, at=c.clock.wall(), backend="asterisk",
                      channel=channel, **extra)
        try:
            fields = self._fields(call_id, channel, caller_id, variables, ring_timeout_s)
            fields += [("Variable", header_line(n, v)) for n, v in headers]
        except ValueError as e:
            self._unanswered(call_id, "failed", f"bad_request: {e}"[:64], "engine")
            return await record
        if c.ami is None:
            self._unanswered(call_id, "failed", "asterisk_unavailable", "system")
            return await record
        loop = asyncio.get_running_loop()
        attempt = _Attempt(call_id, loop.create_future(), loop.create_future(),
                           loop.create_future(), loop.create_future())
        self._attempts[call_id] = attempt
        try:
            conn = await self._dial(attempt, fields, ring_timeout_s)
        finally:
            self._attempts.pop(call_id, None)
        if conn is None:
            return await record
        response = attempt.response.result() if attempt.response.done() else None
        info = ChannelInfo(uniqueid=call_id, channel=response.channel if response else "",
                           caller_id_num=caller, exten=target,
                           variables={"IVR_UUID": call_id, **(variables or {})})
        await c.run_answered(call_id, conn, info, caller=caller, callee=target, app=app)
        return await record

    def _fields(self, call_id: str, channel: str, caller_id: str | None,
                variables: dict[str, str] | None, ring_timeout_s: float,
                ) -> list[tuple[str, str]]:
        if ring_timeout_s <= 0:
            raise ValueError(f"ring_timeout_s: {ring_timeout_s} is not a positive time")
        fields = [("Channel", channel)]
        context = self.c.outbound_context
        if context:  # the operator's dialplan runs AudioSocket(${IVR_UUID},${IVR_AUDIOSOCKET})
            fields += [("Context", context), ("Exten", "s"), ("Priority", "1")]
        else:
            fields += [("Application", "AudioSocket"), ("Data", f"{call_id},{self.c.advertise}")]
        fields += [("Timeout", str(int(ring_timeout_s * 1000))), ("Async", "true"),
                   ("ChannelId", call_id)]
        if caller_id:
            fields.append(("CallerID", caller_id))
        fields.append(("Variable", variable_line("IVR_UUID", call_id)))
        fields.append(("Variable", variable_line("IVR_AUDIOSOCKET", self.c.advertise)))
        for name, value in (variables or {}).items():
            fields.append(("Variable", variable_line(name, str(value))))
        return fields

    async def _dial(self, attempt: _Attempt, fields: list[tuple[str, str]],
                    ring_timeout_s: float) -> AudioSocketConnection | None:
        """The answered call's connection, or None once its unanswered end is published."""
        c, call_id = self.c, attempt.call_id
        assert c.ami is not None
        try:
            await c.ami.send("Originate", fields, retry_safe=False,
                             action_id=f"originate-{call_id}")
        except AmiActionFailed as e:
            self._unanswered(call_id, "failed", "originate_refused", "system",
                             detail=e.result.message)
            return None
        except (AmiError, ValueError) as e:
            self._unanswered(call_id, "failed", "asterisk_unavailable", "system", detail=str(e))
            return None
        waiters: set[asyncio.Future[Any]] = {attempt.connected, attempt.response, attempt.lost}
        deadline = c.clock.now() + ring_timeout_s + ORIGINATE_MARGIN_S
        while not attempt.connected.done():
            left = deadline - c.clock.now()
            try:
                await c.clock.wait_for(
                    asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED), max(0.0, left))
            except TimeoutError:
                await self._give_up(attempt, "no_answer", "no_answer", "engine")
                return None
            if attempt.connected.done():
                break
            if attempt.lost.done():
                await self._give_up(attempt, "failed", "asterisk_lost", "system",
                                    detail=attempt.lost.result())
                return None
            response = attempt.response.result()
            if response.response.lower() != "success":
                await self._failed(attempt, response)
                return None
            # answered: the channel is connecting to the AudioSocket server
            waiters.discard(attempt.response)
            deadline = min(deadline, c.clock.now() + CONNECT_WAIT_S)
        return attempt.connected.result()

    async def _failed(self, attempt: _Attempt, response: OriginateResponseEvent) -> None:
        if not attempt.hangup.done():
            try:
                await self.c.clock.wait_for(asyncio.shield(attempt.hangup), RESULT_GRACE_S)
            except TimeoutError:
                pass
        q850 = attempt.hangup.result() if attempt.hangup.done() else None
        disposition, cause = asterisk_disposition(response.reason, q850)
        side = "engine" if response.reason == 3 else "callee"
        self._unanswered(attempt.call_id, disposition, cause, side, q850=q850,
                         detail=f"OriginateResponse reason {response.reason}")

    async def _give_up(self, attempt: _Attempt, disposition: str, cause: str, side: str,
                       detail: str = "") -> None:
        """Hang up what may still ring, and make sure a late answer is hung up too."""
        c = self.c
        self._abandoned[attempt.call_id] = None
        while len(self._abandoned) > MAX_ABANDONED:
            self._abandoned.popitem(last=False)
        if c.ami is not None and c.ami.connected:
            try:
                await c.ami.send("Hangup", [("Channel", attempt.call_id), ("Cause", "16")],
                                 timeout_s=2.0)
            except AmiError:
                pass  # it is gone already
        self._unanswered(attempt.call_id, disposition, cause, side, detail=detail)

    def _unanswered(self, call_id: str, disposition: str, cause: str, side: str, *,
                    q850: int | None = None, detail: str = "") -> None:
        c = self.c
        log.info("call %s not answered: %s (%s) %s", call_id, disposition, cause, detail)
        trace = [{"at": c.clock.wall(), "kind": "originate.failed", "cause": cause,
                  "q850": q850, "detail": detail[:200]}]
        c.bus.publish("call.ended", call_id, direction="outbound", disposition=disposition,
                      cause=cause, side=side, sip_status=None, at=c.clock.wall(),
                      backend="asterisk", q850=q850, trace=trace)
