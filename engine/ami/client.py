"""The AMI client on asyncio: login, actions by ActionID, typed events, keep-alive, reconnection.

One connection, kept up for the engine's life:

* **login** with MD5 challenge (default) or plain secret, asking only for the event classes the
  backend needs (``Events:``), then the event filters (``Filter`` actions, Asterisk's advanced
  ``eventfilter`` syntax) so Asterisk itself drops the rest;
* **actions** are written with a unique ``ActionID`` and complete when their response (and list)
  arrives, or fail with :class:`AmiTimeout` on the injected clock;
* **keep-alive**: a ``Ping`` when nothing arrived for ``ping_interval_s``; no answer within
  ``ping_timeout_s`` drops the connection (a half-open TCP connection would otherwise wait
  forever);
* **reconnection** with exponential backoff and re-login; actions not yet written, and written
  ones marked ``retry_safe``, are re-sent on the new connection in their order. An action that
  was written and may have run (an Originate) fails with :class:`AmiConnectionLost` instead of
  being sent twice: a duplicate call is worse than a failed one;
* **floods**: events are dispatched synchronously to listeners that must be cheap; nothing is
  queued in the process, so nothing grows. Unwanted events cost a look at their first line.
  After each full read the reader yields to the loop, so a flood shares the loop with the media
  pacer and SIP instead of starving them, and it keeps reading promptly (Asterisk drops a
  manager session whose socket stays full for ``writetimeout``, 100 ms by default).
"""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import logging
import random
import secrets
import socket
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from core.clock import Clock
from core.tasks import TaskScope
from engine.ami.codec import AmiMessage, AmiProtocolError, serialize_action
from engine.ami.events import AmiEvent, typed_event
from engine.ami.protocol import ActionResult, AmiSession

log = logging.getLogger("ivr.ami")

READ_CHUNK_BYTES = 65536
# The kernel's receive buffer for the AMI socket: a burst of events waits there instead of
# blocking Asterisk's writer (which drops the session after its writetimeout, 100 ms).
RECEIVE_BUFFER_BYTES = 8 * 1024 * 1024
DEFAULT_EVENTS = "call,dialplan,system"
# What the backend listens to; Asterisk drops every other event before it reaches the socket.
DEFAULT_FILTERS = (
    "eventfilter(action(include),name(Hangup)) =",
    "eventfilter(action(include),name(SoftHangupRequest)) =",
    "eventfilter(action(include),name(OriginateResponse)) =",
    "eventfilter(action(include),name(VarSet),header(Variable),method(starts_with)) = IVR_",
    "eventfilter(action(include),name(FullyBooted)) =",
    "eventfilter(action(include),name(Shutdown)) =",
)


class AmiError(Exception):
    """Base of every AMI failure."""


class AmiNotConnected(AmiError):
    """No connection, and the queue of actions waiting for one is full."""


class AmiConnectionLost(AmiError):
    """The connection dropped after the action was written; it was not re-sent."""


class AmiLoginFailed(AmiError):
    """Asterisk refused the username or secret."""


class AmiTimeout(AmiError, TimeoutError):
    """No response within the action's timeout."""


class AmiActionFailed(AmiError):
    """``Response: Error``; ``result.message`` says why."""

    def __init__(self, action: str, result: ActionResult) -> None:
        super().__init__(f"{action}: {result.message or 'error'}")
        self.result = result


@dataclass
class AmiSettings:
    host: str = "127.0.0.1"
    port: int = 5038
    username: str = "ivr"
    secret: str = ""
    auth: str = "md5"  # md5 (challenge-response) or plain
    events: str = DEFAULT_EVENTS
    filters: tuple[str, ...] = DEFAULT_FILTERS
    connect_timeout_s: float = 5.0
    action_timeout_s: float = 10.0
    ping_interval_s: float = 15.0
    ping_timeout_s: float = 5.0
    reconnect_min_s: float = 0.5
    reconnect_max_s: float = 10.0
    max_queued_actions: int = 1000


@dataclass(eq=False)
class _Pending:
    action: str
    fields: list[tuple[str, str]]
    action_id: str
    future: asyncio.Future[ActionResult]
    retry_safe: bool
    sent: bool = False


@dataclass
class AmiStats:
    connects: int = 0
    disconnects: int = 0
    events_delivered: int = 0
    events_dropped: int = 0  # unwanted, dropped after their first line
    listener_errors: int = 0
    max_slice_cpu_ms: float = 0.0  # the longest the reader held the loop for one read
    reader_cpu_s: float = 0.0  # CPU spent reading, parsing and dispatching events
    last_error: str = ""
    by_event: dict[str, int] = field(default_factory=dict)


EventListener = Callable[[AmiEvent], None]
ConnectionListener = Callable[[bool, str], None]


def filter_fields(spec: str) -> list[tuple[str, str]]:
    """A manager.conf ``eventfilter`` line as ``Filter`` action fields: the advanced form
    ``eventfilter(criteria) = pattern`` or a legacy pattern (``Event: Hangup``,
    ``!Channel: Local/``)."""
    spec = spec.strip()
    if spec.startswith("eventfilter("):
        criteria, sep, pattern = spec.partition("=")
        if not sep or not criteria.rstrip().endswith(")"):
            raise ValueError(f"event filter {spec!r}: expected eventfilter(criteria) = pattern")
        return [("Operation", "Add"), ("MatchCriteria", criteria.strip()[12:-1]),
                ("Filter", pattern.strip())]
    if not spec:
        raise ValueError("an empty event filter")
    return [("Operation", "Add"), ("Filter", spec)]


class AmiClient:
    def __init__(self, settings: AmiSettings, clock: Clock, *, name: str = "ami") -> None:
        self.settings = settings
        self.clock = clock
        self.name = name
        self.stats = AmiStats()
        self.banner = ""
        self.version = ""
        self._ids = itertools.count(1)
        self._prefix = f"ivr-{secrets.token_hex(4)}-"
        self._pending: dict[str, _Pending] = {}
        self._listeners: dict[str, list[tuple[EventListener, bytes | None]]] = {}
        self._conn_listeners: list[ConnectionListener] = []
        self._writer: asyncio.StreamWriter | None = None
        self._session: AmiSession | None = None
        self._logged_in = asyncio.Event()
        self._closing = False
        self._last_rx = 0.0
        self._dropped_before = 0  # events dropped by earlier connections' sessions
        self._scope = TaskScope(name)

    # -- listeners -----------------------------------------------------------------------------

    def on_event(self, name: str, listener: EventListener, *,
                 containing: bytes | None = None) -> Callable[[], None]:
        """Call ``listener`` (cheap, never blocking) with each typed event named ``name``
        (``"*"``: every event that reaches the client). ``containing``: only events whose raw
        text contains these bytes are parsed for it (``b"Variable: IVR_"``), so a flood of the
        same name costs a byte search each. Returns the remover."""
        entry = (listener, containing)
        self._listeners.setdefault(name, []).append(entry)

        def remove() -> None:
            if entry in self._listeners.get(name, []):
                self._listeners[name].remove(entry)
                if not self._listeners[name]:
                    del self._listeners[name]

        return remove

    def on_connection(self, listener: ConnectionListener) -> Callable[[], None]:
        """``listener(True, "")`` after each login, ``listener(False, reason)`` on each loss."""
        self._conn_listeners.append(listener)
        return lambda: self._conn_listeners.remove(listener)

    def _wants(self, name: str, raw: bytes) -> bool:
        for key in (name, "*"):
            for _, containing in self._listeners.get(key, ()):
                if containing is None or containing in raw:
                    return True
        return False

    @property
    def connected(self) -> bool:
        return self._logged_in.is_set()

    # -- lifecycle -----------------------------------------------------------------------------

    def start(self) -> None:
        """Connect in the background, and keep reconnecting until :meth:`close`."""
        self._scope.spawn(self._run(), "connection")

    async def wait_connected(self, timeout_s: float) -> bool:
        try:
            await self.clock.wait_for(self._logged_in.wait(), timeout_s)
        except TimeoutError:
            return False
        return True

    async def close(self) -> None:
        """Log off, stop reconnecting, fail what still waits."""
        self._closing = True
        if self.connected:
            try:
                await self.send("Logoff", timeout_s=1.0)
            except AmiError:
                pass
        if self._writer is not None:
            self._writer.close()
        await self._scope.close(grace_s=2.0)
        self._fail_all(AmiConnectionLost("the AMI client was closed"))

    # -- actions -------------------------------------------------------------------------------

    async def send(self, action: str, fields: Iterable[tuple[str, str]] = (), *,
                   timeout_s: float | None = None, retry_safe: bool = True,
                   action_id: str | None = None) -> ActionResult:
        """Send ``action`` and await its result; ``Response: Error`` raises
        :class:`AmiActionFailed`. While disconnected the action waits (bounded) for the next
        connection. ``retry_safe=False`` for actions that must not run twice. ``action_id``:
        one of the caller's making (unique), for events that echo it (OriginateResponse)."""
        result = await self._request(action, list(fields), timeout_s=timeout_s,
                                     retry_safe=retry_safe, queue=True, action_id=action_id)
        if not result.ok:
            raise AmiActionFailed(action, result)
        return result

    async def _request(self, action: str, fields: list[tuple[str, str]], *,
                       timeout_s: float | None, retry_safe: bool, queue: bool,
                       action_id: str | None = None) -> ActionResult:
        action_id = action_id or f"{self._prefix}{next(self._ids)}"
        if action_id in self._pending:
            raise ValueError(f"ActionID {action_id!r} is already waiting for its response")
        data = serialize_action(action, action_id, fields)  # ValueError names a bad field
        fut: asyncio.Future[ActionResult] = asyncio.get_running_loop().create_future()
        p = _Pending(action, fields, action_id, fut, retry_safe)
        if queue and not self.connected:
            if len(self._pending) >= self.settings.max_queued_actions:
                raise AmiNotConnected(f"{action}: AMI is not connected and "
                                      f"{len(self._pending)} actions already wait for it")
            self._pending[action_id] = p
        else:
            self._pending[action_id] = p
            self._write(p, data)
        try:
            return await self.clock.wait_for(asyncio.shield(fut),
                                             timeout_s or self.settings.action_timeout_s)
        except TimeoutError as e:
            raise AmiTimeout(f"{action}: no response from Asterisk") from e
        finally:
            self._pending.pop(action_id, None)
            if self._session is not None:
                self._session.forget(action_id)

    def _write(self, p: _Pending, data: bytes | None = None) -> None:
        if self._writer is None or self._session is None:
            return
        self._session.expect(p.action_id)
        self._writer.write(data or serialize_action(p.action, p.action_id, p.fields))
        p.sent = True

    # -- the connection ------------------------------------------------------------------------

    async def _run(self) -> None:
        delay = self.settings.reconnect_min_s
        while not self._closing:
            logged_in = False
            try:
                reading = await self._open()
                logged_in = True
                delay = self.settings.reconnect_min_s
                await self._serve(reading)
                reason = "Asterisk closed the connection"
            except AmiLoginFailed as e:
                reason = str(e)
                log.error("%s: %s", self.name, e)
                delay = self.settings.reconnect_max_s  # wrong secret: do not hammer
            except (OSError, TimeoutError, AmiError, AmiProtocolError) as e:
                reason = f"{type(e).__name__}: {e}"
                log.warning("%s: connection to %s:%s failed: %s", self.name, self.settings.host,
                            self.settings.port, reason)
            self._lost(reason, logged_in)
            if self._closing:
                break
            await self.clock.sleep(delay * random.uniform(0.8, 1.2))
            delay = min(delay * 2, self.settings.reconnect_max_s)

    async def _open(self) -> asyncio.Task[None]:
        """Connect, read the banner, log in and set the filters. Returns the reader task,
        which runs until the connection ends."""
        s = self.settings
        reader, writer = await self.clock.wait_for(
            asyncio.open_connection(s.host, s.port), s.connect_timeout_s)
        sock = writer.get_extra_info("socket")
        if sock is not None:
            try:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RECEIVE_BUFFER_BYTES)
            except OSError:  # capped by net.core.rmem_max: the kernel keeps what it allows
                pass
        self._writer = writer
        self._session = AmiSession(self._wants)
        self._last_rx = self.clock.now()
        reading = self._scope.spawn(self._read(reader), "reader")
        try:
            await self._login()
        except BaseException:
            reading.cancel()
            raise
        self.stats.connects += 1
        self._logged_in.set()
        log.info("%s: logged in to %s:%s (%s)", self.name, s.host, s.port, self.banner)
        for p in list(self._pending.values()):  # re-queued and queued actions, in order
            if not p.sent:
                self._write(p)
        for listener in list(self._conn_listeners):
            listener(True, "")
        return reading

    async def _login(self) -> None:
        s = self.settings
        timeout = s.connect_timeout_s
        fields = [("Username", s.username)]
        if s.auth == "md5":
            challenge = await self._request("Challenge", [("AuthType", "MD5")],
                                            timeout_s=timeout, retry_safe=False, queue=False)
            key = hashlib.md5((challenge.response.get("Challenge") + s.secret).encode(),
                              usedforsecurity=False).hexdigest()
            fields += [("AuthType", "MD5"), ("Key", key)]
        else:
            fields.append(("Secret", s.secret))
        fields.append(("Events", s.events or "off"))
        result = await self._request("Login", fields, timeout_s=timeout, retry_safe=False,
                                     queue=False)
        if not result.ok:
            raise AmiLoginFailed(f"AMI login as {s.username!r} refused: "
                                 f"{result.message or 'authentication failed'}")
        self.banner = (self._session.banner or "") if self._session else ""
        for spec in s.filters:
            try:
                f = await self._request("Filter", filter_fields(spec), timeout_s=timeout,
                                        retry_safe=False, queue=False)
                if not f.ok:
                    log.warning("%s: event filter %r refused: %s", self.name, spec, f.message)
            except (ValueError, AmiTimeout) as e:
                log.warning("%s: event filter %r not set: %s", self.name, spec, e)

    async def _serve(self, reading: asyncio.Task[None]) -> None:
        keepalive = self._scope.spawn(self._keepalive(), "keepalive")
        try:
            await reading
        finally:
            keepalive.cancel()
            reading.cancel()

    async def _read(self, reader: asyncio.StreamReader) -> None:
        session = self._session
        assert session is not None
        while True:
            data = await reader.read(READ_CHUNK_BYTES)
            if not data:
                return
            self._last_rx = self.clock.now()
            cpu0 = time.thread_time()  # CPU spent on this slice: a statistic, not a timer
            results, events = session.receive(data)
            for result in results:
                p = self._pending.get(result.action_id)
                if p is not None and not p.future.done():
                    p.future.set_result(result)
            for msg in events:
                self._dispatch(msg)
            self.stats.events_dropped = self._dropped_before + session.events_dropped
            spent = time.thread_time() - cpu0
            self.stats.reader_cpu_s += spent
            self.stats.max_slice_cpu_ms = max(self.stats.max_slice_cpu_ms, spent * 1000)
            if len(data) == READ_CHUNK_BYTES:
                await asyncio.sleep(0)  # more is waiting: let the pacer and SIP run first

    def _dispatch(self, msg: AmiMessage) -> None:
        name = msg.get("Event")
        self.stats.events_delivered += 1
        self.stats.by_event[name] = self.stats.by_event.get(name, 0) + 1
        listeners = self._listeners.get(name, []) + self._listeners.get("*", [])
        if not listeners:
            return
        event = typed_event(msg)
        raw = msg.raw if msg.raw is not None else msg.serialize()
        for listener, containing in listeners:
            if containing is not None and containing not in raw:
                continue
            try:
                listener(event)
            except Exception:  # one listener's bug must not stop the others or the reader
                self.stats.listener_errors += 1
                log.exception("%s: listener for %s failed", self.name, name)

    async def _keepalive(self) -> None:
        s = self.settings
        while True:
            await self.clock.sleep_until(self._last_rx + s.ping_interval_s)
            if self.clock.now() - self._last_rx < s.ping_interval_s:
                continue  # something arrived meanwhile
            try:
                await self._request("Ping", [], timeout_s=s.ping_timeout_s, retry_safe=False,
                                    queue=False)
            except AmiTimeout:
                log.warning("%s: no answer to a keep-alive Ping in %.1f s; reconnecting",
                            self.name, s.ping_timeout_s)
                if self._writer is not None:
                    self._writer.close()
                return

    def _lost(self, reason: str, was_logged_in: bool) -> None:
        if self._writer is not None:
            self._writer.close()
        if self._session is not None:
            self._dropped_before += self._session.events_dropped
        self._writer = None
        self._session = None
        self.stats.last_error = reason
        self._logged_in.clear()
        for p in list(self._pending.values()):
            if p.sent and not p.retry_safe:
                self._pending.pop(p.action_id, None)
                if not p.future.done():
                    p.future.set_exception(AmiConnectionLost(
                        f"{p.action}: the AMI connection dropped after it was sent ({reason}); "
                        "not re-sent, it may have run"))
            else:
                p.sent = False  # re-sent after the next login
        if was_logged_in:
            self.stats.disconnects += 1
            if self._closing:
                log.info("%s: logged off", self.name)
            else:
                log.warning("%s: disconnected: %s", self.name, reason)
            for listener in list(self._conn_listeners):
                listener(False, reason)

    def _fail_all(self, error: AmiError) -> None:
        for p in list(self._pending.values()):
            if not p.future.done():
                p.future.set_exception(error)
        self._pending.clear()


async def check_login(settings: AmiSettings, clock: Clock) -> str:
    """Log in once and log off (``ivr doctor``): the banner and Asterisk version, or an
    :class:`AmiError`/``OSError`` saying what failed."""
    client = AmiClient(settings, clock, name="ami-check")
    try:
        reading = await client._open()
        try:
            core = await client.send("CoreSettings", timeout_s=settings.connect_timeout_s)
            version = core.response.get("AsteriskVersion")
        finally:
            reading.cancel()
        return f"{client.banner}, Asterisk {version}" if version else client.banner
    finally:
        client._closing = True
        if client._writer is not None:
            client._writer.close()
        await client._scope.close(grace_s=1.0)
