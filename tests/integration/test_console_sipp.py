"""The console against a real engine and real SIPp peers on loopback.

* A flow drawn and published through the API runs on the very next SIPp call to its number;
  publishing a new version changes what the next call hears.
* A test call placed through the API reaches a SIPp answerer, runs the flow, and every event of
  that call arrives on the live stream (SSE) in the order the engine published it.

Prompts are tones (a speech double: these tests are about the console, routing and events, not
voices); everything else is the real engine wiring.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from app.config import load_settings
from app.console_setup import EngineCallPlacer
from app.engine import Engine
from core.bus import BusEvent
from tests.console_harness import read_events, running_console
from tests.integration.engine_harness import ToneSpeech
from tests.netutil import free_port, free_port_block, wait_until
from tests.sipp import SippServer, run_sipp_async

pytestmark = [pytest.mark.sipp, pytest.mark.xdist_group("sipp")]
FIXTURES = Path(__file__).parent.parent / "fixtures" / "sipp"


def flow(text: str) -> dict[str, Any]:
    return {"id": "acme_main", "name": "Acme main", "nodes": [
        {"id": "start", "type": "start"},
        {"id": "hello", "type": "play", "params": {"prompt": {"text": text}}},
        {"id": "bye", "type": "hangup", "params": {"prompt": {"text": "Goodbye from Acme."}}}],
        "edges": [{"from": "start", "port": "next", "to": "hello"},
                  {"from": "hello", "port": "next", "to": "bye"}]}


def engine_env(tmp_path: Path) -> dict[str, str]:
    rtp = free_port_block(200)
    return {
        "IVR_SIP__LISTEN": f"127.0.0.1:{free_port()}",
        "IVR_STORAGE__URL": f"sqlite:///{tmp_path}/ivr.sqlite",
        "IVR_STORAGE__RECORDINGS_DIR": str(tmp_path / "rec"),
        "IVR_STORAGE__PROMPT_CACHE_DIR": str(tmp_path / "prompts"),
        "IVR_RTP__PORT_MIN": str(rtp), "IVR_RTP__PORT_MAX": str(rtp + 198),
        "IVR_SIP__DRAIN_S": "1", "IVR_METRICS__LISTEN": "", "IVR_CONSOLE__LISTEN": "127.0.0.1:0",
    }


async def test_a_flow_published_through_the_api_runs_on_the_next_sipp_call(
        tmp_path: Path) -> None:
    settings = load_settings(environ=engine_env(tmp_path))
    speech = ToneSpeech()
    engine = Engine(settings, speech=speech)  # type: ignore[arg-type]
    await engine.start()
    try:
        async with running_console(tmp_path, settings=settings, bus=engine.bus) as con:
            con.add_user("cleo", "client", "acme")
            con.add_user("olga", "ops")
            async with await con.client("cleo") as c, await con.client("olga") as ops:
                assert (await c.call("POST", "/api/flows", json_body={
                    "document": flow("Welcome to Acme.")}))[0] == 201
                status, v1 = await c.call("POST", "/api/flows/acme_main/publish",
                                          json_body={"revision": 1})
                assert status == 201 and v1["version"] == 1
                status, _ = await ops.call("PUT", "/api/routes/4001?tenant=acme",
                                           json_body={"flow_id": "acme_main"})
                assert status == 200
                host, sip_port = engine.addresses["udp"]
                first = await run_sipp_async(f"{host}:{sip_port}", FIXTURES / "uac_wait_bye.xml",
                                             local_port=free_port(), workdir=tmp_path,
                                             extra=["-s", "4001", "-m", "1"], limit_s=30)
                heard_first = list(speech.said)
                assert (await c.call("PUT", "/api/flows/acme_main/draft", json_body={
                    "document": flow("Welcome back to Acme, version two."),
                    "revision": 1}))[0] == 200
                status, v2 = await c.call("POST", "/api/flows/acme_main/publish",
                                          json_body={})
                speech.said.clear()
                second = await run_sipp_async(f"{host}:{sip_port}",
                                              FIXTURES / "uac_wait_bye.xml",
                                              local_port=free_port(), workdir=tmp_path,
                                              extra=["-s", "4001", "-m", "1"], limit_s=30)
                await engine.wait_idle()
                _, calls = await c.call("GET", "/api/calls")
    finally:
        await engine.stop(drain_s=1.0)
    assert first.successful == 1 and second.successful == 1, second.stdout[-1500:]
    assert heard_first == ["Welcome to Acme.", "Goodbye from Acme."]
    assert status == 201 and v2["version"] == 2
    assert speech.said == ["Welcome back to Acme, version two.", "Goodbye from Acme."]
    versions = sorted((c["flow_id"], c["flow_version"], c["tenant"]) for c in calls["items"])
    assert versions == [("acme_main", 1, "acme"), ("acme_main", 2, "acme")]


async def test_a_test_call_through_the_api_reaches_sipp_and_streams_its_events_in_order(
        tmp_path: Path) -> None:
    settings = load_settings(environ=engine_env(tmp_path))
    speech = ToneSpeech()
    engine = Engine(settings, speech=speech)  # type: ignore[arg-type]
    await engine.start()
    published: list[BusEvent] = []
    engine.bus.listen("", published.append)
    answerer_port = free_port()
    try:
        placer = EngineCallPlacer(engine, settings)
        async with running_console(tmp_path, settings=settings, bus=engine.bus,
                                   placer=placer) as con, SippServer(
                "uas", local_port=answerer_port, workdir=tmp_path,
                extra=["-m", "1", "-mp", str(free_port_block(4))]) as uas:
            con.add_user("dana", "designer", "acme")
            async with await con.client("dana") as c:
                assert (await c.call("POST", "/api/flows", json_body={
                    "document": flow("This is a test call.")}))[0] == 201
                assert (await c.call("POST", "/api/flows/acme_main/publish",
                                     json_body={}))[0] == 201
                watcher = asyncio.ensure_future(read_events(
                    c, "/api/events", count=100, until="call.ended", timeout_s=30))
                await wait_until(lambda: con.services.hub is not None
                                 and con.services.hub.viewers == 1, what="viewer joined")
                status, placed = await c.call("POST", "/api/testcalls", json_body={
                    "flow_id": "acme_main", "to": f"sip:bob@127.0.0.1:{answerer_port}"})
                assert status == 202, placed
                events = await watcher
                call_id = placed["call_id"]
                await wait_until(lambda: con.services.testcalls.get("acme", call_id).status
                                 != "placing", timeout_s=15, what="test call ended")
                _, state = await c.call("GET", f"/api/testcalls/{call_id}")
                await engine.wait_idle()  # the record is written in batches
                _, record = await c.call("GET", f"/api/calls/{call_id}")
            assert uas.proc is not None
    finally:
        await engine.stop(drain_s=1.0)
    streamed = [(e["event"], e["data"]["seq"]) for e in events
                if e["data"]["call_id"] == call_id]
    truth = [ev.topic for ev in published if ev.call_id == call_id
             and ev.topic.startswith(("call.", "flow.", "latency."))]
    assert [t for t, _ in streamed] == truth  # every event, in the order it was published
    assert [s for _, s in streamed] == sorted(s for _, s in streamed)
    assert truth[0] == "call.invite" and truth[-1] == "call.ended"
    assert {"call.answered", "flow.start", "flow.node", "flow.end"} <= set(truth)
    assert all(e["data"]["tenant"] == "acme" for e in events)
    assert speech.said == ["This is a test call.", "Goodbye from Acme."]
    assert state["status"] == "ended" and state["record"]["disposition"] == "answered"
    assert record["tenant"] == "acme" and record["flow_id"] == "acme_main"
    assert record["direction"] == "outbound"
