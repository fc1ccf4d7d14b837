"""RTP port allocation from the configured range.

Even ports for RTP, the odd port above for RTCP (RFC 3550 §11). A free port is picked at random
(RFC 3550 §11 and RFC 6056's reasoning: a port nobody can predict is one nobody can target before
the call's SDP is out), and a port just released waits in quarantine behind
``QUARANTINE_PORTS`` others before it can be reused, so late packets of an old call never land
in a new one.
"""

from __future__ import annotations

import asyncio
import secrets
import socket
from collections import deque
from collections.abc import Callable
from typing import TypeVar

P = TypeVar("P", bound=asyncio.DatagramProtocol)

QUARANTINE_PORTS = 64


class PortsExhausted(RuntimeError):
    pass


class PortAllocator:
    def __init__(self, port_min: int, port_max: int) -> None:
        if port_min >= port_max:
            raise ValueError(f"rtp port range {port_min}-{port_max} is empty")
        first = port_min + (port_min % 2)
        self._free: list[int] = list(range(first, port_max, 2))
        self._quarantine: deque[int] = deque()
        self._used: set[int] = set()
        self._quarantine_size = min(QUARANTINE_PORTS, len(self._free) // 4)

    @property
    def available(self) -> int:
        return len(self._free) + len(self._quarantine)

    def _take(self) -> int:
        if not self._free:
            self._free.append(self._quarantine.popleft())
        i = secrets.randbelow(len(self._free))
        self._free[i], self._free[-1] = self._free[-1], self._free[i]
        return self._free.pop()

    async def bind(self, host: str, factory: Callable[[], P]
                   ) -> tuple[int, asyncio.DatagramTransport, P]:
        """Bind a random free even port on ``host`` with protocol ``factory()``."""
        sock, port = self._bind_socket(host)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 18)
        try:
            transport, proto = await asyncio.get_running_loop().create_datagram_endpoint(
                factory, sock=sock)
        except BaseException:
            sock.close()
            self._quarantine.append(port)
            raise
        self._used.add(port)
        return port, transport, proto

    def _bind_socket(self, host: str) -> tuple[socket.socket, int]:
        busy: list[int] = []
        try:
            for _ in range(self.available):
                port = self._take()
                sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET,
                                     socket.SOCK_DGRAM)
                try:
                    sock.bind((host, port))
                except OSError:
                    sock.close()
                    busy.append(port)  # someone else holds it now; try it again later
                    continue
                return sock, port
            raise PortsExhausted("no free RTP port in the configured range")
        finally:
            self._quarantine.extend(busy)

    def release(self, port: int) -> None:
        if port in self._used:
            self._used.remove(port)
            self._quarantine.append(port)
            while len(self._quarantine) > self._quarantine_size:
                self._free.append(self._quarantine.popleft())
