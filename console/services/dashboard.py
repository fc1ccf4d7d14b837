"""The dashboard (数据看板): call statistics for a tenant, a flow and a time range, in buckets
aligned to the viewer's local hours or days, plus the engine's live calls; each chart's data as
CSV a spreadsheet opens (UTF-8 with a BOM, numbers unformatted).

The counting is :class:`engine.cdr_stats.CallStatistics` (SQL); this service turns its counts
into rates and percentiles and checks the request (a range that is empty, reversed, or longer
than :data:`MAX_BUCKETS` buckets is refused naming the field).
"""

from __future__ import annotations

import csv
import io
import math
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from asr.ledger import percentile
from console.live import LiveCalls
from console.services.base import Invalid
from engine.cdr_stats import NO_INPUT, NOMATCH, BucketCounts, CallStatistics, StatsQuery
from storage.tenancy import Tenants

BUCKET_S = {"hour": 3600, "day": 86_400}
MAX_BUCKETS = {"hour": 24 * 31, "day": 400}  # a month of hours, a year and a bit of days
DEFAULT_RANGE_S = 86_400.0  # no `since`: the last 24 hours
CHARTS = ("calls", "rates", "dispositions", "exits", "latency", "nomatch", "live")
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")  # a text cell a spreadsheet would evaluate


@dataclass(frozen=True, slots=True)
class DashboardRequest:
    since: float | None = None
    until: float | None = None
    bucket: str = "hour"
    tz: str = "UTC"
    flow_id: str | None = None
    direction: str | None = None


def rate(part: int, whole: int) -> float | None:
    """``part / whole`` to four places; None when there is nothing to divide."""
    return round(part / whole, 4) if whole else None


def _ms(value: float) -> float | None:
    return None if math.isnan(value) else round(value, 1)


class DashboardOps:
    def __init__(self, stats: CallStatistics, live: Callable[[], LiveCalls | None],
                 now: Callable[[], float]) -> None:
        self.stats = stats
        self.live = live  # the engine's live calls; None when the console runs alone
        self.now = now

    def query(self, req: DashboardRequest) -> tuple[StatsQuery, ZoneInfo]:
        try:
            zone = ZoneInfo(req.tz)
        except (ZoneInfoNotFoundError, ValueError, OSError) as e:  # OSError: a file, no zone
            raise Invalid(f"tz: {req.tz!r} is not a time zone (e.g. Asia/Shanghai, UTC)",
                          "tz") from e
        until = req.until if req.until is not None else self.now()
        since = req.since if req.since is not None else until - DEFAULT_RANGE_S
        if since >= until:
            raise Invalid("since: must be before until", "since")
        width = BUCKET_S[req.bucket]
        if (until - since) / width > MAX_BUCKETS[req.bucket]:
            raise Invalid(f"since: at most {MAX_BUCKETS[req.bucket]} {req.bucket}s in one "
                          f"view (use bucket=day, or a shorter range)", "since")
        # buckets start on the viewer's local hour or midnight (the offset at `since`)
        offset = datetime.fromtimestamp(since, zone).utcoffset()
        off_s = offset.total_seconds() if offset is not None else 0.0
        origin = math.floor((since + off_s) / width) * width - off_s
        return StatsQuery(since=since, until=until, bucket_s=width, origin=origin,
                          flow_id=req.flow_id, direction=req.direction), zone

    def calls(self, req: DashboardRequest, tenants: Tenants) -> dict[str, Any]:
        q, _ = self.query(req)
        got = self.stats.summary(q, tenants=tenants)
        turns = [ms for b in got.buckets for ms in b.turn_totals_ms]
        listens: Counter[str] = Counter()
        for b in got.buckets:
            listens.update(b.listens)
        finished = sum(b.finished for b in got.buckets)
        answered = sum(b.answered for b in got.buckets)
        flow_calls = sum(b.flow_calls for b in got.buckets)
        completed = sum(b.completed for b in got.buckets)
        total_listens = sum(listens.values())
        return {
            "since": q.since, "until": q.until, "bucket": req.bucket, "tz": req.tz,
            "tenant": str(tenants), "flow_id": q.flow_id,
            "buckets": [_bucket_out(b) for b in got.buckets],
            "totals": {
                "calls": sum(b.inbound + b.outbound for b in got.buckets),
                "inbound": sum(b.inbound for b in got.buckets),
                "outbound": sum(b.outbound for b in got.buckets),
                "in_progress": got.in_progress, "finished": finished, "answered": answered,
                "answer_rate": rate(answered, finished), "flow_calls": flow_calls,
                "completed": completed, "completion_rate": rate(completed, flow_calls),
                "caller_hangup": got.flow_statuses.get("caller_hangup", 0),
                "flow_failed": sum(got.flow_statuses.get(s, 0) for s in ("error", "loop_guard")),
            },
            "dispositions": [{"disposition": d, "calls": n} for d, n in got.dispositions.items()],
            "exits": [{"flow_id": f, "node": node, "status": st, "calls": n}
                      for f, node, st, n in got.exits],
            "latency": {
                "turns": len(turns), "p50_ms": _ms(percentile(turns, 50)),
                "p95_ms": _ms(percentile(turns, 95)),
                "over_budget": sum(b.over_budget for b in got.buckets),
                "calls_scanned": got.calls_scanned, "calls_answered": got.answered_total,
                "complete": got.calls_scanned >= got.answered_total,
            },
            "recognition": {
                "listens": total_listens, "nomatch": listens[NOMATCH],
                "no_input": listens[NO_INPUT],
                "nomatch_rate": rate(listens[NOMATCH], total_listens),
                "statuses": dict(sorted(listens.items())),
            },
            "live": self.live_calls(tenants, q.flow_id),
        }

    def live_calls(self, tenants: Tenants, flow_id: str | None = None) -> dict[str, Any]:
        live = self.live()
        if live is None:
            return {"available": False, "calls": None, "inbound": None, "outbound": None,
                    "answered": None, "at": self.now(),
                    "reason": "this console runs without an engine (ivr console): live calls "
                              "need `ivr run`"}
        return {"available": True, **live.count(tenants, flow_id), "at": self.now(),
                "reason": None}

    def csv(self, chart: str, req: DashboardRequest, tenants: Tenants,
            headers: Callable[[str], str]) -> str:
        """One chart's data as CSV; ``headers`` names each column in the reader's language."""
        if chart not in CHARTS:
            raise Invalid(f"chart: one of {', '.join(CHARTS)}", "chart")
        data = self.calls(req, tenants)
        _, zone = self.query(req)
        columns, rows = _table(chart, data, zone)
        out = io.StringIO()
        out.write("\ufeff")  # Excel on Chinese Windows reads UTF-8 only with the BOM
        w = csv.writer(out, lineterminator="\r\n")
        w.writerow([headers(c) for c in columns])
        w.writerows([_cell(v) for v in row] for row in rows)
        return out.getvalue()


def _bucket_out(b: BucketCounts) -> dict[str, Any]:
    listens = sum(b.listens.values())
    return {
        "start": b.start, "inbound": b.inbound, "outbound": b.outbound,
        "finished": b.finished, "answered": b.answered,
        "answer_rate": rate(b.answered, b.finished), "flow_calls": b.flow_calls,
        "completed": b.completed, "completion_rate": rate(b.completed, b.flow_calls),
        "turns": len(b.turn_totals_ms), "p50_ms": _ms(percentile(b.turn_totals_ms, 50)),
        "p95_ms": _ms(percentile(b.turn_totals_ms, 95)), "over_budget": b.over_budget,
        "listens": listens, "nomatch": b.listens[NOMATCH], "no_input": b.listens[NO_INPUT],
        "nomatch_rate": rate(b.listens[NOMATCH], listens),
    }


def _local(ts: float, zone: ZoneInfo) -> str:
    """A time Excel reads as a date in any locale (ISO order, no zone suffix)."""
    return datetime.fromtimestamp(ts, UTC).astimezone(zone).strftime("%Y-%m-%d %H:%M")


def _table(chart: str, d: dict[str, Any], zone: ZoneInfo
           ) -> tuple[list[str], list[list[Any]]]:
    buckets = d["buckets"]
    if chart == "calls":
        return (["start", "inbound", "outbound", "calls"],
                [[_local(b["start"], zone), b["inbound"], b["outbound"],
                  b["inbound"] + b["outbound"]] for b in buckets])
    if chart == "rates":
        return (["start", "finished", "answered", "answer_rate", "flow_calls", "completed",
                 "completion_rate"],
                [[_local(b["start"], zone), b["finished"], b["answered"], b["answer_rate"],
                  b["flow_calls"], b["completed"], b["completion_rate"]] for b in buckets])
    if chart == "dispositions":
        return ["disposition", "calls"], [[r["disposition"], r["calls"]]
                                          for r in d["dispositions"]]
    if chart == "exits":
        return (["flow_id", "node", "status", "calls"],
                [[r["flow_id"], r["node"], r["status"], r["calls"]] for r in d["exits"]])
    if chart == "latency":
        return (["start", "turns", "p50_ms", "p95_ms", "over_budget"],
                [[_local(b["start"], zone), b["turns"], b["p50_ms"], b["p95_ms"],
                  b["over_budget"]] for b in buckets])
    if chart == "nomatch":
        return (["start", "listens", "nomatch", "no_input", "nomatch_rate"],
                [[_local(b["start"], zone), b["listens"], b["nomatch"], b["no_input"],
                  b["nomatch_rate"]] for b in buckets])
    live = d["live"]
    return (["at", "live_calls", "inbound", "outbound", "answered"],
            [[_local(live["at"], zone), live["calls"], live["inbound"], live["outbound"],
              live["answered"]]])


def _cell(value: Any) -> Any:
    """Numbers as they are (no thousands separators, no percent signs); text that a
    spreadsheet would run as a formula is quoted; no value is an empty cell."""
    if value is None:
        return ""
    if isinstance(value, str) and value.startswith(FORMULA_START):
        return "'" + value
    return value
