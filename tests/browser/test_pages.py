"""Words, lists and calls in a real browser, as an enterprise client in Chinese (then English):
a sentence tested against the words with the hit highlighted, a list imported with a bad row
reported by line, a number searched with every reason it would be refused, a call opened with
its path on the flow's graph and its stereo recording played; and another tenant's flow and call
stay invisible (the list does not show them, their addresses answer 'not found')."""

from __future__ import annotations

import wave
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from playwright.async_api import expect

from engine.cdr import CallRecord
from tests.browser.harness import browser_page, login, shot, untranslated
from tests.console_harness import PASSWORD, running_console

pytestmark = [pytest.mark.xdist_group("browser"), pytest.mark.timeout(180)]


def flow(fid: str, name: str) -> dict[str, Any]:
    return {"id": fid, "name": name, "nodes": [
        {"id": "start", "type": "start", "position": {"x": 40, "y": 60}},
        {"id": "menu", "type": "menu", "position": {"x": 320, "y": 40},
         "params": {"prompt": {"text": "查询余额请按1。"}, "options": [
             {"port": "balance", "digits": ["1"]}]}},
        {"id": "bye", "type": "hangup", "position": {"x": 620, "y": 60},
         "params": {"prompt": {"text": "再见。"}}}],
        "edges": [{"from": "start", "port": "next", "to": "menu"},
                  {"from": "menu", "port": "balance", "to": "bye"},
                  {"from": "menu", "port": "no_input", "to": "bye"},
                  {"from": "menu", "port": "no_match", "to": "bye"}]}


def stereo_wav(path: Path, seconds: float = 2.0) -> None:
    """Caller on the left channel, the IVR on the right, 8 kHz 16-bit, like the engine's."""
    t = np.arange(int(8000 * seconds)) / 8000
    left = (np.sin(2 * np.pi * 300 * t) * 6000).astype(np.int16)
    right = (np.sin(2 * np.pi * 700 * t) * 6000).astype(np.int16)
    with wave.open(str(path), "wb") as w:
        w.setnchannels(2)
        w.setsampwidth(2)
        w.setframerate(8000)
        w.writeframes(np.column_stack([left, right]).tobytes())


LIST_CSV = "number,list,reason\n+8613800138000,black,complaint\nnot-a-number,black,other\n" \
           "+8613900139000,black,opt-out\n"


async def test_words_lists_calls_and_tenancy_as_a_client(tmp_path: Path) -> None:
    async with running_console(tmp_path) as con:
        con.add_user("cleo", "client", "acme")
        con.add_user("gina", "client", "globex")
        for user, fid, name in (("cleo", "acme_main", "Acme 客服"), ("gina", "gx_main", "Globex")):
            async with await con.client(user) as c:
                created = await c.call("POST", "/api/flows",
                                       json_body={"document": flow(fid, name)})
                assert created[0] == 201
                assert (await c.call("POST", f"/api/flows/{fid}/publish", json_body={}))[0] == 201
        rec_dir = Path(con.settings.storage.recordings_dir)
        rec_dir.mkdir(parents=True, exist_ok=True)  # noqa: ASYNC240 - setup before the browser
        stereo_wav(rec_dir / "acme-1.wav")
        ours = CallRecord("sip-acme-1", "inbound", "+8613700137000", "4001", tenant="acme",
                          invite_at=1_767_000_000, answer_at=1_767_000_001, end_at=1_767_000_031,
                          disposition="answered", flow_id="acme_main", flow_version=1,
                          recording_path=str(rec_dir / "acme-1.wav"), digits="1",
                          trace=[{"kind": "node.enter", "t": 0.0, "node_id": "start"},
                                 {"kind": "node.enter", "t": 0.1, "node_id": "menu"},
                                 {"kind": "turn", "t": 3.0, "node_id": "menu", "total_ms": 412},
                                 {"kind": "node.leave", "t": 4.1, "node_id": "menu",
                                  "outcome": "balance"},
                                 {"kind": "node.enter", "t": 4.2, "node_id": "bye"}],
                          flow_result={"status": "hangup"})
        theirs = CallRecord("sip-gx-1", "inbound", "+8613600136000", "5001", tenant="globex",
                            disposition="answered", flow_id="gx_main", flow_version=1)
        con.services.calls.save_many([ours, theirs])
        csv_path = tmp_path / "名单.csv"
        csv_path.write_text(LIST_CSV, "utf-8")

        async with browser_page(locale="zh-CN") as (page, watch):
            await login(page, con.url, "cleo", PASSWORD)
            assert "退出登录" in await page.inner_text("header.top")
            await expect(page.locator("#page table")).to_contain_text("acme_main")
            assert "gx_main" not in await page.inner_text("#page")
            await shot(page, "zh-flows-client")

            # words: add a term, then test a sentence; the hit is highlighted
            await page.click("a[data-page=words]")
            await page.fill("#word-term", "诈骗电话")
            await page.select_option("#word-category", "fraud")
            await page.click("#word-add button[type=submit]")
            await expect(page.locator("#word-list")).to_contain_text("诈骗电话")
            await page.fill("#word-test", "您好，这是诈骗电话吗？")
            await page.click("#word-test-form button[type=submit]")
            await expect(page.locator("#word-test-text mark.hit")).to_have_text("诈骗电话")
            assert "拦截" in await page.inner_text("#word-verdict")
            assert await untranslated(page) == []
            await shot(page, "zh-words")

            # lists: import with a bad row (reported by its line), then search a number
            await page.click("a[data-page=lists]")
            await page.set_input_files("#list-file", str(csv_path))
            await page.click("#list-import button[type=submit]")
            report = page.locator("#import-report")
            await expect(report).to_contain_text("导入 2 行")
            assert "not-a-number" in await report.inner_text()
            assert await report.locator("tbody tr").count() == 1
            assert (await report.locator("tbody tr td").first.inner_text()).strip() == "3"
            await expect(page.locator("#list-entries")).to_contain_text("+8613800138000")
            await page.fill("#check-number", "+8613800138000")
            await page.click("#check-form button[type=submit]")
            await expect(page.locator("#check-verdict")).to_have_text("拒绝拨打")
            assert await page.locator("#check-result li").count() >= 1
            assert await untranslated(page) == []
            await shot(page, "zh-lists")

            # calls: only ours; its detail shows the path on the graph and plays the recording
            await page.click("a[data-page=calls]")
            await expect(page.locator("#call-list tbody tr")).to_have_count(1)
            assert "+8613600136000" not in await page.inner_text("#call-list")
            await page.click("#call-list tbody tr")
            await page.wait_for_selector("#call-canvas g.x6-node")
            lit = page.locator("#call-canvas g.x6-node rect[fill='#e3f0ff']")
            await expect(lit).to_have_count(3)
            # the edge the call took (menu left through 'balance') is lit, not its siblings
            assert await page.locator("#call-canvas g.x6-edge path[stroke='#1557b0']").count() == 2
            audio = page.locator("#recording")
            assert await audio.evaluate("a => a.play().then(() => true)")
            for _ in range(50):  # it plays: the position moves on
                if await audio.evaluate("a => a.currentTime") > 0.2:
                    break
                await page.wait_for_timeout(100)
            assert await audio.evaluate("a => a.currentTime") > 0.2
            assert await audio.evaluate("a => a.duration") == pytest.approx(2.0, abs=0.05)
            assert await untranslated(page) == []
            await shot(page, "zh-call-detail")

            # another tenant's flow and call are not there, even by address
            watch.expected |= {("/api/flows/gx_main", 404), (f"/api/calls/{theirs.id}", 404)}
            for address, api_path in (("#/flows/gx_main", "/api/flows/gx_main"),
                                      (f"#/calls/{theirs.id}", f"/api/calls/{theirs.id}")):
                async with page.expect_response(lambda r, p=api_path: p in r.url) as answer:
                    await page.goto(f"{con.url}/{address}")
                assert (await answer.value).status == 404
                await expect(page.locator(".page-error")).to_contain_text("未找到")
            # (the two refusals stay expected: only these two addresses may answer 404)

            # English: the same screens
            await page.select_option("#lang", "en")
            await page.click("a[data-page=lists]")
            await expect(page.locator("h1")).to_have_text("Black/white lists")
            assert await untranslated(page) == []
            await shot(page, "en-lists")
            await page.click("a[data-page=words]")
            await shot(page, "en-words")
            await page.click("a[data-page=calls]")
            await page.click("#call-list tbody tr")
            await page.wait_for_selector("#call-canvas g.x6-node")
            await shot(page, "en-call-detail")
            watch.check()


async def test_admin_users_tokens_and_audit(tmp_path: Path) -> None:
    """An admin makes a user and an API token (shown once, then listed without its secret) in
    the browser; the audit log page shows both changes; the new user can log in."""
    async with running_console(tmp_path) as con:
        con.add_user("ada", "admin")
        async with browser_page() as (page, watch):
            await login(page, con.url, "ada", PASSWORD)
            await page.click("a[data-page=admin]")
            await page.fill("#user-name", "olga")
            await page.fill("#user-password", "a long enough password")
            await page.select_option("#user-role", "ops")
            await page.click("#user-add button[type=submit]")
            await expect(page.locator("#users table")).to_contain_text("olga")
            await page.fill("#token-name", "reports")
            await page.fill("#token-days", "30")
            await page.click("#token-add button[type=submit]")
            token = (await page.inner_text("#token-shown code")).strip()
            assert token.startswith("ivr_")
            await expect(page.locator("#tokens table")).to_contain_text("reports")
            assert token not in await page.inner_text("#tokens table")
            await page.fill("#audit-action", "")
            await page.click("#audit button[type=submit]")
            audit = page.locator("#audit table")
            await expect(audit).to_contain_text("user.create")
            await expect(audit).to_contain_text("token.create")
            assert await untranslated(page) == []
            await shot(page, "en-admin")
            await page.select_option("#lang", "zh-CN")
            await expect(page.locator("h1")).to_have_text("系统管理")
            assert await untranslated(page) == []
            await shot(page, "zh-admin")
            watch.check()
        async with await con.client("olga", "a long enough password") as c:
            status, me = await c.call("GET", "/api/auth/me")
        assert status == 200 and me["user"]["role"] == "ops"
        async with await con.client() as script:
            status, _ = await script.use_token(token).call("GET", "/api/tokens")
        assert status == 200
