"""The webhook client against a real HTTP server on loopback that misbehaves on the wire.

The server is a plain ``asyncio`` TCP server writing hand-made HTTP/1.1 responses, so each test
controls exactly how the reply reaches the socket: split across TCP segments, chunked, dripped one
byte at a time, with a Content-Length that lies, or 20 MB long. The client must read every reply
whole up to ``MAX_BODY_BYTES`` and refuse anything larger with an error that says so.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest

from core.clock import FakeClock
from flows.interpreter import Interpreter, RunResult
from flows.services import AiohttpClient, FlowServices
from flows.simulator import SimulatedCall
from flows.webhook import WebhookReplyError
from tests.unit.test_flows_http import http_flow

MAX = AiohttpClient.MAX_BODY_BYTES
REPLY = json.dumps({"account": {"balance": 42.5, "tags": ["a", "b"]}}).encode()
Writer = Callable[[asyncio.StreamWriter], Awaitable[None]]


def _head(extra: str) -> bytes:
    return f"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n{extra}\r\n".encode()


async def _pause() -> None:
    await asyncio.sleep(0.02)  # real time: makes the kernel send separate TCP segments


def _chunked(parts: list[bytes]) -> list[bytes]:
    out = [f"{len(p):x}\r\n".encode() + p + b"\r\n" for p in parts]
    return [*out, b"0\r\n\r\n"]


class WireServer:
    """Answers ``GET /<name>`` with the behaviour registered under ``name``."""

    def __init__(self) -> None:
        self.behaviours: dict[str, Writer] = {}
        self.base = ""
        self.aborted: list[str] = []  # behaviours whose client hung up before the end

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            name = head.split(b" ", 2)[1].decode().lstrip("/")
            await self.behaviours[name](writer)
            await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError):
            self.aborted.append(locals().get("name", "?"))
        finally:
            writer.close()


@pytest.fixture
async def wire() -> AsyncIterator[WireServer]:
    srv = WireServer()
    server = await asyncio.start_server(srv.handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    srv.base = f"http://127.0.0.1:{port}"
    yield srv
    server.close()
    await server.wait_closed()


def on(srv: WireServer, name: str) -> Callable[[Writer], Writer]:
    def deco(fn: Writer) -> Writer:
        srv.behaviours[name] = fn
        return fn

    return deco


async def fetch(url: str) -> bytes:
    client = AiohttpClient()
    try:
        return (await client.request("GET", url, {}, None)).body
    finally:
        await client.close()


# --- replies that must be read whole ------------------------------------------------------------


async def test_reply_split_across_two_segments(wire: WireServer) -> None:
    @on(wire, "split")
    async def _(w: asyncio.StreamWriter) -> None:
        w.write(_head(f"Content-Length: {len(REPLY)}\r\n") + REPLY[:20])
        await w.drain()
        await _pause()
        w.write(REPLY[20:])

    assert await fetch(f"{wire.base}/split") == REPLY


async def test_chunked_reply(wire: WireServer) -> None:
    @on(wire, "chunked")
    async def _(w: asyncio.StreamWriter) -> None:
        w.write(_head("Transfer-Encoding: chunked\r\n"))
        for piece in _chunked([REPLY[:5], REPLY[5:17], REPLY[17:]]):
            w.write(piece)
            await w.drain()
            await _pause()

    assert await fetch(f"{wire.base}/chunked") == REPLY


async def test_dripped_reply(wire: WireServer) -> None:
    @on(wire, "drip")
    async def _(w: asyncio.StreamWriter) -> None:
        w.write(_head(f"Content-Length: {len(REPLY)}\r\n"))
        for i in range(len(REPLY)):
            w.write(REPLY[i : i + 1])
            await w.drain()
            await asyncio.sleep(0.002)

    assert await fetch(f"{wire.base}/drip") == REPLY


async def test_reply_without_length_ends_at_close(wire: WireServer) -> None:
    @on(wire, "close")
    async def _(w: asyncio.StreamWriter) -> None:
        w.write(_head("Connection: close\r\n") + REPLY[:9])
        await w.drain()
        await _pause()
        w.write(REPLY[9:])

    assert await fetch(f"{wire.base}/close") == REPLY


@pytest.mark.parametrize("chunked", [False, True])
async def test_large_reply_under_the_limit_is_read_whole(wire: WireServer, chunked: bool) -> None:
    payload = json.dumps({"pad": "x" * (MAX - 20)}).encode()
    assert len(payload) <= MAX

    @on(wire, "big")
    async def _(w: asyncio.StreamWriter) -> None:
        pieces = [payload[i : i + 65536] for i in range(0, len(payload), 65536)]
        if chunked:
            w.write(_head("Transfer-Encoding: chunked\r\n"))
            pieces = _chunked(pieces)
        else:
            w.write(_head(f"Content-Length: {len(payload)}\r\n"))
        for p in pieces:
            w.write(p)
            await w.drain()

    assert await fetch(f"{wire.base}/big") == payload


async def test_reply_of_exactly_the_limit_is_accepted(wire: WireServer) -> None:
    payload = b"7" * MAX

    @on(wire, "exact")
    async def _(w: asyncio.StreamWriter) -> None:
        w.write(_head("Transfer-Encoding: chunked\r\n"))
        for p in _chunked([payload[: MAX // 2], payload[MAX // 2 :]]):
            w.write(p)

    assert len(await fetch(f"{wire.base}/exact")) == MAX


# --- replies that must be refused with a clear error ---------------------------------------------

TWENTY_MB = 20_000_000


async def _stream(w: asyncio.StreamWriter, total: int, *, chunked: bool) -> None:
    block = b"1" * 65536
    sent = 0
    while sent < total:
        piece = block[: total - sent]
        w.write(_chunked([piece])[0] if chunked else piece)
        await w.drain()
        sent += len(piece)
    if chunked:
        w.write(b"0\r\n\r\n")


@pytest.mark.parametrize(
    ("name", "head", "chunked"),
    [
        ("declared", f"Content-Length: {TWENTY_MB}\r\n", False),
        ("chunked", "Transfer-Encoding: chunked\r\n", True),
        ("until_close", "Connection: close\r\n", False),
    ],
)
async def test_twenty_megabytes_are_refused(
    wire: WireServer, name: str, head: str, chunked: bool
) -> None:
    @on(wire, name)
    async def _(w: asyncio.StreamWriter) -> None:
        w.write(_head(head))
        await _stream(w, TWENTY_MB, chunked=chunked)

    with pytest.raises(WebhookReplyError, match=f"larger than {MAX} bytes"):
        await fetch(f"{wire.base}/{name}")


async def test_one_byte_over_the_limit_is_refused(wire: WireServer) -> None:
    @on(wire, "over")
    async def _(w: asyncio.StreamWriter) -> None:
        w.write(_head("Transfer-Encoding: chunked\r\n"))
        await _stream(w, MAX + 1, chunked=True)

    with pytest.raises(WebhookReplyError, match="larger than"):
        await fetch(f"{wire.base}/over")


async def test_content_length_longer_than_the_body(wire: WireServer) -> None:
    @on(wire, "short")
    async def _(w: asyncio.StreamWriter) -> None:
        w.write(_head("Content-Length: 1000\r\n") + REPLY)  # then the server closes

    with pytest.raises(WebhookReplyError, match=f"ended after {len(REPLY)} of 1000 bytes"):
        await fetch(f"{wire.base}/short")


# --- through the http node: the flow sees whole replies and clear errors --------------------------


async def run_node(url: str, clock: FakeClock) -> RunResult:
    client = AiohttpClient()
    call = SimulatedCall(clock)
    try:
        flow = http_flow(url, method="GET", json_body=None, retries=0)
        interp = Interpreter(flow, call, clock=clock, services=FlowServices(http=client))
        return await asyncio.wait_for(interp.run(), 20)
    finally:
        await client.close()


async def test_node_maps_a_split_reply(wire: WireServer, fake_clock: FakeClock) -> None:
    @on(wire, "split")
    async def _(w: asyncio.StreamWriter) -> None:
        w.write(_head(f"Content-Length: {len(REPLY)}\r\n") + REPLY[:3])
        await w.drain()
        await _pause()
        w.write(REPLY[3:])

    res = await run_node(f"{wire.base}/split", fake_clock)
    assert res.trace[-1]["node_id"] == "good", res.trace
    assert res.variables["balance"] == 42.5 and res.variables["tag"] == "b"


async def test_node_refuses_a_huge_reply_by_name(wire: WireServer, fake_clock: FakeClock) -> None:
    @on(wire, "huge")
    async def _(w: asyncio.StreamWriter) -> None:
        w.write(_head("Transfer-Encoding: chunked\r\n"))
        await _stream(w, TWENTY_MB, chunked=True)

    res = await run_node(f"{wire.base}/huge", fake_clock)
    assert res.trace[-1]["node_id"] == "bad"
    assert f"webhook reply larger than {MAX} bytes" in res.trace[1]["detail"]


async def test_node_reports_a_reply_nested_too_deeply(
    wire: WireServer, fake_clock: FakeClock
) -> None:
    deep = b"[" * 200_000 + b"]" * 200_000

    @on(wire, "deep")
    async def _(w: asyncio.StreamWriter) -> None:
        w.write(_head(f"Content-Length: {len(deep)}\r\n") + deep)

    res = await run_node(f"{wire.base}/deep", fake_clock)
    assert res.trace[-1]["node_id"] == "bad"
    assert "webhook reply is not JSON" in res.trace[1]["detail"]
    assert "nested" in res.trace[1]["detail"]


async def test_node_reports_nan_and_huge_numbers(wire: WireServer, fake_clock: FakeClock) -> None:
    for name, body in (
        ("nan", b'{"account": {"balance": NaN, "tags": [1, 2]}}'),
        ("bigint", b'{"account": {"balance": ' + b"9" * 5000 + b', "tags": [1, 2]}}'),
    ):

        @on(wire, name)
        async def _(w: asyncio.StreamWriter, body: bytes = body) -> None:
            w.write(_head(f"Content-Length: {len(body)}\r\n") + body)

        res = await run_node(f"{wire.base}/{name}", fake_clock)
        assert res.trace[-1]["node_id"] == "bad", (name, res.trace)
        assert "webhook reply" in res.trace[1]["detail"]
