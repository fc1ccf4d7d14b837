"""The http node against a real aiohttp server on loopback: success, 500, garbage, hang, 404."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web

from core.clock import FakeClock
from flows.interpreter import Interpreter, RunResult
from flows.nodes.external import json_path
from flows.services import AiohttpClient, FlowServices
from flows.simulator import SimulatedCall
from flows.validator import compile_flow


class Server:
    def __init__(self) -> None:
        self.hits: dict[str, int] = {}
        self.bodies: list[Any] = []
        self.hanging = asyncio.Event()
        self.base = ""

    async def handle(self, request: web.Request) -> web.StreamResponse:
        name = request.match_info["name"]
        self.hits[name] = self.hits.get(name, 0) + 1
        if request.can_read_body:
            self.bodies.append(await request.json())
        if name == "ok":
            return web.json_response({"account": {"balance": 42.5, "tags": ["a", "b"]}})
        if name == "garbage":
            return web.Response(text="<html>definitely not json")
        if name == "err500":
            return web.Response(status=500)
        if name == "flaky":
            if self.hits[name] == 1:
                return web.Response(status=503)
            return web.json_response({"account": {"balance": 1, "tags": ["y", "z"]}})
        if name == "hang":
            self.hanging.set()
            await asyncio.sleep(3600)
        return web.Response(status=404)


@pytest.fixture
async def server() -> AsyncIterator[Server]:
    srv = Server()
    app = web.Application()
    app.router.add_route("*", "/{name}", srv.handle)
    runner = web.AppRunner(app, shutdown_timeout=0.1)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    srv.base = f"http://127.0.0.1:{port}"
    yield srv
    await runner.cleanup()


def http_flow(url: str, **params: Any) -> Any:
    node = {
        "id": "h",
        "type": "http",
        "params": {
            "url": url,
            "method": "POST",
            "json_body": {"who": "caller"},
            "map": {"balance": "$.account.balance", "tag": "$.account.tags[1]"},
            "status_variable": "status",
            "retry_backoff_s": 0,
            **params,
        },
    }
    return compile_flow(
        {
            "id": "h",
            "name": "h",
            "nodes": [
                {"id": "start", "type": "start"},
                node,
                {"id": "good", "type": "hangup"},
                {"id": "bad", "type": "hangup"},
            ],
            "edges": [
                {"from": "start", "port": "next", "to": "h"},
                {"from": "h", "port": "ok", "to": "good"},
                {"from": "h", "port": "error", "to": "bad"},
            ],
        }
    )


async def run(flow: Any, clock: FakeClock) -> tuple[asyncio.Task[RunResult], AiohttpClient]:
    client = AiohttpClient()
    call = SimulatedCall(clock, caller="+1555")
    task = asyncio.create_task(
        Interpreter(flow, call, clock=clock, services=FlowServices(http=client)).run()
    )
    return task, client


async def finish(task: asyncio.Task[RunResult], client: AiohttpClient) -> RunResult:
    try:
        return await asyncio.wait_for(task, 10)
    finally:
        await client.close()


async def test_success_maps_json_into_variables(server: Server, fake_clock: FakeClock) -> None:
    task, client = await run(http_flow(f"{server.base}/ok"), fake_clock)
    res = await finish(task, client)
    assert res.trace[-1]["node_id"] == "good"
    assert res.variables["balance"] == 42.5 and res.variables["tag"] == "b"
    assert res.variables["status"] == 200
    assert server.bodies == [{"who": "+1555"}]


async def test_500_is_retried_then_error_port(server: Server, fake_clock: FakeClock) -> None:
    task, client = await run(http_flow(f"{server.base}/err500", retries=2), fake_clock)
    res = await finish(task, client)
    assert res.trace[-1]["node_id"] == "bad"
    assert server.hits["err500"] == 3
    assert "HTTP 500" in res.trace[1]["detail"]


async def test_flaky_server_succeeds_on_retry(server: Server, fake_clock: FakeClock) -> None:
    task, client = await run(http_flow(f"{server.base}/flaky", retries=1), fake_clock)
    res = await finish(task, client)
    assert res.trace[-1]["node_id"] == "good" and res.variables["tag"] == "z"


async def test_garbage_reply_takes_error_port(server: Server, fake_clock: FakeClock) -> None:
    task, client = await run(http_flow(f"{server.base}/garbage"), fake_clock)
    res = await finish(task, client)
    assert res.trace[-1]["node_id"] == "bad"
    assert "not JSON" in res.trace[1]["detail"]


async def test_404_is_not_retried(server: Server, fake_clock: FakeClock) -> None:
    task, client = await run(http_flow(f"{server.base}/missing", retries=3), fake_clock)
    res = await finish(task, client)
    assert server.hits["missing"] == 1 and "HTTP 404" in res.trace[1]["detail"]


async def test_hanging_webhook_times_out_on_the_clock(
    server: Server, fake_clock: FakeClock
) -> None:
    task, client = await run(http_flow(f"{server.base}/hang", timeout_s=2, retries=0), fake_clock)
    await asyncio.wait_for(server.hanging.wait(), 5)
    await fake_clock.advance(1.9)
    assert not task.done()
    await fake_clock.advance(0.2)
    res = await finish(task, client)
    assert res.trace[-1]["node_id"] == "bad"
    assert "no answer within 2 s" in res.trace[1]["detail"]


async def test_connection_refused_takes_error_port(fake_clock: FakeClock) -> None:
    import socket

    from tests.netutil import free_port

    port = free_port(socket.SOCK_STREAM)
    task, client = await run(http_flow(f"http://127.0.0.1:{port}/x"), fake_clock)
    res = await finish(task, client)
    assert res.trace[-1]["node_id"] == "bad"


def test_json_path() -> None:
    doc = json.loads('{"a": {"b": [{"c": 1}, {"c": 2}]}}')
    assert json_path(doc, "$.a.b[1].c") == 2
    assert json_path(doc, "a.b[0]") == {"c": 1}
    with pytest.raises(KeyError, match="no field 'x'"):
        json_path(doc, "$.a.x")
    with pytest.raises(KeyError, match=r"no item \[5\]"):
        json_path(doc, "$.a.b[5]")
