"""Thin asyncio transports for SIP: UDP, TCP and TLS behind one ``send(data, Address)``.

Protocol callbacks only hand bytes upward (``MessageSink.on_message``); framing of streams is
the sans-IO :class:`~engine.sip.message.StreamFramer`. A stream that sends garbage is closed
(there is no way to resynchronise a broken stream); a bad datagram is the sink's business.
Outgoing TCP/TLS connections are opened on demand and reused, keyed by the remote address, and
responses to a request that arrived on a connection go back on that connection.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import ssl
from typing import Any, Protocol, cast

from core.tasks import TaskScope
from engine.sip.addr import Address
from engine.sip.message import SipParseError, StreamFramer

log = logging.getLogger("ivr.sip.transport")

IDLE_CONNECTION_S = 300.0
UDP_DRAIN_MAX = 64  # extra datagrams read per wake-up, so SIP cannot starve media either
UDP_MAX_DATAGRAM_BYTES = 65535


class MessageSink(Protocol):
    def on_message(self, data: bytes, source: Address) -> None: ...


class UdpEndpoint(asyncio.DatagramProtocol):
    """SIP over UDP. asyncio reads one datagram per readiness event and loop iteration; with a
    thousand RTP sockets in the same loop an iteration takes milliseconds, so SIP was read at a
    few hundred datagrams/s and INVITEs queued until peers retransmitted (measured: 765 ms mean
    INVITE->200 and ~1 retransmission per call at 1,000 media calls). Given the raw ``sock``,
    each wake-up also drains what is already queued, up to ``UDP_DRAIN_MAX`` datagrams."""

    def __init__(self, sink: MessageSink, sock: socket.socket | None = None) -> None:
        self.sink = sink
        self.transport: asyncio.DatagramTransport | None = None
        self._sock = sock

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[Any, ...]) -> None:
        self.sink.on_message(data, Address("udp", str(addr[0]), int(addr[1])))
        if self._sock is not None:
            self._drain(self._sock)

    def _drain(self, sock: socket.socket) -> None:
        for _ in range(UDP_DRAIN_MAX):
            try:
                data, addr = sock.recvfrom(UDP_MAX_DATAGRAM_BYTES)
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                self.error_received(exc)
                return
            self.sink.on_message(data, Address("udp", str(addr[0]), int(addr[1])))

    def error_received(self, exc: Exception) -> None:
        log.debug("udp error: %r", exc)  # ICMP port unreachable and friends; transactions retry

    def send(self, data: bytes, dest: Address) -> None:
        if self.transport is not None:
            self.transport.sendto(data, (dest.host, dest.port))


class StreamConnection(asyncio.Protocol):
    def __init__(self, owner: StreamTransport, max_size: int) -> None:
        self.owner = owner
        self.framer = StreamFramer(max_size=max_size)
        self.transport: asyncio.Transport | None = None
        self.peer: Address | None = None
        self.connected = asyncio.get_running_loop().create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)
        host, port = transport.get_extra_info("peername")[:2]
        self.peer = Address(self.owner.kind, host, port)
        self.owner.connections[(host, port)] = self
        if not self.connected.done():
            self.connected.set_result(None)

    def data_received(self, data: bytes) -> None:
        try:
            messages = self.framer.feed(data)
        except SipParseError as e:
            log.info("closing %s: unframeable stream (%s)", self.peer, e)
            if self.transport is not None:
                self.transport.close()
            return
        assert self.peer is not None
        for m in messages:
            self.owner.sink.on_message(m, self.peer)

    def connection_lost(self, exc: Exception | None) -> None:
        if self.peer is not None:
            key = (self.peer.host, self.peer.port)
            if self.owner.connections.get(key) is self:
                del self.owner.connections[key]
        if not self.connected.done():
            self.connected.set_exception(exc or ConnectionError("closed"))

    def write(self, data: bytes) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(data)


class StreamTransport:
    """TCP, or TLS when given an SSL context: a listener plus a pool of connections."""

    def __init__(self, kind: str, sink: MessageSink, *, max_size: int,
                 server_ssl: ssl.SSLContext | None = None,
                 client_ssl: ssl.SSLContext | None = None) -> None:
        self.kind = kind
        self.sink = sink
        self.max_size = max_size
        self.server_ssl = server_ssl
        self.client_ssl = client_ssl
        self.connections: dict[tuple[str, int], StreamConnection] = {}
        self.server: asyncio.AbstractServer | None = None
        self._pending: dict[tuple[str, int], list[bytes]] = {}
        self._tasks = TaskScope(f"sip-{kind}")

    async def listen(self, host: str, port: int) -> tuple[str, int]:
        loop = asyncio.get_running_loop()
        self.server = await loop.create_server(
            lambda: StreamConnection(self, self.max_size), host, port, ssl=self.server_ssl,
            reuse_address=True,
        )
        sock = self.server.sockets[0].getsockname()
        return sock[0], sock[1]

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
            _, conn = await asyncio.wait_for(
                loop.create_connection(
                    lambda: StreamConnection(self, self.max_size), key[0], key[1],
                    ssl=self.client_ssl,
                    server_hostname=key[0] if self.client_ssl is not None else None,
                ),
                timeout=10,
            )
        except (OSError, TimeoutError) as e:
            log.info("%s connect to %s:%s failed: %r", self.kind, key[0], key[1], e)
            self._pending.pop(key, None)  # transactions time out and report the failure
            return
        for data in self._pending.pop(key, []):
            conn.write(data)

    async def close(self) -> None:
        if self.server is not None:
            self.server.close()
        for conn in list(self.connections.values()):
            if conn.transport is not None:
                conn.transport.close()
        await self._tasks.close(grace_s=1.0)


class TransportSet:
    """Every transport the UA listens on; routes ``send`` by ``Address.transport``."""

    def __init__(self, sink: MessageSink, *, max_size: int = 65535) -> None:
        self.sink = sink
        self.max_size = max_size
        self.udp: UdpEndpoint | None = None
        self.streams: dict[str, StreamTransport] = {}
        self.local: dict[str, tuple[str, int]] = {}

    async def listen_udp(self, host: str, port: int) -> tuple[str, int]:
        loop = asyncio.get_running_loop()
        sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET,
                             socket.SOCK_DGRAM)
        try:
            sock.setblocking(False)
            sock.bind((host, port))
        except OSError:
            sock.close()
            raise
        transport, proto = await loop.create_datagram_endpoint(
            lambda: UdpEndpoint(self.sink, sock), sock=sock
        )
        self.udp = proto
        name = transport.get_extra_info("sockname")
        self.local["udp"] = (name[0], name[1])
        return self.local["udp"]

    async def listen_stream(self, kind: str, host: str, port: int,
                            server_ssl: ssl.SSLContext | None = None,
                            client_ssl: ssl.SSLContext | None = None) -> tuple[str, int]:
        st = StreamTransport(kind, self.sink, max_size=self.max_size,
                             server_ssl=server_ssl, client_ssl=client_ssl)
        self.streams[kind] = st
        self.local[kind] = await st.listen(host, port)
        return self.local[kind]

    def add_client_stream(self, kind: str, client_ssl: ssl.SSLContext | None,
                          local: tuple[str, int]) -> None:
        """Outbound-only TLS/TCP (no certificate to listen with): connections are opened on
        demand and responses come back on them; ``local`` goes into Via/Contact."""
        self.streams[kind] = StreamTransport(kind, self.sink, max_size=self.max_size,
                                             client_ssl=client_ssl)
        self.local[kind] = local

    def send(self, data: bytes, dest: Address) -> None:
        if dest.transport == "udp":
            if self.udp is None:
                log.warning("no UDP transport for %s", dest)
                return
            self.udp.send(data, dest)
            return
        st = self.streams.get(dest.transport)
        if st is None:
            log.warning("no %s transport for %s", dest.transport, dest)
            return
        st.send(data, dest)

    async def close(self) -> None:
        if self.udp is not None and self.udp.transport is not None:
            self.udp.transport.close()
        for st in self.streams.values():
            await st.close()


def make_ssl_contexts(cert: str | None, key: str | None,
                      verify_peer: bool = False) -> tuple[ssl.SSLContext | None, ssl.SSLContext]:
    """(server context if a certificate is configured, client context)."""
    server = None
    if cert:
        server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        server.load_cert_chain(cert, key)
    client = ssl.create_default_context(ssl.Purpose.SERVER_AUTH)
    if not verify_peer:
        client.check_hostname = False
        client.verify_mode = ssl.CERT_NONE
    return server, client
