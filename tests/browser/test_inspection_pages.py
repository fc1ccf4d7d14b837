"""The inspection pages in a real browser, once in English and once in Chinese.

A call with a real stereo recording (two LibriVox readings: the IVR's side on the right channel,
the caller's on the left) is put through the real post-call queue (InspectionWorker, whisper
tiny.en on both channels) under a scorecard imported through the API. Then a QA reviewer, in the
browser: finds the call in the review queue, opens it, sees both channels' waveforms drawn on
the canvas (the recording crosses the network once: the player plays the fetched bytes from a
blob: URL), clicks the highlighted rule hit and hears the player jump there, overrides the score
(a missing comment is refused next to the comment box first), follows the evidence's node link
to the flow path; edits a rule with a bad value (the server's error shows next to that field),
fixes and saves it; creates a second scorecard scoped to the call's flow by ticking it (a third
claiming the same flow is refused next to the flow ticks); opens the statistics, downloads the
CSV and starts a calibration session whose kappa the page shows. A second reviewer takes the
second-level review, sees the first level's verdict, agrees with it (the override stands) and
reads the call's audit trail. A client of another tenant sees none of it (the API answers
404/403, the page shows nothing of the call).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from playwright.async_api import expect

from audio.resample import to_8k
from audio.tones import silence
from audio.wavio import read_wav, write_stereo_wav
from core.clock import SystemClock
from engine.cdr import CallRecord
from inspection.inspector import Inspector
from inspection.queue import JobQueue
from inspection.worker import InspectionWorker
from tests.browser.harness import browser_page, login, logout, shot, untranslated
from tests.browser.test_pages import flow
from tests.console_harness import PASSWORD, running_console
from tests.speech_data import REAL_DIR

pytestmark = [pytest.mark.xdist_group("browser"), pytest.mark.timeout(420), pytest.mark.models]

SEEK_TOLERANCE_S = 0.3
IVR_AT_S = 0.5  # "he was not an ill disposed young man" (right channel)
CALLER_AT_S = 4.0  # "unless to be rather cold hearted and rather selfish ..." (left channel)

CARD: dict[str, Any] = {"id": "acme_qa", "name": "Acme 质检", "pass_score": 90, "sections": [
    {"name": "Script", "weight": 1, "items": [
        {"id": "opening", "name": "Opening line", "points": 1, "rule": {
            "type": "phrase", "speaker": "engine", "match": "fuzzy",
            "phrases": ["ill disposed young man"]}}]},
    {"name": "Conduct", "weight": 1, "items": [
        {"id": "selfish", "name": "No 'selfish'", "points": 1, "rule": {
            "type": "phrase", "speaker": "caller", "expect": "absent",
            "phrases": ["rather selfish"]}},
        {"id": "dead_air", "points": 1, "rule": {"type": "silence", "max_gap_ms": 8000}}]},
    {"name": "Flow", "weight": 1, "items": [
        {"id": "menu_first", "points": 1, "rule": {
            "type": "flow_path", "reached": "bye", "requires": ["verify"]}}]}]}


def _recording(path: Path) -> float:
    """Writes the call's stereo WAV; returns its length in seconds."""
    ivr, r1 = read_wav(REAL_DIR / "ps_librivox_0880.wav")
    caller, r2 = read_wav(REAL_DIR / "ps_librivox_0890.wav")
    ivr, caller = to_8k(ivr, r1), to_8k(caller, r2)
    right = np.concatenate([silence(IVR_AT_S), ivr])
    left = np.concatenate([silence(CALLER_AT_S), caller, silence(1.0)])
    write_stereo_wav(path, left, right)
    return max(len(left), len(right)) / 8000


async def _inspect_call(con: Any, tmp_path: Path) -> CallRecord:
    wav = Path(con.settings.storage.recordings_dir) / "acme-qa-1.wav"
    wav.parent.mkdir(parents=True, exist_ok=True)
    seconds = _recording(wav)
    now = time.time()
    answer = now - seconds - 1
    rec = CallRecord("sip-acme-qa-1", "inbound", "+8613700137000", "4001", id="acme-qa-1",
                     tenant="acme", invite_at=answer - 1, answer_at=answer, end_at=now - 1,
                     disposition="answered", flow_id="acme_main", flow_version=1,
                     recording_path=str(wav),
                     trace=[{"kind": "node.enter", "at": answer + 0.1, "node_id": "start"},
                            {"kind": "node.enter", "at": answer + 0.2, "node_id": "menu"},
                            {"kind": "node.leave", "at": answer + 3.0, "node_id": "menu",
                             "outcome": "balance"},
                            {"kind": "node.enter", "at": answer + 3.1, "node_id": "bye"}],
                     flow_result={"status": "hangup"})
    con.services.calls.save_many([rec])
    db = con.services.inspection.db
    queue = JobQueue(db)
    assert queue.enqueue(rec.id, rec.tenant, now)
    worker = InspectionWorker(queue, Inspector(db), SystemClock(), owner="browser-test",
                              poll_s=0.2)
    await worker.start()
    try:
        assert await worker.drain(180.0), "the inspection queue did not finish"
    finally:
        await worker.stop()
    assert worker.done == 1 and worker.failed == 0
    return rec


async def _lane_pixels(page: Any) -> list[int]:
    """Waveform-coloured pixels in the caller's (top) and the IVR's (bottom) lane."""
    return await page.evaluate("""() => {
        const c = document.getElementById('waveform');
        const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
        const lanes = [0, 0];
        for (let y = 0; y < c.height; y += 1) for (let x = 0; x < c.width; x += 1) {
            const i = 4 * (y * c.width + x);
            const blue = d[i] === 0x1f && d[i + 1] === 0x6f && d[i + 2] === 0xb2;
            const green = d[i] === 0x2e && d[i + 1] === 0x7d && d[i + 2] === 0x32;
            if (blue && y < c.height / 2) lanes[0] += 1;
            if (green && y > c.height / 2) lanes[1] += 1;
        }
        return lanes;
    }""")


async def _playhead_x(page: Any) -> int | None:
    return await page.evaluate("""() => {
        const c = document.getElementById('waveform');
        const d = c.getContext('2d').getImageData(0, 2, c.width, 1).data;
        for (let x = 0; x < c.width; x += 1) {
            if (d[4 * x] === 0xc6 && d[4 * x + 1] === 0x28 && d[4 * x + 2] === 0x28) return x;
        }
        return null;
    }""")


@pytest.mark.parametrize("lang", ["en", "zh-CN"])
async def test_review_a_call_edit_rules_stats_and_tenancy(tmp_path: Path, lang: str) -> None:
    zh = lang == "zh-CN"
    p = f"{'zh' if zh else 'en'}-inspection"
    async with running_console(tmp_path) as con:
        for name, role, tenant in (("quinn", "qa", "default"), ("rita", "qa", "default"),
                                   ("cleo", "client", "acme"), ("gina", "client", "globex")):
            con.add_user(name, role, tenant)
        cleo, quinn, gina = [await con.client(n) for n in ("cleo", "quinn", "gina")]
        try:
            assert (await cleo.call("POST", "/api/flows", json_body={
                "document": flow("acme_main", "Acme 客服")}))[0] == 201
            assert (await cleo.call("POST", "/api/flows/acme_main/publish", json_body={}))[0] \
                == 201
            status, body = await quinn.call("POST", "/api/scorecards", params={
                "tenant": "acme"}, json_body={"document": CARD})
            assert status == 201, body
            rec = await _inspect_call(con, tmp_path)
            status, result = await quinn.call("GET", f"/api/inspections/{rec.id}",
                                              params={"tenant": "acme"})
            assert status == 200 and result["review_state"] == "queued", result
            items = {i["id"]: i for i in result["items"]}
            assert items["opening"]["status"] == "pass", items["opening"]
            assert items["selfish"]["status"] == "fail", items["selfish"]
            hit = items["selfish"]["evidence"][0]
            assert hit["speaker"] == "caller"
            assert CALLER_AT_S * 1000 < hit["start_ms"] < CALLER_AT_S * 1000 + 6000
            assert items["menu_first"]["evidence"][0]["node_id"] == "bye"

            # the other tenant's client: nothing through the API
            assert (await gina.call("GET", f"/api/inspections/{rec.id}"))[0] == 404
            status, body = await gina.call("GET", "/api/inspections", params={"tenant": "acme"})
            assert status == 403 and body["error"]["code"] == "tenant_forbidden"
            status, body = await gina.call("GET", "/api/reviews")
            assert status == 200 and body["items"] == []

            async with browser_page(locale=lang) as (page, watch):
                await login(page, con.url, "quinn", PASSWORD)
                await page.click("a[data-page=reviews]")
                queue_rows = page.locator("#review-queue tbody tr.clickable")
                await expect(queue_rows).to_have_count(1)
                await expect(queue_rows.first).to_contain_text(rec.id)
                await page.select_option("#queue-mine", "mine")  # nothing assigned to me yet
                await page.click("#queue-filters button[type=submit]")
                await expect(page.locator("#review-queue td.empty")).to_have_count(1)
                await page.select_option("#queue-mine", "all")
                await page.select_option("#queue-rule", "selfish")
                await page.fill("#queue-max", "80")
                await page.click("#queue-filters button[type=submit]")
                await expect(queue_rows).to_have_count(1)
                assert await untranslated(page) == []
                await shot(page, f"{p}-queue")

                # the call: waveform of both channels, transcript with the hit, the player;
                # the recording is fetched once (the waveform's bytes play from a blob: URL)
                fetches: list[str] = []
                page.on("request", lambda r: fetches.append(r.url)
                        if r.url.split("?")[0].endswith("/recording") else None)
                await queue_rows.first.click()
                await page.wait_for_selector("#transcript mark.hit")
                await page.wait_for_function(
                    "() => document.getElementById('review-audio').duration > 0")
                lanes = await _lane_pixels(page)
                assert lanes[0] > 500 and lanes[1] > 500, lanes
                mark = page.locator("#transcript mark.hit[data-item=selfish]")
                await expect(mark).to_have_count(1)
                assert "selfish" in (await mark.inner_text()).lower()
                await mark.click()
                at = await page.evaluate("document.getElementById('review-audio').currentTime")
                assert at == pytest.approx(hit["start_ms"] / 1000, abs=SEEK_TOLERANCE_S)
                await page.evaluate("document.getElementById('review-audio').pause()")
                width = await page.evaluate("document.getElementById('waveform').width")
                duration = await page.evaluate(
                    "document.getElementById('review-audio').duration")
                x = await _playhead_x(page)
                now = await page.evaluate("document.getElementById('review-audio').currentTime")
                assert x is not None and abs(x - now / duration * width) <= 3, (x, now)
                assert len(fetches) == 1, fetches
                src = await page.evaluate("document.getElementById('review-audio').currentSrc")
                assert src.startswith("blob:"), src
                assert await untranslated(page) == []
                await shot(page, f"{p}-review")

                # verdict: an override without a comment is refused next to the comment box
                await page.click("#review-take")
                await page.check("#verdict-override")
                await page.fill("#verdict-score", "65")
                watch.expected.add(("/verdict", 422))
                await page.click("#verdict-submit")
                await expect(page.locator("#verdict-comment-error")).to_contain_text("comment")
                await page.fill("#verdict-comment", "读的是小说，不是投诉 / reading a novel")
                await page.click("#verdict-submit")
                await expect(page.locator("#review-state")).to_have_text(
                    "待二级复核" if zh else "second level")
                await expect(page.locator("#review-history tbody tr")).to_have_count(1)
                await shot(page, f"{p}-verdict")
                status, after = await quinn.call("GET", f"/api/inspections/{rec.id}",
                                                 params={"tenant": "acme"})
                (mine,) = after["reviews"]
                assert after["review_state"] == "escalated"
                assert (mine["reviewer"], mine["verdict"], mine["score"]) == \
                    ("quinn", "override", 65.0)
                status, audit = await cleo.call("GET", "/api/audit", params={"limit": 50})
                decided = [e for e in audit["items"] if e["action"] == "inspection.review.decide"]
                assert len(decided) == 1 and decided[0]["actor"] == "quinn"
                assert decided[0]["detail"]["verdict"] == "override"

                # the evidence's node opens the call's flow path with that node ringed
                await page.click(".node-link")
                await page.wait_for_selector("#call-canvas[data-focus=bye] g.x6-node")
                await shot(page, f"{p}-node-link")

                # rule editor: a bad value is refused next to its field; fixed, it saves
                await page.click("a[data-page=scorecards]")
                await page.click("#scorecard-list tbody tr.clickable")
                gap = page.locator('[data-path="sections[1].items[1].rule.max_gap_ms"]')
                await expect(gap).to_have_value("8000")
                await gap.fill("-5")
                watch.expected.add(("/api/scorecards", 422))
                await page.click("#scorecard-save")
                box = page.locator('[data-field="sections[1].items[1].rule.max_gap_ms"]')
                await expect(box.locator(".field-error")).to_contain_text("max_gap_ms")
                await expect(gap).to_have_attribute("aria-invalid", "true")
                assert await untranslated(page) == []
                await shot(page, f"{p}-rules-error")
                await gap.fill("9000")
                await page.click("#scorecard-save")
                await expect(page.locator("#scorecard-saved")).to_contain_text("2")
                await expect(box.locator(".field-error")).to_have_text("")
                status, cards = await quinn.call("GET", "/api/scorecards",
                                                 params={"tenant": "acme"})
                (card,) = cards["items"]
                assert card["version"] == 2
                assert card["document"]["sections"][1]["items"][1]["rule"]["max_gap_ms"] == 9000
                await shot(page, f"{p}-rules")

                # a second scorecard for the call's flow: tick the flow in the scope
                async def new_card(card_id: str) -> None:
                    await page.click("a[data-page=scorecards]")
                    await page.click("#scorecard-new")
                    await page.fill("#scorecard-tenant", "acme")
                    await page.press("#scorecard-tenant", "Tab")  # loads acme's flows
                    await page.check("#scope-flows-acme_main")
                    await page.fill('[data-path="id"]', card_id)
                    await page.fill('[data-path="sections[0].name"]', "Script")
                    await page.fill('[data-path="sections[0].items[0].id"]', "opening")
                    await page.fill('[data-path="sections[0].items[0].rule.phrases"]',
                                    "ill disposed young man")
                    await page.click("#scorecard-save")

                await new_card("acme_main_qa")  # saved, the page opens it for editing
                await expect(page.locator("h1")).to_contain_text("acme_main_qa")
                await expect(page.locator("#scorecard-active")).to_be_visible()
                # expected before the click: on a quiet box the 409 is back before the next line
                watch.expected.add(("/api/scorecards", 409))
                await new_card("acme_main_dup")  # the flow is acme_main_qa's already
                flows_box = page.locator('[data-field="scope.flows"]')
                await expect(flows_box.locator(".field-error")).to_contain_text("acme_main_qa")
                await expect(page.locator("#scope-flows-acme_main")).to_have_attribute(
                    "aria-invalid", "true")
                await shot(page, f"{p}-rules-scope-clash")
                await page.click("a[data-page=scorecards]")
                listed = page.locator("#scorecard-list tbody tr")
                await expect(listed).to_have_count(2)
                await expect(listed.filter(has_text="acme_main_qa")).to_contain_text("acme_main")
                assert await untranslated(page) == []
                await shot(page, f"{p}-rules-list")
                status, cards = await quinn.call("GET", "/api/scorecards",
                                                 params={"tenant": "acme"})
                scopes = {c["id"]: c["document"].get("scope") for c in cards["items"]}
                assert scopes == {"acme_qa": None, "acme_main_qa": {"flows": ["acme_main"]}}

                # statistics and the CSV
                await page.click("a[data-page=inspection-stats]")
                await expect(page.locator("#stats-rules")).to_contain_text("selfish")
                await expect(page.locator("#stats-reviewers")).to_contain_text("quinn")
                tiles = await page.locator("#stats-total .tile-value").all_inner_texts()
                assert tiles[0] == "1", tiles
                async with page.expect_download() as dl:
                    await page.click("#stats-csv")
                csv_path = tmp_path / "export.csv"
                await (await dl.value).save_as(csv_path)
                text = csv_path.read_text("utf-8")
                assert text.startswith("\ufeffcall_id,"), text[:40]
                assert f"{rec.id},acme," in text and "selfish" in text

                # calibration: a session of two reviewers, decided, and its kappa shown
                await page.fill("#cal-session", f"cal-{lang}")
                await page.fill("#cal-reviewers", "quinn, rita")
                await page.fill("#cal-calls", rec.id)
                await page.click("#cal-form button[type=submit]")
                await expect(page.locator("#calibration-list")).to_contain_text(f"cal-{lang}")
                rita = await con.client("rita")
                try:
                    status, got = await quinn.call("GET", f"/api/inspections/{rec.id}",
                                                   params={"tenant": "acme"})
                    open_ = {r["reviewer"]: r["id"] for r in got["reviews"] if r["session"]}
                    for c, who, verdict in ((quinn, "quinn", "agree"), (rita, "rita", "agree")):
                        status, body = await c.call(
                            "POST", f"/api/reviews/{open_[who]}/verdict",
                            params={"tenant": "acme"}, json_body={"verdict": verdict})
                        assert status == 200, body
                finally:
                    await rita.close()
                await page.click("#calibration-list tbody tr.clickable")
                agreement = page.locator("#calibration-agreement")
                await expect(agreement.locator("dd[data-key=verdict_agreement]")).to_contain_text(
                    "100")
                await expect(agreement.locator("dd[data-key=method]")).to_contain_text("Cohen")
                # one call, one verdict: kappa is undefined and said so, not a made-up number
                await expect(agreement.locator("dd[data-key=verdict_kappa]")).to_contain_text("—")
                assert await untranslated(page) == []
                await shot(page, f"{p}-stats")

                # a second reviewer takes the second-level review: it judges the first
                # level's verdict, and agreeing confirms the override (65), not the automatic
                # score
                await logout(page)
                await login(page, con.url, "rita", PASSWORD)
                await page.goto(f"{con.url}/#/reviews/{rec.id}")
                await page.click("#review-take")
                await expect(page.locator("#verdict-level")).to_have_text(
                    "二级复核" if zh else "Second-level review")
                judged = page.locator("#verdict-judged")
                await expect(judged).to_contain_text("quinn")
                await expect(judged).to_contain_text("65")
                await expect(judged).to_contain_text("reading a novel")
                await expect(page.locator("label[for=verdict-agree]")).to_contain_text("65")
                await page.click("#verdict-submit")
                await expect(page.locator("#review-state")).to_have_text(
                    "已完结" if zh else "final")
                assert result["score"] != 65
                await expect(page.locator("#review-final")).to_have_text("65")
                await expect(page.locator("#review-decision")).to_contain_text("rita")
                # the audit trail, newest first: both levels' assignment and verdict, and the
                # two calibration verdicts in between
                trail = page.locator("#review-audit tbody tr")
                await expect(trail).to_have_count(6)
                await expect(trail.first).to_contain_text("rita")
                await expect(trail.last).to_contain_text("quinn")
                assert await untranslated(page) == []
                await shot(page, f"{p}-second-level")

                # the other tenant's client sees nothing of it in the page
                await logout(page)
                await login(page, con.url, "gina", PASSWORD)
                await page.click("a[data-page=reviews]")
                await expect(page.locator("#review-queue td.empty")).to_have_count(1)
                await expect(page.locator("#inspection-list td.empty")).to_have_count(1)
                watch.expected.add((f"/api/inspections/{rec.id}", 404))
                async with page.expect_response(
                        lambda r: f"/api/inspections/{rec.id}" in r.url) as answer:
                    await page.goto(f"{con.url}/#/reviews/{rec.id}")
                assert (await answer.value).status == 404
                await expect(page.locator(".page-error")).to_contain_text(
                    "未找到" if zh else "Not found")
                assert await page.locator("#transcript, #waveform, #review-score").count() == 0
                await shot(page, f"{p}-other-tenant")
                watch.check()
        finally:
            for c in (cleo, quinn, gina):
                await c.close()
