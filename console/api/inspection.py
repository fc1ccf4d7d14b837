"""Inspection (智能质检): results with transcripts and evidence, scorecards, the review
workflow (queue, assignment, verdicts, second level, calibration), stats and CSV export.

Clients see and review their own tenant's calls; the operator's staff name a tenant or ``*``.
Every change goes through :class:`console.services.inspection.InspectionOps` and is audited.
"""

from __future__ import annotations

import asyncio
from dataclasses import asdict
from typing import Any

from aiohttp import web
from pydantic import Field

from console.api import schemas as s
from console.api.admin import actor
from console.api.context import services
from console.api.errors import ApiError
from console.api.routing import Api, ApiRequest, PathParam
from console.services.inspection import InspectionOps

CALL = {"call_id": PathParam(str, r"^[A-Za-z0-9@._:+-]{1,255}$", 255)}
REVIEW = {"review_id": PathParam(int, r"^[0-9]{1,9}$", 9)}
SESSION = {"session": PathParam(str, r"^[A-Za-z0-9_.:-]{1,64}$", 64)}


class InspectionQuery(s.TenantQuery):
    q: str | None = Field(None, max_length=200, description="text in the transcript")
    needs_review: bool | None = None
    limit: int = Field(50, ge=1, le=200)


class ReviewQueueQuery(s.TenantQuery):
    state: str = Field("queued", pattern=r"^(queued|assigned|escalated|reviewed|final|any)$",
                       description="the result's review state; any: every state")
    reviewer: str | None = Field(None, max_length=128, description="open reviews of this person")
    rule: str | None = Field(None, max_length=64, description="only calls where this item failed")
    min_score: float | None = Field(None, ge=0, le=100)
    max_score: float | None = Field(None, ge=0, le=100)
    reason: str | None = Field(None, pattern=r"^(auto_fail|score|review|sample)$",
                               description="why it needs a person")
    limit: int = Field(50, ge=1, le=200)


class StatsQuery(s.TenantQuery):
    since: float | None = Field(None, description="epoch seconds, inclusive")
    until: float | None = Field(None, description="epoch seconds, exclusive")


class JobsQuery(s.In):
    state: str | None = Field(None, pattern=r"^(queued|running|done|failed)$")
    limit: int = Field(50, ge=1, le=200)


class ScorecardIn(s.In):
    document: dict[str, Any] = Field(description="sections of weighted items, each one rule "
                                                 "(docs/inspection.md)")


class AssignIn(s.In):
    call_id: str = Field(min_length=1, max_length=255)
    reviewer: str | None = Field(None, max_length=128, description="default: yourself")


class VerdictIn(s.In):
    verdict: str = Field(pattern=r"^(agree|override)$")
    score: float | None = Field(None, ge=0, le=100, description="required for override")
    comment: str = Field("", max_length=4000, description="required for override")


class CalibrationIn(s.In):
    session: str = Field(pattern=r"^[A-Za-z0-9_.:-]{1,64}$")
    call_ids: list[str] = Field(min_length=1, max_length=200)
    reviewers: list[str] = Field(min_length=2, max_length=50)


class ResultOut(s.Out):
    call_id: str
    tenant: str
    inspected_at: float
    flow_id: str | None
    scorecard: str
    scorecard_version: int
    score: float | None
    passed: bool
    auto_failed: bool
    needs_review: bool
    review_state: str
    final_score: float | None
    language: str
    reasons: list[str]


class ResultDetailOut(ResultOut):
    items: list[dict[str, Any]] = Field(description="each item: status, points, evidence "
                                                    "(speaker, start_ms, end_ms, text, node_id)")
    sections: dict[str, Any]
    stats: dict[str, Any]
    transcript: dict[str, Any]
    reviews: list[dict[str, Any]]


class ResultListOut(s.Out):
    items: list[ResultOut]


class ReviewOut(s.Out):
    id: int
    call_id: str
    tenant: str
    level: int
    session: str
    reviewer: str
    state: str
    verdict: str
    score: float | None
    comment: str
    created_at: float
    decided_at: float | None
    review_state: str | None = None
    final_score: float | None = None


class ReviewListOut(s.Out):
    items: list[ReviewOut]


class ScorecardOut(s.Out):
    tenant: str
    id: str
    version: int
    active: bool
    updated_at: float
    updated_by: str
    document: dict[str, Any]


class ScorecardListOut(s.Out):
    items: list[ScorecardOut]


class AgreementOut(s.Out):
    session: str
    calls: int
    reviews: int
    verdict_agreement: float | None
    pass_agreement: float | None
    mean_score_spread: float | None
    reviewers: int
    kappa_method: str | None = Field(description="cohen (two reviewers), fleiss (more)")
    kappa_calls: int = Field(description="calls every reviewer decided (kappa's sample)")
    verdict_kappa: float | None = Field(description="chance-corrected agreement on verdicts")
    pass_kappa: float | None = Field(description="chance-corrected agreement on pass/fail")


class CalibrationSessionOut(s.Out):
    session: str
    calls: int
    reviewers: list[str]
    open: int
    done: int
    created_at: float


class CalibrationListOut(s.Out):
    items: list[CalibrationSessionOut]


class StatsOut(s.Out):
    total: dict[str, Any]
    flows: dict[str, Any]
    days: dict[str, Any]
    items: dict[str, Any]
    reviewers: dict[str, Any]


class JobsOut(s.Out):
    counts: dict[str, int]
    jobs: list[dict[str, Any]]


def _ops(req: ApiRequest) -> InspectionOps:
    ops = services(req).inspection
    if ops is None:
        raise ApiError(409, "not_configured", "inspection is not configured here")
    return ops


def register(api: Api) -> None:
    @api.op("GET", "/api/inspections", summary="Inspected calls, newest first; search the "
            "transcripts", tag="inspection", permission="inspection.read",
            query=InspectionQuery, response=ResultListOut)
    async def search_inspections(req: ApiRequest) -> ResultListOut:
        q: InspectionQuery = req.query
        tenants = req.who.tenants_for(q.tenant, allow_every=True)
        rows = await asyncio.to_thread(_ops(req).search, tenants, text=q.q,
                                       needs_review=q.needs_review, limit=q.limit)
        return ResultListOut(items=[ResultOut(**r) for r in rows])

    @api.op("GET", "/api/inspections/{call_id}", summary="One call's inspection: transcript, "
            "items with evidence, score, reviews", tag="inspection",
            permission="inspection.read", query=s.TenantQuery, response=ResultDetailOut,
            params=CALL)
    async def get_inspection(req: ApiRequest) -> ResultDetailOut:
        tenants = req.who.tenants_for(req.query.tenant, allow_every=True)
        got = await asyncio.to_thread(_ops(req).result, req.path["call_id"], tenants)
        return ResultDetailOut(**got)

    @api.op("POST", "/api/inspections/{call_id}/rerun", summary="Inspect the call again "
            "(queued; e.g. after a scorecard changed)", tag="inspection",
            permission="inspection.rules", query=s.TenantQuery, params=CALL, status=202)
    async def rerun_inspection(req: ApiRequest) -> None:
        tenants = req.who.tenants_for(req.query.tenant, allow_every=True)
        await asyncio.to_thread(_ops(req).rerun, actor(req), req.path["call_id"], tenants)

    @api.op("GET", "/api/inspection/jobs", summary="The post-call queue: counts by state and "
            "the latest jobs", tag="inspection", permission="inspection.queue",
            query=JobsQuery, response=JobsOut)
    async def inspection_jobs(req: ApiRequest) -> JobsOut:
        q: JobsQuery = req.query
        return JobsOut(**await asyncio.to_thread(_ops(req).jobs, q.state, q.limit))

    @api.op("GET", "/api/scorecards", summary="Scorecards of a tenant (or every tenant)",
            tag="inspection", permission="inspection.read", query=s.TenantQuery,
            response=ScorecardListOut)
    async def list_scorecards(req: ApiRequest) -> ScorecardListOut:
        tenants = req.who.tenants_for(req.query.tenant, allow_every=True)
        rows = await asyncio.to_thread(_ops(req).list_scorecards, tenants)
        return ScorecardListOut(items=[ScorecardOut(**r) for r in rows])

    @api.op("POST", "/api/scorecards", summary="Import a scorecard (a new version when its id "
            "exists); every rule is checked, the first problem named", tag="inspection",
            permission="inspection.rules", query=s.TenantQuery, body=ScorecardIn,
            response=ScorecardOut, status=201)
    async def import_scorecard(req: ApiRequest) -> ScorecardOut:
        tenant = req.who.tenant_for(req.query.tenant)
        ops = _ops(req)
        version = await asyncio.to_thread(ops.import_scorecard, actor(req), tenant,
                                          req.body.document)
        rows = await asyncio.to_thread(ops.list_scorecards, req.who.tenants_for(tenant))
        (row,) = [r for r in rows if r["id"] == req.body.document["id"]
                  and r["version"] == version]
        return ScorecardOut(**row)

    @api.op("GET", "/api/reviews", summary="The review queue: calls waiting for a person",
            tag="inspection", permission="inspection.review", query=ReviewQueueQuery,
            response=ResultListOut)
    async def review_queue(req: ApiRequest) -> ResultListOut:
        q: ReviewQueueQuery = req.query
        tenants = req.who.tenants_for(q.tenant, allow_every=True)
        rows = await asyncio.to_thread(
            _ops(req).review_queue, tenants, state=q.state, reviewer=q.reviewer, rule=q.rule,
            max_score=q.max_score, min_score=q.min_score, reason=q.reason, limit=q.limit)
        return ResultListOut(items=[ResultOut(**r) for r in rows])

    @api.op("POST", "/api/reviews", summary="Assign a call's next review (level 1, or level 2 "
            "after an override) to a reviewer", tag="inspection",
            permission="inspection.review", query=s.TenantQuery, body=AssignIn,
            response=ReviewOut, status=201)
    async def assign_review(req: ApiRequest) -> ReviewOut:
        b: AssignIn = req.body
        tenants = req.who.tenants_for(req.query.tenant, allow_every=True)
        got = await asyncio.to_thread(_ops(req).assign, actor(req), b.call_id,
                                      b.reviewer or req.who.username, tenants)
        return ReviewOut(**got)

    @api.op("POST", "/api/reviews/{review_id}/verdict", summary="Agree, or override with a "
            "score and a comment (an override goes to a second-level review)",
            tag="inspection", permission="inspection.review", query=s.TenantQuery,
            body=VerdictIn, response=ReviewOut, params=REVIEW)
    async def decide_review(req: ApiRequest) -> ReviewOut:
        b: VerdictIn = req.body
        tenants = req.who.tenants_for(req.query.tenant, allow_every=True)
        got = await asyncio.to_thread(_ops(req).decide, actor(req), req.path["review_id"],
                                      b.verdict, tenants, score=b.score, comment=b.comment)
        return ReviewOut(**got)

    @api.op("POST", "/api/calibrations", summary="A calibration session: the same calls to "
            "several reviewers, independently", tag="inspection",
            permission="inspection.review", query=s.TenantQuery, body=CalibrationIn,
            response=ReviewListOut, status=201)
    async def start_calibration(req: ApiRequest) -> ReviewListOut:
        b: CalibrationIn = req.body
        tenants = req.who.tenants_for(req.query.tenant, allow_every=True)
        rows = await asyncio.to_thread(_ops(req).calibrate, actor(req), b.session, b.call_ids,
                                       b.reviewers, tenants)
        return ReviewListOut(items=[ReviewOut(**r) for r in rows])

    @api.op("GET", "/api/calibrations", summary="Calibration sessions, newest first",
            tag="inspection", permission="inspection.review", query=s.TenantQuery,
            response=CalibrationListOut)
    async def list_calibrations(req: ApiRequest) -> CalibrationListOut:
        tenants = req.who.tenants_for(req.query.tenant, allow_every=True)
        rows = await asyncio.to_thread(_ops(req).calibrations, tenants)
        return CalibrationListOut(items=[CalibrationSessionOut(**r) for r in rows])

    @api.op("GET", "/api/calibrations/{session}", summary="How far a calibration session's "
            "reviewers agree", tag="inspection", permission="inspection.review",
            query=s.TenantQuery, response=AgreementOut, params=SESSION)
    async def calibration_agreement(req: ApiRequest) -> AgreementOut:
        tenants = req.who.tenants_for(req.query.tenant, allow_every=True)
        got = await asyncio.to_thread(_ops(req).agreement, req.path["session"], tenants)
        return AgreementOut(**asdict(got))

    @api.op("GET", "/api/inspection/stats", summary="Counts and scores per flow, rule, "
            "reviewer and day", tag="inspection", permission="inspection.read",
            query=StatsQuery, response=StatsOut)
    async def inspection_stats(req: ApiRequest) -> StatsOut:
        q: StatsQuery = req.query
        tenants = req.who.tenants_for(q.tenant, allow_every=True)
        return StatsOut(**await asyncio.to_thread(_ops(req).stats, tenants, q.since, q.until))

    @api.op("GET", "/api/inspection/export", summary="Results as CSV (UTF-8 with BOM)",
            tag="inspection", permission="inspection.read", query=s.TenantQuery,
            produces="text/csv")
    async def export_inspections(req: ApiRequest) -> web.Response:
        tenants = req.who.tenants_for(req.query.tenant, allow_every=True)
        text = await asyncio.to_thread(_ops(req).export_csv, tenants)
        return web.Response(text=text, content_type="text/csv", charset="utf-8", headers={
            "Content-Disposition": 'attachment; filename="inspections.csv"'})
