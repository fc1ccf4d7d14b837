"""The dashboard's aggregates over real call records, on SQLite and on a real PostgreSQL: every
figure is recomputed here from the records by plain Python loops and compared; buckets align to
the viewer's local hours and days; the trace scan is bounded and says so; another tenant's calls
never count."""

from __future__ import annotations

import math
import random
from collections import Counter
from typing import Any

import pytest

from console.services.base import Invalid
from console.services.dashboard import DashboardOps, DashboardRequest
from engine.cdr import CallRecord, CallRecords
from engine.cdr_stats import CallStatistics
from storage.db import open_database
from storage.tenancy import Tenants

T0 = 1_767_225_600.0  # 2026-01-01 00:00 UTC = 08:00 in Shanghai
STATUSES = ("hangup", "transferred", "caller_hangup", "error", "returned", None)
LISTENS = ("ok", "nomatch", "no_input", "ok", "dtmf")


def make_calls(rng: random.Random, tenant: str, n: int) -> list[CallRecord]:
    """Calls spread over 30 hours, with answered/unanswered, flow ends, turns and listens."""
    out = []
    for i in range(n):
        at = T0 + rng.uniform(0, 30 * 3600)
        answered = rng.random() < 0.7
        in_progress = rng.random() < 0.05
        status = rng.choice(STATUSES) if answered else None
        trace: list[dict[str, Any]] = []
        if answered and not in_progress:
            for _ in range(rng.randint(0, 3)):
                total = rng.uniform(150, 1500)
                budget = rng.choice((None, 600, 1000))
                trace.append({"at": at + 1, "kind": "latency.turn", "node_id": "ask",
                              "budget_ms": budget, "total_ms": total,
                              "over_budget": None if budget is None else total > budget})
            for _ in range(rng.randint(0, 3)):
                trace.append({"at": at + 2, "kind": "listen", "status": rng.choice(LISTENS)})
        disposition = ("in_progress" if in_progress else "answered" if answered
                       else rng.choice(("no_answer", "busy", "failed")))
        out.append(CallRecord(
            f"sip-{tenant}-{i}", rng.choice(("inbound", "outbound")), "+8613800000000",
            "4001", id=f"{tenant}-{i:05d}", tenant=tenant, invite_at=at,
            answer_at=at + 2 if answered else None,
            end_at=None if in_progress else at + 40, disposition=disposition,
            flow_id=rng.choice(("sales", "support")) if status else None, flow_version=1,
            trace=trace,
            flow_result={"status": status, "last_node": rng.choice(("bye", "agent"))}
            if status else {}))
    return out


def nearest_rank(values: list[float], q: float) -> float | None:
    if not values:
        return None
    s = sorted(values)
    return round(s[max(0, math.ceil(q / 100 * len(s)) - 1)], 1)


@pytest.mark.parametrize("db_url", ["sqlite", pytest.param("postgresql",
                                                           marks=pytest.mark.postgres)],
                         indirect=True)
def test_figures_match_the_records_on_both_databases(db_url: str) -> None:
    db = open_database(db_url)
    rng = random.Random(14)
    ours, theirs = make_calls(rng, "acme", 400), make_calls(rng, "globex", 150)
    CallRecords(db).save_many(ours + theirs)
    ops = DashboardOps(CallStatistics(db), lambda: None, lambda: T0 + 40 * 3600)
    since, until = T0 + 3 * 3600, T0 + 27 * 3600  # 24 of the 30 hours
    got = ops.calls(DashboardRequest(since=since, until=until, tz="Asia/Shanghai"),
                    Tenants.one("acme"))

    seen = [c for c in ours if since <= c.invite_at < until]
    assert got["totals"]["calls"] == len(seen)
    finished = [c for c in seen if c.end_at is not None]
    answered = [c for c in finished if c.answer_at is not None]
    flow_calls = [c for c in finished if c.flow_result.get("status")]
    completed = [c for c in flow_calls
                 if c.flow_result["status"] in ("hangup", "transferred", "returned")]
    t = got["totals"]
    assert (t["finished"], t["answered"], t["flow_calls"], t["completed"]) == (
        len(finished), len(answered), len(flow_calls), len(completed))
    assert t["answer_rate"] == round(len(answered) / len(finished), 4)
    assert t["completion_rate"] == round(len(completed) / len(flow_calls), 4)
    assert t["caller_hangup"] == sum(c.flow_result["status"] == "caller_hangup"
                                     for c in flow_calls)
    assert t["in_progress"] == sum(c.disposition == "in_progress" for c in seen)
    assert {d["disposition"]: d["calls"] for d in got["dispositions"]} == dict(
        Counter(c.disposition for c in seen))

    # buckets: 24 local hours, each call in the hour its INVITE fell in
    assert len(got["buckets"]) == 24
    assert got["buckets"][0]["start"] == since
    for b in got["buckets"]:
        mine = [c for c in seen if b["start"] <= c.invite_at < b["start"] + 3600]
        assert b["inbound"] == sum(c.direction == "inbound" for c in mine)
        assert b["outbound"] == sum(c.direction == "outbound" for c in mine)
        assert b["answered"] == sum(c.end_at is not None and c.answer_at is not None
                                    for c in mine)

    exits = Counter((c.flow_id, c.flow_result["last_node"], c.flow_result["status"])
                    for c in flow_calls)
    top = sorted(exits.items(), key=lambda kv: (-kv[1], kv[0]))[:10]
    assert [(e["flow_id"], e["node"], e["status"], e["calls"]) for e in got["exits"]] == [
        (*k, n) for k, n in top]

    turns = [e for c in answered for e in c.trace if e["kind"] == "latency.turn"]
    totals = [e["total_ms"] for e in turns]
    lat = got["latency"]
    assert lat["turns"] == len(turns) > 50
    assert lat["p50_ms"] == nearest_rank(totals, 50)
    assert lat["p95_ms"] == nearest_rank(totals, 95)
    assert lat["over_budget"] == sum(e["over_budget"] is True for e in turns)
    assert lat["complete"] and lat["calls_scanned"] == len(answered)

    listens = [e["status"] for c in answered for e in c.trace if e["kind"] == "listen"]
    rec = got["recognition"]
    assert rec["listens"] == len(listens)
    assert rec["nomatch"] == listens.count("nomatch")
    assert rec["nomatch_rate"] == round(listens.count("nomatch") / len(listens), 4)
    assert got["live"]["available"] is False

    everyone = ops.calls(DashboardRequest(since=since, until=until), Tenants.every())
    assert everyone["totals"]["calls"] == len(
        [c for c in ours + theirs if since <= c.invite_at < until])


def test_days_align_to_local_midnight_and_flows_filter(tmp_path: Any) -> None:
    db = open_database(f"sqlite:///{tmp_path}/d.sqlite")
    # 2026-01-01 15:59 and 16:01 UTC are either side of midnight in Shanghai (UTC+8)
    calls = [CallRecord(f"s{i}", "inbound", "1", "2", tenant="acme", invite_at=at,
                        flow_id=flow, disposition="failed", end_at=at + 1)
             for i, (at, flow) in enumerate([(T0 + 15 * 3600 + 3540, "a"),
                                             (T0 + 16 * 3600 + 60, "a"),
                                             (T0 + 16 * 3600 + 120, "b")])]
    CallRecords(db).save_many(calls)
    ops = DashboardOps(CallStatistics(db), lambda: None, lambda: T0 + 3 * 86400)
    req = DashboardRequest(since=T0, until=T0 + 2 * 86400, bucket="day", tz="Asia/Shanghai")
    got = ops.calls(req, Tenants.one("acme"))
    assert [b["start"] for b in got["buckets"]] == [T0 - 8 * 3600, T0 + 16 * 3600,
                                                    T0 + 40 * 3600]
    assert [b["inbound"] for b in got["buckets"]] == [1, 2, 0]
    only_a = ops.calls(DashboardRequest(since=T0, until=T0 + 2 * 86400, bucket="day",
                                        tz="Asia/Shanghai", flow_id="a"), Tenants.one("acme"))
    assert [b["inbound"] for b in only_a["buckets"]] == [1, 1, 0]
    utc = ops.calls(DashboardRequest(since=T0, until=T0 + 2 * 86400, bucket="day"),
                    Tenants.one("acme"))
    assert [b["inbound"] for b in utc["buckets"]] == [3, 0]


def test_the_trace_scan_is_bounded_and_says_so(tmp_path: Any) -> None:
    db = open_database(f"sqlite:///{tmp_path}/b.sqlite")
    CallRecords(db).save_many([
        CallRecord(f"s{i}", "inbound", "1", "2", tenant="acme", invite_at=T0 + i,
                   answer_at=T0 + i, end_at=T0 + i + 5, disposition="answered",
                   trace=[{"kind": "latency.turn", "total_ms": 100.0 + i}])
        for i in range(30)])
    ops = DashboardOps(CallStatistics(db, trace_scan=10), lambda: None, lambda: T0 + 3600)
    got = ops.calls(DashboardRequest(since=T0, until=T0 + 3600), Tenants.one("acme"))
    assert got["latency"]["turns"] == 10  # the newest ten calls: totals 120..129
    assert got["latency"]["p50_ms"] == 124.0
    assert (got["latency"]["calls_scanned"], got["latency"]["calls_answered"],
            got["latency"]["complete"]) == (10, 30, False)


@pytest.mark.parametrize(("req", "field"), [
    (DashboardRequest(since=T0 + 10, until=T0), "since"),
    (DashboardRequest(since=T0, until=T0 + 32 * 86400), "since"),
    (DashboardRequest(since=T0, until=T0 + 3600, tz="Mars/Olympus"), "tz"),
])
def test_bad_ranges_name_the_field(tmp_path: Any, req: DashboardRequest, field: str) -> None:
    ops = DashboardOps(CallStatistics(open_database(f"sqlite:///{tmp_path}/x.sqlite")),
                       lambda: None, lambda: T0)
    with pytest.raises(Invalid) as e:
        ops.calls(req, Tenants.one("acme"))
    assert e.value.field == field
