"""A raw SIP peer on a UDP socket: the far end a test scripts line by line, for what SIPp
cannot send (malformed or hostile messages) or where the test drives time itself."""

from __future__ import annotations

import asyncio
import re

from tests.netutil import free_port


class RawPeer(asyncio.DatagramProtocol):
    """The far end: receives datagrams into a queue, sends what the test scripts."""

    def __init__(self) -> None:
        self.inbox: asyncio.Queue[bytes] = asyncio.Queue()
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.inbox.put_nowait(data)

    def send(self, data: bytes, addr: tuple[str, int]) -> None:
        assert self.transport is not None
        self.transport.sendto(data, addr)

    async def next(self, starts: bytes, timeout_s: float = 5.0) -> bytes:
        """The next datagram whose first line starts with ``starts`` (others are skipped)."""
        while True:
            data = await asyncio.wait_for(self.inbox.get(), timeout_s)
            if data.startswith(starts):
                return data

    def pending(self, starts: bytes) -> int:
        return sum(1 for d in list(self.inbox._queue) if d.startswith(starts))  # type: ignore[attr-defined]


def header(msg: bytes, name: str) -> str:
    m = re.search(rb"^" + name.encode() + rb":\s*(.*?)\r$", msg, re.M | re.I)
    assert m is not None, (name, msg)
    return m.group(1).decode()


async def open_peer() -> tuple[RawPeer, tuple[str, int]]:
    loop = asyncio.get_running_loop()
    addr = ("127.0.0.1", free_port())
    _, peer = await loop.create_datagram_endpoint(RawPeer, local_addr=addr)
    return peer, addr
