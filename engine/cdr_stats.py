"""Call statistics over the call records: what the console's dashboard draws.

Counts are aggregated in SQL (SQLAlchemy Core, the same statements on SQLite and PostgreSQL):
calls per time bucket and direction, answered and completed calls, dispositions, how flows
ended and at which node. Per-turn latencies and listen outcomes live inside each record's JSON
trace, which SQL cannot read the same way on both databases, so they come from a bounded scan
of the newest answered calls' traces (:data:`TRACE_SCAN_CALLS`); the result says how many calls
that scan covered, so a partial figure is never shown as a whole one.

Definitions (docs/console.md, Dashboards):

* answered: a finished call (``end_at`` set) that was answered; answer rate = answered / finished
  (calls still in progress count in neither).
* completed: a finished call whose flow reached an end it was drawn to reach (a ``hangup``,
  ``transfer`` or ``return`` node); completion rate = completed / finished calls that ran a
  flow. ``caller_hangup`` (the caller left mid-flow) and ``error``/``loop_guard`` are not.
* a flow exit: the flow, its last node and how it ended (``flow_result``).
* a turn: one ``latency.turn`` trace entry (speech end -> first answer audio, against the
  node's budget); a listen: one ``listen`` trace entry, whose status ``nomatch`` is the
  recogniser-accuracy proxy (speech heard but not understood).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Integer, case, func, select
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql import ColumnElement
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.functions import FunctionElement

from engine.cdr import CallRow
from storage import Database
from storage.tenancy import Tenants

TRACE_SCAN_CALLS = 2000  # newest answered calls whose traces are read for turns and listens
TOP_EXITS = 10
COMPLETED_STATUSES = ("hangup", "transferred", "returned")  # the flow's own ends
FAILED_STATUSES = ("error", "loop_guard")
TURN_KINDS = ("latency.turn", "turn")  # the trace entry of one caller turn's ledger
NOMATCH = "nomatch"
NO_INPUT = "no_input"


class floor_from_zero(FunctionElement[int]):
    """``floor(x)`` for ``x >= 0`` as an integer, on every database: SQLite's CAST truncates
    (which is floor for non-negative x) and has ``floor`` only when built with its math
    functions; PostgreSQL's CAST rounds, so it gets ``FLOOR`` first."""

    type = Integer()
    name = "floor_from_zero"
    inherit_cache = True


@compiles(floor_from_zero)
def _floor_default(element: floor_from_zero, compiler: SQLCompiler, **kw: Any) -> str:
    return f"CAST({compiler.process(element.clauses, **kw)} AS INTEGER)"


@compiles(floor_from_zero, "postgresql")
def _floor_postgresql(element: floor_from_zero, compiler: SQLCompiler, **kw: Any) -> str:
    return f"CAST(FLOOR({compiler.process(element.clauses, **kw)}) AS INTEGER)"


@dataclass(frozen=True, slots=True)
class StatsQuery:
    """Calls whose INVITE lies in ``since <= t < until``, counted in buckets of ``bucket_s``
    seconds that start at ``origin`` (<= ``since``; the caller aligns it to the viewer's local
    hour or midnight)."""

    since: float
    until: float
    bucket_s: int = 3600
    origin: float | None = None
    flow_id: str | None = None
    direction: str | None = None

    @property
    def start(self) -> float:
        return self.since if self.origin is None else min(self.origin, self.since)

    @property
    def bucket_count(self) -> int:
        return max(1, int(-(-(self.until - self.start) // self.bucket_s)))


@dataclass(slots=True)
class BucketCounts:
    start: float  # epoch seconds
    inbound: int = 0
    outbound: int = 0
    finished: int = 0
    answered: int = 0
    flow_calls: int = 0  # finished calls whose flow ended (flow_result has a status)
    completed: int = 0
    turn_totals_ms: list[float] = field(default_factory=list)  # from the trace scan
    over_budget: int = 0
    listens: Counter[str] = field(default_factory=Counter)  # listen status -> count


@dataclass(slots=True)
class CallStats:
    buckets: list[BucketCounts]
    dispositions: dict[str, int]
    flow_statuses: dict[str, int]  # how finished calls' flows ended
    exits: list[tuple[str, str, str, int]]  # (flow_id, last node, status, calls), most first
    in_progress: int
    calls_scanned: int  # answered calls whose traces the turn/listen figures come from
    answered_total: int  # finished answered calls in range (the scan is whole when equal)


class CallStatistics:
    """The dashboard's aggregates over :class:`~engine.cdr.CallRow`; every query carries the
    tenant filter it is given."""

    def __init__(self, db: Database, *, trace_scan: int = TRACE_SCAN_CALLS) -> None:
        self.db = db
        self.trace_scan = trace_scan

    def summary(self, query: StatsQuery, *, tenants: Tenants) -> CallStats:
        where = self._where(query, tenants)
        start, width = query.start, float(query.bucket_s)
        buckets = [BucketCounts(start + i * width) for i in range(query.bucket_count)]
        status = CallRow.flow_result["status"].as_string()
        finished = CallRow.end_at.is_not(None)
        inner = select(
            floor_from_zero((CallRow.invite_at - start) / width).label("bucket"),
            CallRow.direction.label("direction"),
            _flag(finished).label("finished"),
            _flag(finished & CallRow.answer_at.is_not(None)).label("answered"),
            _flag(finished & status.is_not(None)).label("flow_call"),
            _flag(finished & status.in_(COMPLETED_STATUSES)).label("completed"),
        ).where(*where).subquery()
        per_bucket = (select(inner.c.bucket, inner.c.direction, func.count(),
                             func.sum(inner.c.finished), func.sum(inner.c.answered),
                             func.sum(inner.c.flow_call), func.sum(inner.c.completed))
                      .group_by(inner.c.bucket, inner.c.direction))
        dispositions = (select(CallRow.disposition, func.count()).where(*where)
                        .group_by(CallRow.disposition))
        last_node = CallRow.flow_result["last_node"].as_string()
        exits = (select(CallRow.flow_id, last_node, status, func.count().label("n"))
                 .where(*where, finished, status.is_not(None))
                 .group_by(CallRow.flow_id, last_node, status))
        with self.db.session() as s:
            for b, direction, n, fin, ans, flow_calls, done in s.execute(per_bucket):
                if b is None or not 0 <= b < len(buckets):
                    continue
                row = buckets[b]
                if direction == "outbound":
                    row.outbound += n
                else:
                    row.inbound += n
                row.finished += int(fin or 0)
                row.answered += int(ans or 0)
                row.flow_calls += int(flow_calls or 0)
                row.completed += int(done or 0)
            disp = {str(d): int(n) for d, n in s.execute(dispositions)}
            exit_rows = [(str(f or ""), str(node or ""), str(st or ""), int(n))
                         for f, node, st, n in s.execute(exits)]
            traces = s.execute(
                select(CallRow.invite_at, CallRow.trace)
                .where(*where, finished, CallRow.answer_at.is_not(None))
                .order_by(CallRow.invite_at.desc(), CallRow.id.desc())
                .limit(self.trace_scan)).all()
        flow_statuses: Counter[str] = Counter()
        for _, _, st, n in exit_rows:
            flow_statuses[st] += n
        exit_rows.sort(key=lambda r: (-r[3], r[0], r[1], r[2]))
        for at, trace in traces:
            b = int((at - start) // width)
            if 0 <= b < len(buckets):
                _fold_trace(buckets[b], trace)
        return CallStats(
            buckets=buckets, dispositions=dict(sorted(disp.items(), key=lambda kv: -kv[1])),
            flow_statuses=dict(flow_statuses), exits=exit_rows[:TOP_EXITS],
            in_progress=disp.get("in_progress", 0), calls_scanned=len(traces),
            answered_total=sum(b.answered for b in buckets))

    @staticmethod
    def _where(query: StatsQuery, tenants: Tenants) -> list[ColumnElement[bool]]:
        where = [tenants.where(CallRow.tenant), CallRow.invite_at >= query.since,
                 CallRow.invite_at < query.until]
        if query.flow_id is not None:
            where.append(CallRow.flow_id == query.flow_id)
        if query.direction is not None:
            where.append(CallRow.direction == query.direction)
        return where


def _flag(condition: ColumnElement[bool]) -> ColumnElement[int]:
    return case((condition, 1), else_=0)


def _fold_trace(bucket: BucketCounts, trace: Any) -> None:
    """One call's turns and listens into its bucket (a malformed trace adds nothing)."""
    if not isinstance(trace, list):
        return
    for entry in trace:
        if not isinstance(entry, dict):
            continue
        kind = entry.get("kind")
        if kind in TURN_KINDS:
            total = entry.get("total_ms", entry.get("turn_latency_ms"))
            if isinstance(total, int | float) and not isinstance(total, bool) and total >= 0:
                bucket.turn_totals_ms.append(float(total))
                budget = entry.get("budget_ms")
                over = entry.get("over_budget")
                if over is None and isinstance(budget, int | float) and budget:
                    over = total > budget
                bucket.over_budget += 1 if over is True else 0
        elif kind == "listen":
            bucket.listens[str(entry.get("status", ""))] += 1
