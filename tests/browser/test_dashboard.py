"""The dashboard (数据看板) in a real browser: a client opens it in Chinese and English, every
chart is drawn with the figures of its own tenant's calls (read back from the Chart.js
instances), a flow filter changes them, each chart's CSV downloads with its BOM and Chinese
headers; staff switch to every tenant; at tablet width (768x1024) neither the dashboard nor the
calls page scrolls sideways.

Call records are written through the real storage API. The console runs without an engine, so
the two live calls are ``call.invite``/``call.answered``/``flow.start`` events published on its
bus the way the engine's controller and flow runner publish them (the real engine's live count
is tested with SIPp in tests/integration/test_dashboard_sipp.py)."""

from __future__ import annotations

import csv
import io
import time
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import expect

from console.roles import Principal
from console.services.base import Actor
from core.bus import EventBus
from engine.cdr import CallRecord
from tests.browser.harness import browser_page, login, shot, untranslated
from tests.console_harness import PASSWORD, running_console

pytestmark = [pytest.mark.xdist_group("browser"), pytest.mark.timeout(180)]

SUM = "([id, i]) => Chart.getChart(document.getElementById(id)).data.datasets[i].data" \
      ".reduce((a, b) => a + (b || 0), 0)"
LABELS = "id => Chart.getChart(document.getElementById(id)).data.labels"


def records(now: float) -> list[CallRecord]:
    """acme: 5 calls in the last few hours (3 on flow main, 2 on flow sales); globex: 4."""
    out = []
    for i, (flow, answered, status) in enumerate([
            ("main", True, "hangup"), ("main", True, "caller_hangup"), ("main", False, None),
            ("sales", True, "transferred"), ("sales", True, "hangup")]):
        at = now - 3 * 3600 + i * 1800
        out.append(CallRecord(
            f"sip-acme-{i}", "inbound" if i % 2 == 0 else "outbound", "+8613800138000", "4001",
            tenant="acme", invite_at=at, answer_at=at + 1 if answered else None, end_at=at + 60,
            disposition="answered" if answered else "no_answer", flow_id=flow, flow_version=1,
            flow_result={"status": status, "last_node": "bye"} if status else {},
            trace=[{"kind": "latency.turn", "total_ms": 400.0 + 100 * i, "budget_ms": 600},
                   {"kind": "listen", "status": "nomatch" if i == 0 else "ok"}]
            if answered else []))
    for i in range(4):
        at = now - 2 * 3600 + i * 60
        out.append(CallRecord(f"sip-gx-{i}", "inbound", "+8613600136000", "5001",
                              tenant="globex", invite_at=at, answer_at=at + 1, end_at=at + 9,
                              disposition="answered", flow_id="gx",
                              flow_result={"status": "hangup", "last_node": "gx_bye"}))
    return out


def flow(fid: str) -> dict[str, Any]:
    return {"id": fid, "name": fid.title(), "nodes": [
        {"id": "start", "type": "start"}, {"id": "bye", "type": "hangup"}],
        "edges": [{"from": "start", "port": "next", "to": "bye"}]}


def live_call(bus: EventBus, call_id: str, tenant: str) -> None:
    bus.publish("call.invite", call_id, direction="inbound", caller="+8613800138000",
                callee="4001", at=time.time())
    bus.publish("call.answered", call_id, at=time.time(), codec="PCMA")
    bus.publish("flow.start", call_id, tenant=tenant, flow_id="main", flow_version=1)


async def chart_sum(page: Any, chart: str, dataset: int = 0) -> float:
    return float(await page.evaluate(SUM, [f"chart-{chart}", dataset]))


async def wait_for_charts(page: Any) -> None:
    await page.wait_for_function(
        "() => ['calls','rates','dispositions','exits','latency','nomatch','live'].every("
        "n => Chart.getChart(document.getElementById('chart-' + n)))")


def read_csv(path: Path) -> list[list[str]]:
    raw = path.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf"), "Excel needs the BOM to read UTF-8"
    return list(csv.reader(io.StringIO(raw.decode("utf-8-sig"))))


async def test_a_clients_dashboard_in_chinese_and_english(tmp_path: Path) -> None:
    bus = EventBus()
    async with running_console(tmp_path, bus=bus) as con:
        con.services.calls.save_many(records(time.time()))
        con.add_user("cleo", "client", "acme")
        for fid in ("main", "sales"):
            con.services.flows.publish_document(Actor(Principal.cli("seed")), "acme", flow(fid))
        live_call(bus, "live-acme-1", "acme")
        live_call(bus, "live-acme-2", "acme")
        live_call(bus, "live-gx-1", "globex")
        async with browser_page(locale="zh-CN") as (page, watch):
            await login(page, con.url, "cleo", PASSWORD)
            await page.click("a[data-page=dashboard]")
            await expect(page.locator("h1")).to_have_text("数据看板")
            await wait_for_charts(page)
            await expect(page.locator("#tile-calls .tile-value")).to_have_text("5")
            assert await page.locator("#dash-tenant").count() == 0  # a client has one tenant
            # every chart holds acme's figures, none of globex's
            assert await chart_sum(page, "calls", 0) + await chart_sum(page, "calls", 1) == 5
            assert await chart_sum(page, "calls", 1) == 2  # the outbound ones
            dispositions = await page.evaluate(LABELS, "chart-dispositions")
            assert sorted(dispositions) == ["已接通", "无人接听"]
            assert await chart_sum(page, "dispositions") == 5
            exits = await page.evaluate(LABELS, "chart-exits")
            assert len(exits) == 4 and not any("gx" in e for e in exits)
            assert "main · bye · 来电者挂机" in exits
            assert await chart_sum(page, "exits") == 4
            assert await chart_sum(page, "latency", 2) == 2  # 700 and 800 ms: over 600
            await expect(page.locator("#tile-answer_rate .tile-value")).to_have_text("80%")
            await expect(page.locator("#tile-completion_rate .tile-value")).to_have_text("75%")
            await expect(page.locator("#tile-nomatch_rate .tile-value")).to_have_text("25%")
            await expect(page.locator("#tile-live .tile-value")).to_have_text("2")
            assert await chart_sum(page, "live") == 2
            assert await untranslated(page) == []
            await shot(page, "zh-dashboard")

            # a filter changes the data: flow "sales" holds two of the five calls
            await page.select_option("#dash-flow", "sales")
            await expect(page.locator("#tile-calls .tile-value")).to_have_text("2")
            assert await chart_sum(page, "calls", 0) + await chart_sum(page, "calls", 1) == 2
            assert await chart_sum(page, "exits") == 2
            await expect(page.locator("#tile-completion_rate .tile-value")).to_have_text("100%")

            # each chart's data downloads as CSV, headers in the reader's language
            async with page.expect_download() as download:
                await page.click("#export-calls")
            got = read_csv(Path(await (await download.value).path()))
            assert got[0] == ["开始时间", "呼入", "呼出", "呼叫总数"]
            assert sum(int(r[3]) for r in got[1:]) == 2
            assert len(got) - 1 in (24, 25)  # the hours of the last day
            async with page.expect_download() as download:
                await page.click("#export-exits")
            assert (await download.value).suggested_filename == "calls-exits.csv"
            exits_csv = read_csv(Path(await (await download.value).path()))
            assert sorted(exits_csv[1:]) == [["sales", "bye", "hangup", "1"],
                                             ["sales", "bye", "transferred", "1"]]

            await page.select_option("#lang", "en")
            await expect(page.locator("h1")).to_have_text("Dashboard")
            await wait_for_charts(page)
            await expect(page.locator("#tile-calls .tile-value")).to_have_text("5")
            assert sorted(await page.evaluate(LABELS, "chart-dispositions")) == [
                "answered", "no answer"]
            assert await untranslated(page) == []
            await shot(page, "en-dashboard")
            async with page.expect_download() as download:
                await page.click("#export-latency")
            latency = read_csv(Path(await (await download.value).path()))
            assert latency[0] == ["Bucket start", "Turns", "p50 (ms)", "p95 (ms)", "Over budget"]
            assert sum(int(r[1]) for r in latency[1:]) == 4
            watch.check()


async def test_staff_see_every_tenant_and_tablet_width_does_not_scroll(tmp_path: Path) -> None:
    async with running_console(tmp_path) as con:
        now = time.time()
        con.services.calls.save_many(records(now) + [  # the calls page's rows (ops' tenant)
            CallRecord(f"sip-default-{i}", "outbound", "+8613800138000", "+86201234567890",
                       invite_at=now - 600 * i, answer_at=now - 600 * i + 2,
                       end_at=now - 600 * i + 3725, disposition="answered",
                       flow_id="customer_satisfaction_survey_2026", flow_version=12)
            for i in range(3)])
        con.add_user("olga", "ops")
        async with browser_page() as (page, watch):
            await page.set_viewport_size({"width": 768, "height": 1024})
            await login(page, con.url, "olga", PASSWORD)
            await page.click("a[data-page=dashboard]")
            await wait_for_charts(page)
            await expect(page.locator("#tile-calls .tile-value")).to_have_text("3")
            await expect(page.locator("#card-live .dash-card-note")).to_have_text(
                "Live calls need the engine (ivr run); this console runs on its own.")
            await page.select_option("#dash-tenant", "*")
            await expect(page.locator("#tile-calls .tile-value")).to_have_text("12")
            await page.select_option("#dash-range", "7d")
            await page.select_option("#dash-bucket", "day")
            await page.click("#dash-apply")
            await page.wait_for_function(  # seven or eight local days instead of 24 hours
                "() => Chart.getChart(document.getElementById('chart-calls')).data.labels"
                ".length <= 8")
            await expect(page.locator("#tile-calls .tile-value")).to_have_text("12")
            assert await chart_sum(page, "calls", 0) + await chart_sum(page, "calls", 1) == 12
            for where in ("dashboard", "calls"):
                await page.click(f"a[data-page={where}]")
                await page.wait_for_selector("#dash-tiles .tile, #call-list tbody tr.clickable")
                width = await page.evaluate(
                    "() => [document.documentElement.scrollWidth, innerWidth]")
                assert width[0] <= width[1], f"{where} scrolls sideways at 768 px: {width}"
                await shot(page, f"en-tablet-{where}")
            nav = await page.evaluate(
                "() => [...document.querySelectorAll('.nav a')].every(a => "
                "a.getBoundingClientRect().right <= innerWidth)")
            assert nav, "a navigation link is off screen at tablet width"
            assert await untranslated(page) == []
            watch.check()
