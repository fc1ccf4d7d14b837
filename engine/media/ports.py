"""RTP port allocation from the configured range.

Even ports for RTP, the odd port above for RTCP (RFC 3550 §11). Ports are handed out round-robin
so a port just released is not reused at once (late packets of the old call would land in the
new one).
"""

from __future__ import annotations

import asyncio
import socket
from collections import deque
from collections.abc import Callable
from typing import TypeVar

P = TypeVar("P", bound=asyncio.DatagramProtocol)


class PortsExhausted(RuntimeError):
    pass


class PortAllocator:
    def __init__(self, port_min: int, port_max: int) -> None:
        if port_min >= port_max:
            raise ValueError(f"rtp port range {port_min}-{port_max} is empty")
        first = port_min + (port_min % 2)
        self._free: deque[int] = deque(range(first, port_max, 2))
        self._used: set[int] = set()

    @property
    def available(self) -> int:
        return len(self._free)

    async def bind(self, host: str, factory: Callable[[], P]
                   ) -> tuple[int, asyncio.DatagramTransport, P]:
        """Bind the next free even port on ``host`` with protocol ``factory()``."""
        loop = asyncio.get_running_loop()
        for _ in range(len(self._free)):
            port = self._free.popleft()
            sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET,
                                 socket.SOCK_DGRAM)
            try:
                sock.bind((host, port))
            except OSError:
                sock.close()
                self._free.append(port)  # someone else holds it now; try it again later
                continue
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 18)
            transport, proto = await loop.create_datagram_endpoint(factory, sock=sock)
            self._used.add(port)
            return port, transport, proto
        raise PortsExhausted("no free RTP port in the configured range")

    def release(self, port: int) -> None:
        if port in self._used:
            self._used.remove(port)
            self._free.append(port)
