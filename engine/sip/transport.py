"""Thin asyncio transports for SIP: UDP, TCP and TLS behind one ``send(data, Address)``.

Protocol callbacks only hand bytes upward (``MessageSink.on_message``); framing of streams is
the sans-IO :class:`~engine.sip.message.StreamFramer`. A stream that sends garbage is closed
(there is no way to resynchronise a broken stream); a bad datagram is the sink's business.
TCP/TLS live in :mod:`engine.sip.stream` (connection limits and timeouts); outgoing connections
are opened on demand and reused, keyed by the remote address, and responses to a request that
arrived on a connection go back on that connection.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import ssl
from typing import Any, cast

from core.clock import Clock, SystemClock
from engine.sip.addr import Address
from engine.sip.stream import MessageSink, StreamLimits, StreamTransport

log = logging.getLogger("ivr.sip.transport")

UDP_DRAIN_MAX = 64  # extra datagrams read per wake-up, so SIP cannot starve media either
UDP_MAX_DATAGRAM_BYTES = 65535


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


class TransportSet:
    """Every transport the UA listens on; routes ``send`` by ``Address.transport``."""

    def __init__(self, sink: MessageSink, *, max_size: int = 65535, clock: Clock | None = None,
                 limits: StreamLimits | None = None) -> None:
        self.sink = sink
        self.max_size = max_size
        self.clock: Clock = clock or SystemClock()
        self.limits = limits or StreamLimits()
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
        st = StreamTransport(kind, self.sink, max_size=self.max_size, clock=self.clock,
                             limits=self.limits, server_ssl=server_ssl, client_ssl=client_ssl)
        self.streams[kind] = st
        self.local[kind] = await st.listen(host, port)
        return self.local[kind]

    def add_client_stream(self, kind: str, client_ssl: ssl.SSLContext | None,
                          local: tuple[str, int]) -> None:
        """Outbound-only TLS/TCP (no certificate to listen with): connections are opened on
        demand and responses come back on them; ``local`` goes into Via/Contact."""
        self.streams[kind] = StreamTransport(kind, self.sink, max_size=self.max_size,
                                             clock=self.clock, limits=self.limits,
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


__all__ = ["MessageSink", "StreamLimits", "TransportSet", "UdpEndpoint", "make_ssl_contexts"]
