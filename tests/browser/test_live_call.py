"""A real test call from the canvas: the browser places it through the console of a running
engine, SIPp answers on loopback, and the flow's path lights up node by node from the live
event stream (SSE) while the latency ledger fills in; then the call is in the call list.
Prompts are tones (a speech double: this is about the console and the live path, not voices);
the SIP, RTP, engine, hub and browser are real."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import expect

from app.config import load_settings
from app.console_setup import EngineCallPlacer
from app.engine import Engine
from tests.browser.harness import browser_page, login, shot, untranslated
from tests.console_harness import PASSWORD, running_console
from tests.integration.engine_harness import ToneSpeech
from tests.integration.test_console_sipp import engine_env
from tests.netutil import free_port, free_port_block
from tests.sipp import SippServer

pytestmark = [pytest.mark.sipp, pytest.mark.xdist_group("browser"), pytest.mark.timeout(180)]

FLOW: dict[str, Any] = {"id": "acme_main", "name": "Acme main", "nodes": [
    {"id": "start", "type": "start", "position": {"x": 40, "y": 80}},
    {"id": "hello", "type": "play", "position": {"x": 330, "y": 60},
     "params": {"prompt": {"text": "This is a test call."}}},
    {"id": "bye", "type": "hangup", "position": {"x": 620, "y": 80},
     "params": {"prompt": {"text": "Goodbye."}}}],
    "edges": [{"from": "start", "port": "next", "to": "hello"},
              {"from": "hello", "port": "next", "to": "bye"}]}


async def test_a_test_call_from_the_canvas_lights_up_its_path_live(tmp_path: Path) -> None:
    settings = load_settings(environ=engine_env(tmp_path))
    speech = ToneSpeech()
    engine = Engine(settings, speech=speech)  # type: ignore[arg-type]
    await engine.start()
    answerer = free_port()
    try:
        async with running_console(tmp_path, settings=settings, bus=engine.bus,
                                   placer=EngineCallPlacer(engine, settings)) as con, SippServer(
                "uas", local_port=answerer, workdir=tmp_path,
                extra=["-m", "1", "-mp", str(free_port_block(4))]):
            con.add_user("dana", "designer", "acme")
            async with await con.client("dana") as c:
                created = await c.call("POST", "/api/flows", json_body={"document": FLOW})
                assert created[0] == 201
                published = await c.call("POST", "/api/flows/acme_main/publish", json_body={})
                assert published[0] == 201
            async with browser_page() as (page, watch):
                await login(page, con.url, "dana", PASSWORD)
                await page.goto(f"{con.url}/#/flows/acme_main")
                await page.wait_for_selector("#canvas g.x6-node")
                await page.click("#tab-testcall")
                await page.fill("#testcall-to", f"sip:bob@127.0.0.1:{answerer}")
                await page.click("#testcall-place")
                await expect(page.locator("#testcall-status")).to_have_attribute(
                    "data-state", "ended", timeout=30_000)
                lit = page.locator("#canvas g.x6-node rect[fill='#e3f0ff']")
                await expect(lit).to_have_count(3)
                rows = page.locator("#latency-ledger tbody tr")
                assert await rows.count() >= 2  # start, hello (bye ends the call)
                assert "hello" in await page.inner_text("#latency-ledger")
                assert await untranslated(page) == []
                await shot(page, "en-testcall")
                await page.select_option("#lang", "zh-CN")
                await page.wait_for_selector("#canvas g.x6-node")
                await page.click("#tab-testcall")
                await shot(page, "zh-testcall")
                await engine.wait_idle()  # call records are written in batches
                await page.click("a[data-page=calls]")
                await expect(page.locator("#call-list tbody tr")).to_have_count(1, timeout=15_000)
                assert "acme_main" in await page.inner_text("#call-list")
                watch.check()
    finally:
        await engine.stop(drain_s=1.0)
    assert speech.said == ["This is a test call.", "Goodbye."]
