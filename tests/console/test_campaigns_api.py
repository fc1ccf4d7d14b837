"""Campaigns through the console API: a client creates a draft, uploads contacts (a GB18030 CSV
and an .xlsx with Chinese headers, bad rows reported with line and column, repeats merged),
edits it, is refused a start while a text is blocked, starts, pauses, resumes and stops it,
reads status and reports (JSON and CSV); another tenant sees none of it; every change is in
the audit log. No engine runs here (nothing is dialled): the dialler has its own tests."""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

import pytest
import xlsxwriter

from console.roles import Principal
from console.services.base import Actor
from tests.console_harness import running_console

pytestmark = pytest.mark.xdist_group("console")

FLOW = {"id": "notice", "name": "Notice", "variables": {"name": "", "amount": ""}, "nodes": [
    {"id": "start", "type": "start"},
    {"id": "bye", "type": "hangup", "params": {"prompt": {"text": "您好{{ name }}，再见。"}}}],
    "edges": [{"from": "start", "port": "next", "to": "bye"}]}
SPEC: dict[str, Any] = {
    "id": "bill-dec", "name": "十二月账单提醒", "flow": {"id": "notice"},
    "contacts": {"variables": {"name": ["姓名", "客户姓名"], "amount": ["金额", "欠费金额"]},
                 "required": ["name"]},
    "pacing": {"calls_per_s": 2, "max_concurrent": 4},
}
CSV_GB18030 = ("手机号码,姓名,金额\n"
               "13800138000,张三,120.5\n"
               "139-0013-9000,李四,88\n"
               "12345,王五,10\n"  # line 4: not a phone number
               "13700137000,,5\n"  # line 5: name is required
               "+86 138 0013 8000,张三丰,1\n").encode("gb18030")  # line 6: repeat of line 2


def _xlsx(path: Path) -> bytes:
    book = xlsxwriter.Workbook(str(path))
    sheet = book.add_worksheet("客户")
    sheet.merge_range("A1:C1", "2026年12月客户名单（内部）")
    for col, title in enumerate(["客户姓名", "电话号码", "欠费金额"]):
        sheet.write(1, col, title)
    sheet.write(2, 0, "赵六")
    sheet.write_number(2, 1, 13600136000.0)
    sheet.write_number(2, 2, 42)
    sheet.write(3, 0, "钱七")
    sheet.write(3, 1, "not a number")
    book.close()
    return path.read_bytes()


async def test_a_client_runs_a_campaign_through_the_api(tmp_path: Path) -> None:
    async with running_console(tmp_path) as con:
        cleo = con.add_user("cleo", "client", "acme")
        con.add_user("gina", "client", "globex")
        con.add_user("olga", "ops")
        admin = Actor(Principal.cli("setup"))
        con.services.flows.publish_document(admin, "acme", FLOW)
        base = "/api/campaigns/bill-dec"
        async with await con.client("cleo") as c:
            status, created = await c.call("POST", "/api/campaigns", json_body={"spec": SPEC})
            assert status == 201, created
            empty_start = await c.call("POST", f"{base}/actions/start")
            _, from_csv = await c.call("POST", f"{base}/contacts", data=CSV_GB18030,
                                       headers={"Content-Type": "text/csv"})
            _, from_xlsx = await c.call(
                "POST", f"{base}/contacts", data=_xlsx(tmp_path / "名单.xlsx"),
                headers={"Content-Type": "application/vnd.openxmlformats-officedocument."
                                         "spreadsheetml.sheet"})
            bad_spec = await c.call("PATCH", base, json_body={"spec": {
                **SPEC, "pacing": {"calls_per_s": -1},
                "schedule": {"window_start": "9am"}}})
            _, edited = await c.call("PATCH", base, json_body={"spec": {
                **SPEC, "texts": ["恭喜发财，点击领取"], "priority": 5}})
        con.services.words.add(admin, [_term("点击领取", "acme")])  # type: ignore[union-attr]
        async with await con.client("cleo") as c:
            blocked = await c.call("POST", f"{base}/actions/start")
            await c.call("PATCH", base, json_body={"spec": {**SPEC, "texts": ["请按时缴费"]}})
            started = await c.call("POST", f"{base}/actions/start")
            not_editable = await c.call("PATCH", base, json_body={"spec": SPEC})
            paused = await c.call("POST", f"{base}/actions/pause")
            resumed = await c.call("POST", f"{base}/actions/resume")
            _, status_body = await c.call("GET", base)
            _, report = await c.call("GET", f"{base}/report")
            async with c.session.get(c.base + f"{base}/report.csv") as resp:
                report_csv = (resp.status, resp.headers["Content-Type"], await resp.text())
            stopped = await c.call("POST", f"{base}/actions/stop")
            restart = await c.call("POST", f"{base}/actions/start")
            _, listed = await c.call("GET", "/api/campaigns")
            other_tenant = await c.call("POST", "/api/campaigns", json_body={
                "spec": {**SPEC, "id": "x", "tenant": "globex"}})
        async with await con.client("gina") as g:
            hidden = [await g.call("GET", base), await g.call("POST", f"{base}/actions/stop"),
                      await g.call("GET", f"{base}/report")]
            _, gina_list = await g.call("GET", "/api/campaigns")
        async with await con.client("olga") as o:
            _, everyone = await o.call("GET", "/api/campaigns", params={"tenant": "*"})
            _, audit = await o.call("GET", "/api/audit", params={"tenant": "acme",
                                                                  "limit": "50"})
    assert created["campaign"]["tenant"] == "acme" and created["campaign"]["state"] == "draft"
    assert created["campaign"]["flow_version"] == 1
    assert empty_start[0] == 409 and empty_start[1]["error"]["code"] == "no_contacts"
    # GB18030 CSV: 2 imported, the repeat merged, two bad rows named by line and column
    assert from_csv["imported"] == 2 and from_csv["merged"] == 1
    assert sorted((e["line"], e["column"]) for e in from_csv["errors"]) == [
        (4, "手机号码"), (5, "姓名")]
    # .xlsx with a merged title row and Chinese headers
    assert from_xlsx["imported"] == 1 and from_xlsx["error_count"] == 1
    assert from_xlsx["errors"][0]["column"] == "电话号码"
    assert bad_spec[0] == 422 and bad_spec[1]["error"]["field"].startswith("spec.")
    # every bad field by name, for a form to show each next to its input
    assert sorted(d["field"] for d in bad_spec[1]["error"]["details"]) == [
        "spec.pacing.calls_per_s", "spec.schedule.window_start"]
    assert edited["priority"] == 5
    assert blocked[0] == 409 and blocked[1]["error"]["code"] == "content_blocked"
    assert "点击领取" in blocked[1]["error"]["message"]
    assert started[0] == 200 and started[1]["state"] == "running"
    assert not_editable[0] == 409  # only drafts and paused campaigns are edited
    assert paused[1]["state"] == "paused" and resumed[1]["state"] == "running"
    assert status_body["campaign"]["contacts"] == 3
    assert status_body["status"]["by_state"] == {"pending": 3}
    assert report["report"]["contacts"] == 3
    assert report_csv[0] == 200 and report_csv[1] == "text/csv; charset=utf-8"
    rows = list(csv.DictReader(io.StringIO(report_csv[2].lstrip("\ufeff"))))
    assert sorted(r["number"] for r in rows) == ["+8613600136000", "+8613800138000",
                                                 "+8613900139000"]
    assert stopped[1]["state"] == "stopped" and restart[0] == 409
    assert [x["id"] for x in listed["items"]] == ["bill-dec"]
    assert other_tenant[0] == 422 and other_tenant[1]["error"]["field"] == "spec.tenant"
    assert [h[0] for h in hidden] == [404, 404, 404]
    assert gina_list["items"] == []
    assert [x["id"] for x in everyone["items"]] == ["bill-dec"]
    actions = [e["action"] for e in audit["items"] if e["resource"] == "campaign:bill-dec"]
    assert sorted(set(actions)) == ["campaign.contacts", "campaign.create", "campaign.edit",
                                    "campaign.pause", "campaign.resume", "campaign.start",
                                    "campaign.stop"]
    assert all(e["actor"] == "cleo" for e in audit["items"]
               if e["resource"] == "campaign:bill-dec")
    assert cleo.tenant == "acme"


def _term(text: str, tenant: str) -> Any:
    from console.services.compliance import make_term

    return make_term(text, tenant=tenant)
