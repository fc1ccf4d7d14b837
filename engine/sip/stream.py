"""SIP over TCP and TLS: a listener, a pool of connections, and the limits that keep hostile
peers from eating the engine's file descriptors and memory.

Why the engine accepts connections itself instead of using ``loop.create_server``: CPython 3.11's
accept loop, on EMFILE, logs and schedules a retry but keeps looping over its backlog, so every
wake-up schedules up to 100 retries, each of which does the same: measured as 100 % CPU and
11,000 log lines/s with the file descriptors exhausted. Here one accept task backs off (0.1 s
doubling to 2 s) and logs at most once per 10 s while descriptors are short.

Limits (as Kamailio's ``tcp_max_connections``/``tcp_connection_lifetime`` and Asterisk's
``tcpauthtimeout``/``tcpauthlimit`` do): a global cap and a per-source-address cap on inbound
connections (refused by closing at once), a message size cap (the framer's), a header timeout
(a message started and not finished within ``header_timeout_s`` closes the connection: the
slowloris defence) and an idle timeout. Timers run on the injected clock.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import socket
import ssl
from collections import Counter
from dataclasses import dataclass
from typing import Protocol, cast

from core.clock import Clock
from core.tasks import TaskScope
from engine.sip.addr import Address
from engine.sip.message import SipParseError, StreamFramer

log = logging.getLogger("ivr.sip.transport")

ACCEPT_BACKOFF_START_S = 0.1
ACCEPT_BACKOFF_MAX_S = 2.0
RESOURCE_LOG_INTERVAL_S = 10.0
SWEEP_INTERVAL_S = 1.0
CONNECT_TIMEOUT_S = 10.0
TLS_HANDSHAKE_TIMEOUT_S = 10.0
OUT_OF_RESOURCES = (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM)


class MessageSink(Protocol):
    def on_message(self, data: bytes, source: Address) -> None: ...


@dataclass(frozen=True, slots=True)
class StreamLimits:
    max_connections: int = 4096  # inbound connections in all
    max_per_source: int = 64  # inbound connections from one IP address
    header_timeout_s: float = 10.0  # to finish a message once its first byte arrived
    idle_timeout_s: float = 300.0  # without a byte either way


@dataclass
class StreamStats:
    accepted: int = 0
    refused_global: int = 0
    refused_per_source: int = 0
    closed_header_timeout: int = 0
    closed_idle: int = 0
    closed_unframeable: int = 0
    accept_resource_errors: int = 0


class StreamConnection(asyncio.Protocol):
    def __init__(self, owner: StreamTransport, inbound: bool) -> None:
        self.owner = owner
        self.inbound = inbound
        self.framer = StreamFramer(max_size=owner.max_size)
        self.transport: asyncio.Transport | None = None
        self.peer: Address | None = None
        self.connected = asyncio.get_running_loop().create_future()
        now = owner.clock.now()
        self.last_activity = now
        self.message_started: float | None = None  # when the pending partial message began

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)
        host, port = transport.get_extra_info("peername")[:2]
        self.peer = Address(self.owner.kind, host, port)
        self.owner.connections[(host, port)] = self
        if not self.connected.done():
            self.connected.set_result(None)

    def data_received(self, data: bytes) -> None:
        now = self.owner.clock.now()
        self.last_activity = now
        try:
            messages = self.framer.feed(data)
        except SipParseError as e:
            self.owner.stats.closed_unframeable += 1
            log.info("closing %s: unframeable stream (%s)", self.peer, e)
            self.close()
            return
        pings, self.framer.pings = self.framer.pings, 0
        if pings:
            self.write(b"\r\n" * pings)  # RFC 5626 §4.4.1: a CRLF pong per CRLFCRLF ping
        if self.framer.buffered:
            if self.message_started is None or messages:
                self.message_started = now
        else:
            self.message_started = None
        assert self.peer is not None
        for m in messages:
            self.owner.sink.on_message(m, self.peer)

    def connection_lost(self, exc: Exception | None) -> None:
        self.owner.forget(self)
        if not self.connected.done():
            self.connected.set_exception(exc or ConnectionError("closed"))

    def write(self, data: bytes) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.last_activity = self.owner.clock.now()
            self.transport.write(data)

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()


class StreamTransport:
    """TCP, or TLS when given an SSL context: a listener plus a pool of connections."""

    def __init__(self, kind: str, sink: MessageSink, *, max_size: int, clock: Clock,
                 limits: StreamLimits | None = None,
                 server_ssl: ssl.SSLContext | None = None,
                 client_ssl: ssl.SSLContext | None = None) -> None:
        self.kind = kind
        self.sink = sink
        self.max_size = max_size
        self.clock = clock
        self.limits = limits or StreamLimits()
        self.server_ssl = server_ssl
        self.client_ssl = client_ssl
        self.connections: dict[tuple[str, int], StreamConnection] = {}
        self.inbound_by_host: Counter[str] = Counter()
        self.stats = StreamStats()
        self._listener: socket.socket | None = None
        self._pending: dict[tuple[str, int], list[bytes]] = {}
        self._tasks = TaskScope(f"sip-{kind}")
        self._resource_logged_at: float | None = None

    @property
    def inbound(self) -> int:
        return sum(self.inbound_by_host.values())

    async def listen(self, host: str, port: int) -> tuple[str, int]:
        sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET,
                             socket.SOCK_STREAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((host, port))
            sock.listen(1024)
            sock.setblocking(False)
        except OSError:
            sock.close()
            raise
        self._listener = sock
        self._tasks.spawn(self._accept_loop(sock), "accept")
        self._tasks.spawn(self._sweep(), "sweep")
        name = sock.getsockname()
        return name[0], name[1]

    # -- inbound -------------------------------------------------------------------------------

    async def _accept_loop(self, sock: socket.socket) -> None:
        loop = asyncio.get_running_loop()
        backoff = 0.0
        while True:
            try:
                conn, addr = await loop.sock_accept(sock)
            except OSError as e:
                if e.errno not in OUT_OF_RESOURCES:
                    raise
                self.stats.accept_resource_errors += 1
                backoff = min(ACCEPT_BACKOFF_MAX_S, max(ACCEPT_BACKOFF_START_S, backoff * 2))
                self._log_resources(e, backoff)
                await self.clock.sleep(backoff)
                continue
            backoff = 0.0
            host = str(addr[0])
            if self.inbound >= self.limits.max_connections:
                self.stats.refused_global += 1
                conn.close()
                continue
            if self.inbound_by_host[host] >= self.limits.max_per_source:
                self.stats.refused_per_source += 1
                conn.close()
                continue
            self.inbound_by_host[host] += 1
            self.stats.accepted += 1
            self._tasks.spawn(self._adopt(conn, host), f"adopt-{host}:{addr[1]}")

    def _log_resources(self, e: OSError, backoff: float) -> None:
        now = self.clock.now()
        if self._resource_logged_at is None or now - self._resource_logged_at >= \
                RESOURCE_LOG_INTERVAL_S:
            self._resource_logged_at = now
            log.error("%s accept: %s (out of file descriptors? %d refused so far); retrying "
                      "in %.1f s", self.kind, e.strerror or e, self.stats.accept_resource_errors,
                      backoff)

    async def _adopt(self, conn: socket.socket, host: str) -> None:
        """Wrap an accepted socket in a connection (and its TLS handshake, bounded)."""
        loop = asyncio.get_running_loop()
        try:
            await loop.connect_accepted_socket(
                lambda: StreamConnection(self, inbound=True), conn, ssl=self.server_ssl,
                ssl_handshake_timeout=TLS_HANDSHAKE_TIMEOUT_S if self.server_ssl else None)
        except (OSError, ssl.SSLError, TimeoutError) as e:
            log.debug("%s connection from %s failed to start: %r", self.kind, host, e)
            conn.close()
            self._release_host(host)

    def _release_host(self, host: str) -> None:
        self.inbound_by_host[host] -= 1
        if self.inbound_by_host[host] <= 0:
            del self.inbound_by_host[host]

    def forget(self, conn: StreamConnection) -> None:
        if conn.peer is None:
            return
        key = (conn.peer.host, conn.peer.port)
        if self.connections.get(key) is conn:
            del self.connections[key]
            if conn.inbound:
                self._release_host(conn.peer.host)

    async def _sweep(self) -> None:
        """Close connections that stalled mid-message or went idle."""
        limits = self.limits
        while True:
            await self.clock.sleep(SWEEP_INTERVAL_S)
            now = self.clock.now()
            for conn in list(self.connections.values()):
                started = conn.message_started
                if started is not None and now - started > limits.header_timeout_s:
                    self.stats.closed_header_timeout += 1
                    log.info("closing %s: message not finished within %.0f s (%d bytes)",
                             conn.peer, limits.header_timeout_s, conn.framer.buffered)
                    conn.close()
                elif now - conn.last_activity > limits.idle_timeout_s:
                    self.stats.closed_idle += 1
                    conn.close()

    # -- outbound ------------------------------------------------------------------------------

    def send(self, data: bytes, dest: Address) -> None:
        key = (dest.host, dest.port)
        conn = self.connections.get(key)
        if conn is not None:
            conn.write(data)
            return
        queue = self._pending.get(key)
        if queue is not None:
            queue.append(data)
            return
        self._pending[key] = [data]
        self._tasks.spawn(self._connect(key), f"connect-{dest}")

    async def _connect(self, key: tuple[str, int]) -> None:
        loop = asyncio.get_running_loop()
        try:
            _, conn = await self.clock.wait_for(
                loop.create_connection(
                    lambda: StreamConnection(self, inbound=False), key[0], key[1],
                    ssl=self.client_ssl,
                    server_hostname=key[0] if self.client_ssl is not None else None,
                ),
                CONNECT_TIMEOUT_S,
            )
        except (OSError, TimeoutError) as e:
            log.info("%s connect to %s:%s failed: %r", self.kind, key[0], key[1], e)
            self._pending.pop(key, None)  # transactions time out and report the failure
            return
        for data in self._pending.pop(key, []):
            conn.write(data)

    async def close(self) -> None:
        await self._tasks.close(grace_s=1.0)
        if self._listener is not None:
            self._listener.close()
        for conn in list(self.connections.values()):
            conn.close()
