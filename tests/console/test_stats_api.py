"""The dashboard's statistics over a real console server on loopback, with call records written
through the real storage API: the figures recomputed here from the records, a client seeing only
its own tenant, staff choosing a tenant or every tenant, bad filters refused naming the field,
and each chart's CSV as a spreadsheet reads it (BOM, headers in the reader's language, numbers
unformatted)."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pytest

from engine.cdr import CallRecord
from tests.console_harness import running_console

pytestmark = pytest.mark.xdist_group("console")

T0 = 1_767_225_600.0  # 2026-01-01 00:00 UTC


def records() -> list[CallRecord]:
    """acme: 6 calls in two hours (4 answered, 3 with a flow that ended); globex: 3."""
    def call(i: int, tenant: str, hour: int, *, answered: bool, status: str | None = None,
             direction: str = "inbound", node: str = "bye", trace: list | None = None
             ) -> CallRecord:
        at = T0 + hour * 3600 + i * 60
        return CallRecord(f"sip-{tenant}-{i}", direction, "+8613800138000", "4001",
                          tenant=tenant, invite_at=at, answer_at=at + 1 if answered else None,
                          end_at=at + 30, disposition="answered" if answered else "no_answer",
                          flow_id="main" if status else None, flow_version=1 if status else None,
                          flow_result={"status": status, "last_node": node} if status else {},
                          trace=trace or [])
    turns = [{"kind": "latency.turn", "total_ms": ms, "budget_ms": 800, "over_budget": ms > 800}
             for ms in (300.0, 500.0, 900.0)]
    listens = [{"kind": "listen", "status": s} for s in ("ok", "nomatch", "ok", "no_input")]
    return [
        call(1, "acme", 0, answered=True, status="hangup", trace=turns + listens),
        call(2, "acme", 0, answered=True, status="caller_hangup", node="ask"),
        call(3, "acme", 0, answered=False, direction="outbound"),
        call(4, "acme", 1, answered=True, status="hangup"),
        call(5, "acme", 1, answered=True),
        call(6, "acme", 1, answered=False),
        call(1, "globex", 0, answered=True, status="hangup", node="gx_end"),
        call(2, "globex", 1, answered=True, status="error"),
        call(3, "globex", 1, answered=False),
    ]


RANGE = {"since": str(T0), "until": str(T0 + 2 * 3600)}


async def test_a_clients_dashboard_counts_its_own_calls(tmp_path: Path) -> None:
    async with running_console(tmp_path) as con:
        con.services.calls.save_many(records())
        con.add_user("cleo", "client", "acme")
        async with await con.client("cleo") as c:
            status, got = await c.call("GET", "/api/stats/calls", params=RANGE)
            assert status == 200, got
            refused = await c.call("GET", "/api/stats/calls", params={**RANGE, "tenant": "globex"})
            every = await c.call("GET", "/api/stats/calls", params={**RANGE, "tenant": "*"})
            live = await c.call("GET", "/api/stats/live")
    assert got["tenant"] == "acme"
    assert [(b["start"], b["inbound"], b["outbound"]) for b in got["buckets"]] == [
        (T0, 2, 1), (T0 + 3600, 3, 0)]
    t = got["totals"]
    assert (t["calls"], t["finished"], t["answered"], t["answer_rate"]) == (6, 6, 4, 0.6667)
    assert (t["flow_calls"], t["completed"], t["completion_rate"], t["caller_hangup"]) == (
        3, 2, 0.6667, 1)
    assert {d["disposition"]: d["calls"] for d in got["dispositions"]} == {
        "answered": 4, "no_answer": 2}
    assert [(e["flow_id"], e["node"], e["status"], e["calls"]) for e in got["exits"]] == [
        ("main", "bye", "hangup", 2), ("main", "ask", "caller_hangup", 1)]
    assert got["latency"] == {"turns": 3, "p50_ms": 500.0, "p95_ms": 900.0, "over_budget": 1,
                              "calls_scanned": 4, "calls_answered": 4, "complete": True}
    assert (got["recognition"]["listens"], got["recognition"]["nomatch"],
            got["recognition"]["nomatch_rate"]) == (4, 1, 0.25)
    assert "gx_end" not in str(got)
    assert got["live"]["available"] is False and "ivr run" in got["live"]["reason"]
    assert refused[0] == 403 and refused[1]["error"]["field"] == "tenant"
    assert every[0] == 403 and every[1]["error"]["code"] == "tenant_forbidden"
    assert live[0] == 200 and live[1]["available"] is False


async def test_staff_choose_a_tenant_or_every_tenant_and_filters(tmp_path: Path) -> None:
    async with running_console(tmp_path) as con:
        con.services.calls.save_many(records())
        con.add_user("olga", "ops")
        async with await con.client("olga") as o:
            _, globex = await o.call("GET", "/api/stats/calls", params={**RANGE,
                                                                        "tenant": "globex"})
            _, every = await o.call("GET", "/api/stats/calls", params={**RANGE, "tenant": "*"})
            _, own = await o.call("GET", "/api/stats/calls", params=RANGE)
            _, flow = await o.call("GET", "/api/stats/calls", params={
                **RANGE, "tenant": "acme", "flow_id": "main"})
            _, outbound = await o.call("GET", "/api/stats/calls", params={
                **RANGE, "tenant": "acme", "direction": "outbound"})
            _, daily = await o.call("GET", "/api/stats/calls", params={
                **RANGE, "tenant": "*", "bucket": "day", "tz": "Asia/Shanghai"})
    assert globex["totals"]["calls"] == 3 and globex["totals"]["flow_failed"] == 1
    assert every["totals"]["calls"] == 9 and every["tenant"] == "*"
    assert own["totals"]["calls"] == 0  # ops' home tenant is "default"
    assert flow["totals"]["calls"] == 3 and flow["flow_id"] == "main"
    assert outbound["totals"]["calls"] == 1 and outbound["totals"]["answered"] == 0
    # Shanghai's day began at 16:00 UTC the day before: one bucket holds all nine
    assert [(b["start"], b["inbound"] + b["outbound"]) for b in daily["buckets"]] == [
        (T0 - 8 * 3600, 9)]


@pytest.mark.parametrize(("params", "field"), [
    ({"since": str(T0 + 10), "until": str(T0)}, "since"),
    ({"since": str(T0), "until": str(T0 + 40 * 86400)}, "since"),
    ({"since": "yesterday"}, "query.since"),
    ({"until": "nan"}, "query.until"),
    ({"bucket": "week"}, "query.bucket"),
    ({"tz": "Mars/Olympus_Mons"}, "tz"),
    ({"tz": "../../etc/passwd"}, "query.tz"),
    ({"flow_id": "no spaces"}, "query.flow_id"),
    ({"direction": "sideways"}, "query.direction"),
])
async def test_bad_filters_are_refused_naming_the_field(tmp_path: Path, params: dict[str, str],
                                                       field: str) -> None:
    async with running_console(tmp_path) as con:
        con.add_user("olga", "ops")
        async with await con.client("olga") as o:
            status, body = await o.call("GET", "/api/stats/calls", params=params)
            csv_status, csv_body = await o.call("GET", "/api/stats/calls.csv",
                                                params={**params, "chart": "calls"})
    assert status == 422 and body["error"]["field"] == field, body
    assert csv_status == 422 and csv_body["error"]["field"] == field, csv_body


async def test_each_chart_exports_csv_a_spreadsheet_reads(tmp_path: Path) -> None:
    async with running_console(tmp_path) as con:
        con.services.calls.save_many(records())
        con.add_user("cleo", "client", "acme")
        got: dict[str, tuple[int, str, bytes]] = {}
        async with await con.client("cleo") as c:
            for chart, lang in (("calls", "zh-CN"), ("rates", "en"), ("dispositions", "en"),
                                ("exits", "zh-CN"), ("latency", "en"), ("nomatch", "en"),
                                ("live", "en")):
                async with c.session.get(c.base + "/api/stats/calls.csv", params={
                        **RANGE, "chart": chart, "lang": lang, "tz": "Asia/Shanghai"}) as r:
                    got[chart] = (r.status, r.headers["Content-Type"], await r.read())
            missing = await c.call("GET", "/api/stats/calls.csv", params=RANGE)
            wrong = await c.call("GET", "/api/stats/calls.csv", params={**RANGE, "chart": "pie"})

    def rows(chart: str) -> list[list[str]]:
        status, ctype, raw = got[chart]
        assert status == 200 and ctype.startswith("text/csv"), (chart, status, raw[:200])
        assert raw.startswith(b"\xef\xbb\xbf"), "Excel needs the BOM to read UTF-8"
        return list(csv.reader(io.StringIO(raw.decode("utf-8-sig"))))

    calls = rows("calls")
    assert calls == [["开始时间", "呼入", "呼出", "呼叫总数"],
                     ["2026-01-01 08:00", "2", "1", "3"], ["2026-01-01 09:00", "3", "0", "3"]]
    assert rows("rates")[1] == ["2026-01-01 08:00", "3", "2", "0.6667", "2", "1", "0.5"]
    assert rows("dispositions") == [["Disposition", "Calls"], ["answered", "4"],
                                    ["no_answer", "2"]]
    assert rows("exits")[1:] == [["main", "bye", "hangup", "2"],
                                 ["main", "ask", "caller_hangup", "1"]]
    latency = rows("latency")
    assert latency[0] == ["Bucket start", "Turns", "p50 (ms)", "p95 (ms)", "Over budget"]
    assert latency[1:] == [["2026-01-01 08:00", "3", "500.0", "900.0", "1"],
                           ["2026-01-01 09:00", "0", "", "", "0"]]
    assert rows("nomatch")[1] == ["2026-01-01 08:00", "4", "1", "1", "0.25"]
    assert rows("live")[1][1:] == ["", "", "", ""]  # no engine here: no figure, not a zero
    assert missing[0] == 422 and missing[1]["error"]["field"] == "query.chart"
    assert wrong[0] == 422 and wrong[1]["error"]["field"] == "query.chart"
