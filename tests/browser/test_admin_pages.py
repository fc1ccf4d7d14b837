"""Numbers, voiceprints and tenants in a real browser, in English and Chinese.

Ops routes a tenant's number to a published flow, sees it listed, changes its flow, is refused a
number no call could dial (and another tenant's number) next to the number field, and removes a
route only after confirming. People enrolled by the real speaker service (the CAM++ encoder on
real recordings, the encrypted store) are listed; their audit trail shows the enrolment and the
verification; one is deleted after a confirmation and the trail then ends in the deletion. An
admin creates a tenant (a bad id and a taken one refused next to the id field), and it is at
once a tenant the numbers page offers. A client of one tenant sees only its own numbers and
voiceprints, no tenant picker, no route form and no tenant administration.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from playwright.async_api import expect

from audio.g711 import telephone_band
from audio.pcm import to_int16
from tests.browser.harness import browser_page, login, shot, untranslated
from tests.browser.test_pages import flow
from tests.console_harness import PASSWORD, Console, running_console

pytestmark = [pytest.mark.xdist_group("browser"), pytest.mark.timeout(240)]

FLOWS = {"acme": [("acme_main", "Acme 客服"), ("acme_night", "Acme 夜间")],
         "globex": [("gx_main", "Globex")]}


# the parts of the header that reach below it, over the page (e.g. a wrapped navigation)
HEADER_OVERLAPS = """() => {
  const top = document.querySelector("#page").getBoundingClientRect().top;
  return [...document.querySelectorAll("header.top > *, header.top .nav a")]
    .filter((e) => e.getBoundingClientRect().bottom > top + 0.5).map((e) => e.textContent);
}"""


async def publish_flows(con: Console) -> None:
    """Each tenant's flows, created and published by its client through the API, plus a draft
    of acme's that is never published (the route form must not offer it)."""
    for user, tenant in (("cleo", "acme"), ("gina", "globex")):
        async with await con.client(user) as c:
            for fid, name in FLOWS[tenant]:
                assert (await c.call("POST", "/api/flows",
                                     json_body={"document": flow(fid, name)}))[0] == 201
                assert (await c.call("POST", f"/api/flows/{fid}/publish",
                                     json_body={}))[0] == 201
            if tenant == "acme":
                assert (await c.call("POST", "/api/flows", json_body={
                    "document": flow("acme_draft", "草稿")}))[0] == 201


def users(con: Console) -> None:
    con.add_user("otto", "ops")
    con.add_user("ada", "admin")
    con.add_user("cleo", "client", "acme")
    con.add_user("gina", "client", "globex")


async def routes_of(con: Console, tenant: str) -> dict[str, str]:
    async with await con.client("otto") as c:
        status, body = await c.call("GET", "/api/routes", params={"tenant": tenant})
    assert status == 200, body
    return {r["number"]: r["flow_id"] for r in body["items"]}


async def test_numbers_page_routes_changes_refuses_and_removes(tmp_path: Path) -> None:
    async with running_console(tmp_path) as con:
        users(con)
        await publish_flows(con)
        async with await con.client("otto") as c:  # globex's number, for the refusal below
            assert (await c.call("PUT", "/api/routes/5001", params={"tenant": "globex"},
                                 json_body={"flow_id": "gx_main"}))[0] == 200
        async with browser_page() as (page, watch):
            await login(page, con.url, "otto", PASSWORD)
            await page.click("a[data-page=routes]")
            await page.select_option("#tenant-pick", "acme")
            await expect(page).to_have_url(re.compile(r"#/routes/acme$"))
            options = page.locator("#route-flow option")
            await expect(options).to_have_count(2)  # the published two, not the draft
            assert "acme_draft" not in await page.inner_text("#route-flow")

            # a number no call could dial: refused next to the number field
            watch.expected.add(("/api/routes/4001%20ext", 422))
            await page.fill("#route-number", "4001 ext")
            await page.click("#route-save")
            error = page.locator(".field-error[data-field=number]")
            await expect(error).to_contain_text("Not a number a call can dial")
            assert await page.get_attribute("#route-number", "aria-invalid") == "true"
            assert await page.evaluate("document.activeElement.id") == "route-number"
            await shot(page, "en-routes-error")
            # another tenant's number: refused next to the same field
            watch.expected.add(("/api/routes/5001", 409))
            await page.fill("#route-number", "5001")
            await page.click("#route-save")
            await expect(error).to_contain_text("belongs to another tenant")

            # route 4001 (submitted from the keyboard) and the fallback
            await page.fill("#route-number", "4001")
            await page.select_option("#route-flow", "acme_main")
            await page.press("#route-number", "Enter")
            row = page.locator("#route-list tbody tr", has_text="4001")
            await expect(row).to_contain_text("Acme 客服")
            await expect(row).to_contain_text("version 1")
            await expect(error).to_have_count(0)
            assert await page.get_attribute("#route-number", "aria-invalid") is None
            await page.fill("#route-number", "*")
            await page.select_option("#route-flow", "acme_night")
            await page.click("#route-save")
            fallback = page.locator("#route-list tbody tr", has_text="fallback")
            await expect(fallback).to_contain_text("acme_night")
            await expect(page.locator("#route-count")).to_have_text("2 numbers routed")
            assert await routes_of(con, "acme") == {"4001": "acme_main", "*": "acme_night"}

            # change 4001's flow
            await page.click("button[data-change='4001']")
            await expect(page.locator("#route-form-title")).to_have_text(
                "Change the flow of 4001")
            assert await page.get_attribute("#route-number", "readonly") is not None
            assert await page.evaluate("document.activeElement.id") == "route-flow"
            await page.select_option("#route-flow", "acme_night")
            await page.click("#route-save")
            await expect(row).to_contain_text("acme_night")
            await expect(page.locator("#route-form-title")).to_have_text("Route a number")
            assert (await routes_of(con, "acme"))["4001"] == "acme_night"
            await page.fill("#route-filter", "40")
            await expect(page.locator("#route-list tbody tr")).to_have_count(1)
            await page.fill("#route-filter", "")
            assert await untranslated(page) == []
            # with every page in the navigation, the header still holds all of it at 1280x800
            assert await page.evaluate(HEADER_OVERLAPS) == []
            await shot(page, "en-routes")

            # remove: Escape keeps it, yes removes it
            await page.click("button[data-remove='4001']")
            await expect(page.locator("#confirm-dialog")).to_contain_text("Stop routing 4001")
            await shot(page, "en-routes-confirm")
            await page.keyboard.press("Escape")
            await expect(page.locator("#confirm-dialog")).to_have_count(0)
            await expect(row).to_have_count(1)
            await page.click("button[data-remove='4001']")
            await page.click("#confirm-yes")
            await expect(row).to_have_count(0)
            assert await routes_of(con, "acme") == {"*": "acme_night"}
            assert await routes_of(con, "globex") == {"5001": "gx_main"}

            # Chinese: the same page, and the refusal in Chinese
            await page.select_option("#lang", "zh-CN")
            await expect(page.locator("h1")).to_have_text("号码与流程")
            await expect(page.locator("#tenant-pick")).to_have_value("acme")  # kept
            await expect(page.locator("#route-count")).to_have_text("已路由 1 个号码")
            await page.fill("#route-number", "4001 ext")
            await page.click("#route-save")
            await expect(error).to_contain_text("不是可拨打的号码")
            assert await untranslated(page) == []
            await shot(page, "zh-routes")

            # ops reads the tenants but may not create one
            await page.click("a[data-page=admin]")
            await expect(page.locator("#tenant-list")).to_contain_text("acme")
            assert await page.locator("#tenant-add").count() == 0
            watch.check()


async def enrol(con: Console) -> None:
    """Two people, one per tenant, enrolled by the real speaker service from real recordings as
    a call hands them over (8 kHz after a G.711 leg); acme's person is then verified once."""
    from speaker_id.testdata import real_utterances

    speech = {label: [to_int16(telephone_band(a, r)) for a, r in utts]
              for label, utts in real_utterances().items()
              if label in ("pyannote_spk91", "beckett")}
    assert con.services.voiceprints is not None
    service = con.services.voiceprints.service
    alice = speech["pyannote_spk91"]
    assert (await service.enroll("cust-1001", alice[:2], tenant_id="acme")).outcome == "enrolled"
    assert (await service.verify("cust-1001", alice[2], tenant_id="acme")).outcome == "match"
    other = await service.enroll("gx-2001", speech["beckett"][:3], tenant_id="globex")
    assert other.outcome == "enrolled"


@pytest.mark.models
async def test_voiceprints_listed_audited_deleted_and_a_client_sees_only_its_own(
        tmp_path: Path) -> None:
    async with running_console(tmp_path) as con:
        users(con)
        await publish_flows(con)
        for tenant, number, fid in (("acme", "4001", "acme_main"), ("globex", "5001", "gx_main")):
            async with await con.client("otto") as c:
                assert (await c.call("PUT", f"/api/routes/{number}", params={"tenant": tenant},
                                     json_body={"flow_id": fid}))[0] == 200
        await enrol(con)

        # a client of acme, in Chinese: its own numbers and people only, nothing to administer
        async with browser_page(locale="zh-CN") as (page, watch):
            await login(page, con.url, "cleo", PASSWORD)
            await page.click("a[data-page=routes]")
            await expect(page.locator("#route-list")).to_contain_text("4001")
            assert "5001" not in await page.inner_text("#route-list")
            assert await page.locator("#tenant-pick").count() == 0
            assert await page.locator("#route-form").count() == 0
            await expect(page.locator("#route-read-only")).to_be_visible()
            assert await untranslated(page) == []
            await shot(page, "zh-routes-client")
            # another tenant by address: still its own
            await page.goto(f"{con.url}/#/routes/globex")
            await expect(page.locator("#route-list")).to_contain_text("4001")
            assert "5001" not in await page.inner_text("#route-list")
            await page.click("a[data-page=voiceprints]")
            await expect(page.locator("#vp-list")).to_contain_text("cust-1001")
            assert "gx-2001" not in await page.inner_text("#vp-list")
            assert await page.locator("#tenant-pick").count() == 0
            assert await untranslated(page) == []
            await shot(page, "zh-voiceprints-client")
            await page.click("a[data-page=admin]")
            await expect(page.locator("#tokens")).to_be_visible()
            assert await page.locator("#tenants").count() == 0
            assert "租户 ID" not in await page.inner_text("#page")
            watch.check()

        # ops, in English: list, audit trail, delete with the confirmation
        async with browser_page() as (page, watch):
            await login(page, con.url, "otto", PASSWORD)
            await page.click("a[data-page=voiceprints]")
            await page.select_option("#tenant-pick", "acme")
            await expect(page).to_have_url(re.compile(r"#/voiceprints/acme$"))
            row = page.locator("#vp-list tbody tr", has_text="cust-1001")
            await expect(row).to_have_count(1)
            cells = await row.locator("td").all_inner_texts()
            assert cells[3] == "2"  # utterances
            assert cells[4].endswith(" s") and float(cells[4][:-2]) >= 3.0  # net speech
            assert cells[5] and cells[5] != "none on record"  # consent recorded at enrolment
            assert "gx-2001" not in await page.inner_text("#vp-list")
            await page.click("button[data-audit='cust-1001']")
            audit = page.locator("#vp-audit")
            await expect(audit.locator("h2")).to_have_text("Audit trail of cust-1001")
            await expect(audit.locator("tbody tr")).to_have_count(2)
            events = await audit.locator("tbody tr").all_inner_texts()
            assert "verification" in events[0] and "matched" in events[0]  # newest first
            assert "enrolment" in events[1] and "enrolled" in events[1]
            assert await untranslated(page) == []
            await shot(page, "en-voiceprint-audit")

            await page.click("button[data-remove='cust-1001']")
            await expect(page.locator("#confirm-dialog")).to_contain_text("cust-1001")
            await shot(page, "en-voiceprint-confirm")
            await page.click("#confirm-no")
            await expect(row).to_have_count(1)
            await page.click("button[data-remove='cust-1001']")
            await page.click("#confirm-yes")
            await expect(row).to_have_count(0)
            await expect(audit.locator("tbody tr")).to_have_count(3)
            newest = audit.locator("tbody tr").first
            await expect(newest.locator("[data-action]")).to_have_text("deletion")
            await expect(newest.locator("[data-outcome]")).to_have_text("deleted")
            await expect(newest).to_contain_text("otto")
            await shot(page, "en-voiceprint-deleted")
            async with await con.client("otto") as c:
                _, left = await c.call("GET", "/api/voiceprints", params={"tenant": "acme"})
                _, kept = await c.call("GET", "/api/voiceprints", params={"tenant": "globex"})
            assert left["items"] == []
            assert [p["person_id"] for p in kept["items"]] == ["gx-2001"]

            # Chinese: globex's person and trail
            await page.select_option("#lang", "zh-CN")
            await page.select_option("#tenant-pick", "globex")
            await expect(page).to_have_url(re.compile(r"#/voiceprints/globex$"))
            await page.click("button[data-audit='gx-2001']")
            await expect(audit.locator("h2")).to_have_text("gx-2001 的审计记录")
            await expect(audit.locator("tbody tr [data-action]")).to_have_text("注册")
            assert await untranslated(page) == []
            assert await page.evaluate(HEADER_OVERLAPS) == []
            await shot(page, "zh-voiceprint-audit")
            watch.check()


async def test_an_admin_creates_a_tenant_and_numbers_offer_it(tmp_path: Path) -> None:
    async with running_console(tmp_path) as con:
        users(con)
        async with browser_page() as (page, watch):
            await login(page, con.url, "ada", PASSWORD)
            await page.click("a[data-page=admin]")
            tenants = page.locator("#tenant-list")
            await expect(tenants).to_contain_text("acme")
            watch.expected |= {("/api/tenants", 422), ("/api/tenants", 409)}
            id_error = page.locator("#tenant-add .field-error[data-field=id]")
            name_error = page.locator("#tenant-add .field-error[data-field=name]")
            await page.fill("#tenant-id", "init tech!")
            await page.fill("#tenant-name", "Initech")
            await page.click("#tenant-add button[type=submit]")
            await expect(id_error).to_contain_text("Use 1–64 letters")
            assert await page.get_attribute("#tenant-id", "aria-invalid") == "true"
            await page.fill("#tenant-id", "initech")
            await page.fill("#tenant-name", "")
            await page.click("#tenant-add button[type=submit]")
            await expect(name_error).to_be_visible()
            await expect(id_error).to_have_count(0)
            await page.fill("#tenant-name", "Initech 英泰")
            await page.click("#tenant-add button[type=submit]")
            await expect(tenants).to_contain_text("Initech 英泰")
            await expect(page.locator("#tenant-id")).to_have_value("")
            await page.fill("#tenant-id", "initech")
            await page.fill("#tenant-name", "Again")
            await page.click("#tenant-add button[type=submit]")
            await expect(id_error).to_have_text("Tenant initech already exists")
            assert await untranslated(page) == []
            await shot(page, "en-tenants")

            # the numbers page offers it at once; it has no published flow yet
            await page.click("a[data-page=routes]")
            await page.select_option("#tenant-pick", "initech")
            await expect(page).to_have_url(re.compile(r"#/routes/initech$"))
            await expect(page.locator("#route-no-flows")).to_be_visible()
            assert await page.get_attribute("#route-save", "disabled") is not None

            await page.select_option("#lang", "zh-CN")
            await page.click("a[data-page=admin]")
            await expect(page.locator("#tenants h2").first).to_have_text("租户")
            await expect(tenants).to_contain_text("initech")
            assert await untranslated(page) == []
            await shot(page, "zh-tenants")
            watch.check()
        async with await con.client("ada") as c:
            status, body = await c.call("GET", "/api/tenants")
        assert status == 200
        assert any(t["id"] == "initech" and t["name"] == "Initech 英泰" for t in body["items"])
