"""SIP over UDP drains the datagrams already queued on a wake-up (media-load regression).

With a thousand RTP sockets sharing the loop, asyncio's one-datagram-per-iteration reading made
INVITEs queue until SIPp retransmitted; these tests pin the drain and its bound.
"""

from __future__ import annotations

import socket

from engine.sip.addr import Address
from engine.sip.transport import UDP_DRAIN_MAX, TransportSet


class Sink:
    def __init__(self) -> None:
        self.got: list[tuple[bytes, Address]] = []

    def on_message(self, data: bytes, source: Address) -> None:
        self.got.append((data, source))


def _queue(port: int, count: int) -> socket.socket:
    client = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    client.bind(("127.0.0.1", 0))
    for i in range(count):
        client.sendto(b"OPTIONS %d" % i, ("127.0.0.1", port))
    return client


async def test_one_wakeup_delivers_every_queued_datagram_in_order() -> None:
    sink = Sink()
    ts = TransportSet(sink)
    _, port = await ts.listen_udp("127.0.0.1", 0)
    client = _queue(port, 10)  # no await since: the loop has not read any of them
    try:
        assert ts.udp is not None
        ts.udp.datagram_received(b"first", ("127.0.0.1", 5060))
        assert [d for d, _ in sink.got] == [b"first"] + [b"OPTIONS %d" % i for i in range(10)]
        assert sink.got[1][1] == Address("udp", "127.0.0.1", client.getsockname()[1])
    finally:
        client.close()
        assert ts.udp is not None and ts.udp.transport is not None
        ts.udp.transport.close()


async def test_drain_is_bounded_so_media_still_gets_the_loop() -> None:
    sink = Sink()
    ts = TransportSet(sink)
    _, port = await ts.listen_udp("127.0.0.1", 0)
    client = _queue(port, UDP_DRAIN_MAX + 5)
    try:
        assert ts.udp is not None
        ts.udp.datagram_received(b"first", ("127.0.0.1", 5060))
        assert len(sink.got) == 1 + UDP_DRAIN_MAX  # the rest waits for the next iteration
    finally:
        client.close()
        assert ts.udp is not None and ts.udp.transport is not None
        ts.udp.transport.close()
