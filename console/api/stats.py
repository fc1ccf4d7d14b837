"""The dashboard's statistics (calls, rates, dispositions, flow exits, turn latency, no-match
rate, live calls) and each chart's data as CSV."""

from __future__ import annotations

import asyncio
import json
from functools import cache
from typing import Literal

from aiohttp import web
from pydantic import Field

from console.api import schemas as s
from console.api.context import STATIC_DIR, services
from console.api.errors import ApiError
from console.api.routing import Api, ApiRequest
from console.services.dashboard import CHARTS, DashboardOps, DashboardRequest
from storage.tenancy import Tenants

EPOCH_MAX = 4_102_444_800.0  # 2100-01-01: later than any call, small enough for every float
TZ_PATTERN = r"^[A-Za-z][A-Za-z0-9_+\-]{0,30}(/[A-Za-z0-9_+\-]{1,30}){0,2}$"


class CallStatsQuery(s.TenantQuery):
    since: float | None = Field(None, ge=0, le=EPOCH_MAX, allow_inf_nan=False,
                                description="epoch seconds, inclusive (default: until - 24 h)")
    until: float | None = Field(None, ge=0, le=EPOCH_MAX, allow_inf_nan=False,
                                description="epoch seconds, exclusive (default: now)")
    bucket: Literal["hour", "day"] = Field("hour", description="at most 744 hours or 400 "
                                                               "days in one view")
    tz: str = Field("UTC", max_length=64, pattern=TZ_PATTERN,
                    description="IANA time zone the buckets align to (e.g. Asia/Shanghai)")
    flow_id: str | None = Field(None, pattern=s.FLOW_ID_PATTERN)
    direction: Literal["inbound", "outbound"] | None = None


class CallStatsCsvQuery(CallStatsQuery):
    chart: Literal["calls", "rates", "dispositions", "exits", "latency", "nomatch", "live"]
    lang: Literal["en", "zh-CN"] = Field("en", description="language of the header row")


class StatsBucketOut(s.Out):
    start: float = Field(description="epoch seconds the bucket starts")
    inbound: int
    outbound: int
    finished: int
    answered: int
    answer_rate: float | None
    flow_calls: int
    completed: int
    completion_rate: float | None
    turns: int
    p50_ms: float | None
    p95_ms: float | None
    over_budget: int
    listens: int
    nomatch: int
    no_input: int
    nomatch_rate: float | None


class StatsTotalsOut(s.Out):
    calls: int
    inbound: int
    outbound: int
    in_progress: int
    finished: int = Field(description="calls that ended (calls in progress count in no rate)")
    answered: int
    answer_rate: float | None = Field(description="answered / finished")
    flow_calls: int = Field(description="finished calls whose flow ended")
    completed: int = Field(description="flow reached a hangup, transfer or return node")
    completion_rate: float | None = Field(description="completed / flow_calls")
    caller_hangup: int = Field(description="the caller hung up before the flow's end")
    flow_failed: int = Field(description="the flow ended in error or its loop guard")


class DispositionOut(s.Out):
    disposition: str
    calls: int


class ExitOut(s.Out):
    flow_id: str
    node: str = Field(description="the flow's last node")
    status: str = Field(description="how the flow ended: hangup, transferred, caller_hangup, "
                                    "error, ...")
    calls: int


class LatencyOut(s.Out):
    turns: int
    p50_ms: float | None = Field(description="caller turn: speech end -> first answer audio")
    p95_ms: float | None
    over_budget: int = Field(description="turns longer than their node's budget")
    calls_scanned: int = Field(description="answered calls whose traces were read (newest "
                                           "first, bounded)")
    calls_answered: int
    complete: bool = Field(description="every answered call in range was read")


class RecognitionOut(s.Out):
    listens: int
    nomatch: int = Field(description="speech heard but not understood")
    no_input: int
    nomatch_rate: float | None = Field(description="nomatch / listens")
    statuses: dict[str, int]


class LiveOut(s.Out):
    available: bool = Field(description="false when the console runs without an engine")
    calls: int | None
    inbound: int | None
    outbound: int | None
    answered: int | None
    at: float
    reason: str | None


class CallStatsOut(s.Out):
    since: float
    until: float
    bucket: str
    tz: str
    tenant: str = Field(description="the tenant counted, or * for every tenant")
    flow_id: str | None
    buckets: list[StatsBucketOut]
    totals: StatsTotalsOut
    dispositions: list[DispositionOut]
    exits: list[ExitOut] = Field(description="the most frequent ends, most first")
    latency: LatencyOut
    recognition: RecognitionOut
    live: LiveOut


class LiveQuery(s.TenantQuery):
    flow_id: str | None = Field(None, pattern=s.FLOW_ID_PATTERN)


def _ops(req: ApiRequest) -> DashboardOps:
    ops = services(req).dashboard
    if ops is None:
        raise ApiError(409, "unavailable", "call statistics are not set up in this console")
    return ops


def _request(q: CallStatsQuery) -> DashboardRequest:
    return DashboardRequest(since=q.since, until=q.until, bucket=q.bucket, tz=q.tz,
                            flow_id=q.flow_id, direction=q.direction)


def _tenants(req: ApiRequest) -> Tenants:
    return req.who.tenants_for(req.query.tenant, allow_every=True)


@cache
def _catalog(lang: str) -> dict[str, str]:
    """The browser's own catalog: CSV headers use the words the dashboard shows."""
    data: dict[str, str] = json.loads((STATIC_DIR / "i18n" / f"{lang}.json").read_text("utf-8"))
    return data


def register(api: Api) -> None:
    @api.op("GET", "/api/stats/calls", summary="Call statistics for the dashboard",
            tag="stats", permission="stats.read", query=CallStatsQuery, response=CallStatsOut,
            description="Calls per bucket (inbound/outbound), answer and completion rates, "
                        "dispositions, top flow exits, turn latency p50/p95 and over-budget "
                        "turns, no-match rate and live calls. Staff may pass tenant=* for "
                        "every tenant.")
    async def call_stats(req: ApiRequest) -> CallStatsOut:
        tenants = _tenants(req)
        data = await asyncio.to_thread(_ops(req).calls, _request(req.query), tenants)
        return CallStatsOut.model_validate(data)

    @api.op("GET", "/api/stats/calls.csv", summary="One dashboard chart's data as CSV (UTF-8 "
            "with BOM)", tag="stats", permission="stats.read", query=CallStatsCsvQuery,
            produces="text/csv", description=f"chart: one of {', '.join(CHARTS)}. Numbers "
            "are unformatted (rates 0-1, milliseconds); times are local to tz.")
    async def call_stats_csv(req: ApiRequest) -> web.Response:
        q: CallStatsCsvQuery = req.query
        tenants = _tenants(req)
        words = _catalog(q.lang)

        def header(column: str) -> str:
            return words.get(f"dashboard.col.{column}", column)

        text = await asyncio.to_thread(_ops(req).csv, q.chart, _request(q), tenants, header)
        return web.Response(text=text, content_type="text/csv", charset="utf-8", headers={
            "Content-Disposition": f'attachment; filename="calls-{q.chart}.csv"',
            "Cache-Control": "no-store"})

    @api.op("GET", "/api/stats/live", summary="Calls in progress on this engine now",
            tag="stats", permission="stats.read", query=LiveQuery, response=LiveOut,
            description="available is false when the console runs without an engine.")
    async def live_calls(req: ApiRequest) -> LiveOut:
        return LiveOut.model_validate(_ops(req).live_calls(_tenants(req), req.query.flow_id))
