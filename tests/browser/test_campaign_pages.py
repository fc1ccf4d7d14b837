"""Campaigns in a real browser, as an enterprise client: create a campaign with the sample
notification flow from the form (a bad value first, its error shown next to its field), upload
contacts with a bad row (reported by line and column), start it, watch the progress reach
finished live while the engine dials a SIPp answerer through a trunk, download the report CSV;
then pause/resume/stop another (stop asks first); in English and Chinese (no untranslated key),
with screenshots; and a client of another tenant sees none of it.

The engine, its dialler, SIP, RTP, the console, the event stream and the browser are real;
prompts are tones (ToneSpeech: this is about the console, not voices), and SIPp answers by the
dialled number's last digit (tests/campaign_sipp.py: 1 busy, 0/6 answer and wait for BYE).
"""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from playwright.async_api import expect

from app.config import load_settings
from app.console_setup import EngineCallPlacer
from app.engine import Engine
from tests.browser.harness import browser_page, login, shot, untranslated
from tests.campaign_sipp import scenario
from tests.console_harness import PASSWORD, running_console
from tests.integration.engine_harness import ToneSpeech
from tests.integration.test_console_sipp import engine_env
from tests.netutil import free_port, free_port_block
from tests.sipp import SippServer

pytestmark = [pytest.mark.sipp, pytest.mark.xdist_group("browser"), pytest.mark.timeout(240)]
ROOT = Path(__file__).resolve().parents[2]
FLOW = json.loads((ROOT / "examples/campaigns/notification_flow.json").read_text("utf-8"))
# line 4 is not a phone number; 13700137001 ends in 1: SIPp answers it busy
CONTACTS = ("手机号码,客户姓名,金额,缴费截止日期\n"
            "13800138000,张三,128.50,12月20日\n"
            "139 0013 9006,李四,86.00,12月20日\n"
            "1380013,王五,240.00,12月25日\n"
            "13700137001,赵六,99.00,12月25日\n")


async def test_campaign_pages_create_upload_run_report_in_two_languages(tmp_path: Path) -> None:
    uas_port = free_port()
    config = tmp_path / "ivr.toml"
    config.write_text(f'[[campaigns.trunks]]\nname = "sipp"\n'
                      f'uri = "sip:{{number}}@127.0.0.1:{uas_port}"\n')
    settings = load_settings(environ={**engine_env(tmp_path), "IVR_CONFIG": str(config),
                                      "IVR_CAMPAIGNS__POLL_S": "0.3"})
    engine = Engine(settings, speech=ToneSpeech())  # type: ignore[arg-type]
    await engine.start()
    assert engine.campaigns is not None, "the dialler did not start"
    contacts = tmp_path / "名单.csv"
    contacts.write_text(CONTACTS, encoding="utf-8")
    try:
        async with running_console(tmp_path, settings=settings, bus=engine.bus,
                                   placer=EngineCallPlacer(engine, settings)) as con, SippServer(
                scenario(tmp_path, audio=False), local_port=uas_port, workdir=tmp_path,
                extra=["-mp", str(free_port_block(40))]):
            con.add_user("cleo", "client", "acme")
            con.add_user("gina", "client", "globex")
            async with await con.client("cleo") as c:
                assert (await c.call("POST", "/api/flows", json_body={"document": FLOW}))[0] == 201
                published = await c.call("POST", f"/api/flows/{FLOW['id']}/publish",
                                         json_body={})
                assert published[0] == 201, published
            async with browser_page() as (page, watch):
                await login(page, con.url, "cleo", PASSWORD)
                await page.click("a[data-page=campaigns]")
                await page.click("#campaign-new")
                await page.wait_for_selector("#campaign-form")
                await page.fill("#cf-name", "燃气费提醒 12月")
                await page.fill("#cf-id", "gas-2026-12")
                await page.select_option("#cf-flow", FLOW["id"])
                await page.fill("#cf-window-start", "00:00")
                await page.fill("#cf-window-end", "23:59")
                await page.fill("#cf-variables", "name: 客户姓名, 姓名\namount: 金额")
                await page.fill("#cf-required", "name, amount")
                await page.uncheck("tr[data-spec='retry.on.busy'] input[type=checkbox]")
                await page.fill("#cf-cps", "-1")
                await page.fill("#cf-numbers", "+861062345671\nnot-a-number")
                # the server refuses; each error sits next to the field it names
                watch.expected.add(("/api/campaigns", 422))
                await page.click("#cf-submit")
                cps_error = page.locator(".field-error[data-field='pacing.calls_per_s']")
                await expect(cps_error).to_be_visible()
                assert await page.get_attribute("#cf-cps", "aria-invalid") == "true"
                await shot(page, "en-campaign-form-errors")
                await page.fill("#cf-cps", "5")
                await page.fill("#cf-numbers", "")
                await page.click("#cf-submit")
                await page.wait_for_selector("#campaign-upload")
                assert "gas-2026-12" in page.url
                await expect(page.locator("#campaign-facts")).to_contain_text(f"{FLOW['id']} v1")
                # contacts: the bad row by line and column, the rest imported
                await page.set_input_files("#contacts-file", str(contacts))
                await page.click("#contacts-form button[type=submit]")
                report = page.locator("#import-report")
                await expect(report).to_contain_text("3")
                rows = page.locator("#import-report tbody tr")
                await expect(rows).to_have_count(1)
                assert "4" in await rows.first.inner_text()
                assert "手机号码" in await rows.first.inner_text()
                await shot(page, "en-campaign-contacts")
                # start; the progress reaches finished from the live stream
                await page.click("#campaign-start")
                percent = page.locator("#campaign-percent")
                await expect(percent).to_have_attribute("data-state", "finished",
                                                        timeout=60_000)
                await expect(percent).to_have_attribute("data-progress", "1")
                await expect(page.locator("#campaign-eta")).to_contain_text("Finished")
                assert await page.locator("#campaign-actions button").count() == 0
                metrics = page.locator("#campaign-metrics")
                await expect(metrics).to_contain_text("66.7%")  # 2 of 3 attempts answered
                assert await untranslated(page) == []
                await shot(page, "en-campaign-finished")
                async with page.expect_download() as download_info:
                    await page.click("#campaign-csv")
                download = await download_info.value
                saved = await download.path()
                text = Path(saved).read_text("utf-8-sig")  # noqa: ASYNC240 - a small file
                by_number = {r["number"]: r for r in csv.DictReader(io.StringIO(text))}
                assert set(by_number) == {"+8613800138000", "+8613900139006", "+8613700137001"}
                assert by_number["+8613700137001"]["last_disposition"] == "busy"
                assert by_number["+8613800138000"]["last_disposition"] == "answered"

                # another campaign: pause, resume, and stop only after saying yes
                async with await con.client("cleo") as c:
                    spec = {"id": "later-1", "name": "Later", "flow": {"id": FLOW["id"]},
                            "schedule": {"start_at": "2099-01-01T09:00:00+08:00"}}
                    assert (await c.call("POST", "/api/campaigns",
                                         json_body={"spec": spec}))[0] == 201
                    up = await c.call("POST", "/api/campaigns/later-1/contacts",
                                      data=CONTACTS.encode(),
                                      headers={"Content-Type": "text/csv"})
                    assert up[0] == 200, up
                await page.goto(f"{con.url}/#/campaigns")
                await expect(page.locator("#campaign-list tbody tr")).to_have_count(2)
                await page.click("#campaign-list tr:has-text('later-1')")
                # a draft is edited in the form: its saved spec fills the fields, saving
                # changes what was changed and keeps the rest (the start time, the flow)
                await page.click("#campaign-edit")
                await page.wait_for_selector("#campaign-form")
                assert await page.input_value("#cf-name") == "Later"
                assert await page.is_disabled("#cf-id")
                assert await page.input_value("#cf-start-at") != ""
                await page.fill("#cf-name", "Later, edited")
                await page.fill("#cf-cps", "2")
                await shot(page, "en-campaign-edit")
                await page.click("#cf-submit")
                await expect(page.locator("h1")).to_contain_text("Later, edited")
                async with await con.client("cleo") as c:
                    _, got = await c.call("GET", "/api/campaigns/later-1")
                saved = got["campaign"]["spec"]
                assert (saved["name"], saved["pacing"]["calls_per_s"]) == ("Later, edited", 2)
                assert datetime.fromisoformat(saved["schedule"]["start_at"]) == datetime(
                    2099, 1, 1, 1, 0, tzinfo=UTC)  # 09:00 +08:00, unchanged
                assert got["campaign"]["flow_id"] == FLOW["id"]
                await page.click("#campaign-start")
                await page.click("#campaign-pause")
                await page.click("#campaign-resume")
                await page.click("#campaign-stop")
                await expect(page.locator("#confirm-dialog")).to_be_visible()
                await shot(page, "en-campaign-confirm-stop")
                await page.click("#confirm-no")
                await expect(page.locator("#campaign-stop")).to_be_visible()
                await page.click("#campaign-stop")
                await page.click("#confirm-yes")
                await expect(page.locator("#campaign-percent")).to_have_attribute(
                    "data-state", "stopped")

                # Chinese: the list, the form with an error, the finished campaign
                await expect(page.locator(".toast")).to_have_count(0)  # English ones gone
                await page.select_option("#lang", "zh-CN")
                await page.goto(f"{con.url}/#/campaigns")
                await expect(page.locator("#campaign-list tbody tr")).to_have_count(2)
                await expect(page.locator("#campaign-list")).to_contain_text("已完成")
                assert await untranslated(page) == []
                await shot(page, "zh-campaign-list")
                await page.click("#campaign-new")
                await page.fill("#cf-name", "测试")
                await page.fill("#cf-window-start", "21:00")
                await page.fill("#cf-window-end", "08:00")
                await page.click("#cf-submit")
                await expect(page.locator(".field-error")).to_have_count(1)
                await expect(page.locator("#cf-error")).to_contain_text("请修改")
                assert await untranslated(page) == []
                await shot(page, "zh-campaign-form")
                await page.goto(f"{con.url}/#/campaigns/gas-2026-12/acme")
                await expect(page.locator("#campaign-percent")).to_have_attribute(
                    "data-state", "finished")
                await expect(page.locator("#campaign-eta")).to_contain_text("已完成")
                assert await untranslated(page) == []
                await shot(page, "zh-campaign-finished")
                watch.check()

            # another tenant's client sees none of it
            async with browser_page() as (page, watch):
                await login(page, con.url, "gina", PASSWORD)
                await page.click("a[data-page=campaigns]")
                await expect(page.locator("#campaign-list td.empty")).to_have_count(1)
                watch.expected.add(("/api/campaigns/gas-2026-12", 404))
                await page.goto(f"{con.url}/#/campaigns/gas-2026-12")
                await expect(page.locator(".page-error")).to_be_visible()
                assert "燃气费" not in await page.inner_text("body")
                assert ("/api/campaigns/gas-2026-12", 404) in watch.seen_expected
                watch.check()
    finally:
        await engine.stop(drain_s=1.0)
