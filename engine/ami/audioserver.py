"""The AudioSocket TCP server: Asterisk connects here once per call that reaches ``AudioSocket()``.

Each connection is an :class:`AudioSocketConnection` (an asyncio protocol, no task per
connection): it waits for the UUID message, then hands itself to the backend, which ties it to a
channel and a call; audio and DTMF messages go straight to the call's
:class:`~engine.ami.media.AudioSocketMedia`. A connection that sends no UUID within
``UUID_TIMEOUT_S``, or breaks the framing, is closed; other calls are unaffected. The end of a
connection (TCP EOF when the caller hung up or the channel left the app, an error message, a
reset when Asterisk died) resolves ``closed`` with the reason.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import socket
from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any, cast

from core.clock import Clock, TimerHandle
from engine.ami.audiosocket import (
    AUDIO_KINDS_HZ,
    KIND_DTMF,
    KIND_ERROR,
    KIND_HANGUP,
    KIND_UUID,
    AudioSocketError,
    AudioSocketParser,
)
from engine.ami.media import AudioSocketMedia

log = logging.getLogger("ivr.ami.audiosocket")

UUID_TIMEOUT_S = 5.0


class AudioSocketConnection(asyncio.Protocol):
    def __init__(self, server: AudioSocketServer) -> None:
        self._server = server
        self._parser = AudioSocketParser()
        self.uuid: str | None = None
        self.peer: tuple[str, int] = ("", 0)
        self.media: AudioSocketMedia | None = None
        self.closed: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        self.errors: list[int] = []  # error codes Asterisk reported
        self._uuid_timer: TimerHandle | None = None

    # -- asyncio.Protocol ----------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # a cast, not an isinstance check: uvloop's TCP transport is not asyncio's class
        self.transport = transport = cast(asyncio.Transport, transport)
        peer = transport.get_extra_info("peername")
        self.peer = (str(peer[0]), int(peer[1])) if peer else ("", 0)
        refusal = self._server.refusal(self.peer[0])
        if refusal is not None:  # before any state: nothing to undo
            self.closed.set_result(refusal)
            transport.abort()
            return
        sock = transport.get_extra_info("socket")
        if sock is not None:
            try:
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # 20 ms frames
            except OSError:
                pass
        self.media = AudioSocketMedia(transport, now=self._server.clock.now,
                                      media_timeout_s=self._server.media_timeout_s)
        clock = self._server.clock
        self._uuid_timer = clock.call_at(clock.now() + self._server.uuid_timeout_s,
                                         self._no_uuid)
        self._server.connections.add(self)

    def data_received(self, data: bytes) -> None:
        try:
            messages = self._parser.feed(data)
        except AudioSocketError as e:
            log.warning("audiosocket %s (%s): %s; closing", self.uuid or "-", self.peer, e)
            self._end(f"protocol_error: {e}")
            return
        media = self.media
        assert media is not None
        for msg in messages:
            rate = AUDIO_KINDS_HZ.get(msg.kind)
            if rate is not None:
                if self.uuid is not None:
                    media.on_audio(msg.payload, rate)
            elif msg.kind == KIND_DTMF:
                if self.uuid is not None:
                    media.on_digit(msg.digit)
            elif msg.kind == KIND_UUID:
                if self.uuid is None:
                    self._got_uuid(msg.uuid)
            elif msg.kind == KIND_ERROR:
                self.errors.append(msg.error_code)
                log.info("audiosocket %s: Asterisk reported error %d", self.uuid,
                         msg.error_code)
            elif msg.kind == KIND_HANGUP:
                self._end("hangup_message")
                return

    def eof_received(self) -> bool:
        self._end("eof")
        return False  # close our side too

    def connection_lost(self, exc: Exception | None) -> None:
        self._end("eof" if exc is None else f"reset: {exc}")

    # -- state ---------------------------------------------------------------------------------

    def _got_uuid(self, value: str) -> None:
        if self._uuid_timer is not None:
            self._uuid_timer.cancel()
        self.uuid = value
        try:
            self._server.on_connection(self)
        except Exception:  # the backend's bug must not leave Asterisk connected to nothing
            log.exception("audiosocket %s: the backend failed to take the call", value)
            self._end("backend_error")

    def _no_uuid(self) -> None:
        if self.uuid is None and not self.closed.done():
            log.warning("audiosocket from %s sent no UUID within %.0f s; closing", self.peer,
                        self._server.uuid_timeout_s)
            self._end("no_uuid")

    def _end(self, reason: str) -> None:
        if self._uuid_timer is not None:
            self._uuid_timer.cancel()
        if not self.closed.done():
            self.closed.set_result(reason)
        self._server.connections.discard(self)
        if self.media is not None:
            self.media.close()

    def close(self) -> None:
        """Close from our side (the engine is done with the call)."""
        self._end("closed")


class AudioSocketServer:
    """Accepts AudioSocket connections; ``on_connection`` gets each once its UUID is known."""

    def __init__(self, on_connection: Callable[[AudioSocketConnection], None], clock: Clock, *,
                 media_timeout_s: float = 30.0, uuid_timeout_s: float = UUID_TIMEOUT_S,
                 allow: Sequence[str] = ("127.0.0.0/8", "::1/128"),
                 max_connections: int = 1000) -> None:
        self.on_connection = on_connection
        self.clock = clock
        self.media_timeout_s = media_timeout_s
        self.uuid_timeout_s = uuid_timeout_s
        self.allow = [ipaddress.ip_network(n, strict=False) for n in allow]
        self.max_connections = max_connections
        self.connections: set[AudioSocketConnection] = set()
        self.refused: Counter[str] = Counter()  # by reason: untrusted, full
        self._server: asyncio.Server | None = None

    def refusal(self, host: str) -> str | None:
        """Why a new connection from ``host`` is refused (None: taken). AudioSocket carries no
        credentials, so only Asterisk's networks may connect; beyond ``max_connections`` a
        call is refused so that Asterisk's dialplan can route it elsewhere."""
        try:
            addr = ipaddress.ip_address(host.split("%", 1)[0])
        except ValueError:
            addr = None
        if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
            addr = addr.ipv4_mapped
        if addr is None or not any(addr in net for net in self.allow):
            self.refused["untrusted"] += 1
            log.warning("audiosocket from %s refused: not in asterisk.audiosocket_allow", host)
            return "untrusted"
        if len(self.connections) >= self.max_connections:
            self.refused["full"] += 1
            log.warning("audiosocket from %s refused: %d calls (asterisk.max_calls)", host,
                        len(self.connections))
            return "full"
        return None

    async def start(self, host: str, port: int) -> tuple[str, int]:
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(lambda: AudioSocketConnection(self), host, port,
                                                reuse_address=True, backlog=1024)
        addr: Any = self._server.sockets[0].getsockname()
        return str(addr[0]), int(addr[1])

    @property
    def accepting(self) -> bool:
        """True while new AudioSocket connections are taken."""
        return self._server is not None and self._server.is_serving()

    def stop_listening(self) -> None:
        if self._server is not None:
            self._server.close()

    async def stop(self) -> None:
        self.stop_listening()
        for conn in list(self.connections):
            conn.close()
        if self._server is not None:
            await self._server.wait_closed()
            self._server = None
