"""Inspection (智能质检): results with transcripts and evidence, scorecards, the review
workflow (queue, assignment, verdicts, second level, calibration), stats and CSV export.

Clients see and review their own tenant's calls; the operator's staff name a tenant or ``*``.
Every change goes through :class:`console.services.inspection.InspectionOps` and is audited.
"""

from __future__ import annotations

import asyncio
from dataclasses import asdict

from aiohttp import web

from console.api import schemas as s
from console.api.admin import actor, audit_out
from console.api.context import services
from console.api.errors import ApiError
from console.api.inspection_schemas import (
    AgreementOut,
    AssignIn,
    CalibrationIn,
    CalibrationListOut,
    CalibrationSessionOut,
    InspectionAuditQuery,
    InspectionQuery,
    JobsOut,
    JobsQuery,
    ResultDetailOut,
    ResultListOut,
    ResultOut,
    ReviewListOut,
    ReviewOut,
    ReviewQueueQuery,
    ScorecardIn,
    ScorecardListOut,
    ScorecardOut,
    ScorecardStateIn,
    StatsOut,
    StatsQuery,
    VerdictIn,
)
from console.api.routing import Api, ApiRequest, PathParam
from console.services.inspection import InspectionOps

CALL = {"call_id": PathParam(str, r"^[A-Za-z0-9@._:+-]{1,255}$", 255)}
REVIEW = {"review_id": PathParam(int, r"^[0-9]{1,9}$", 9)}
SESSION = {"session": PathParam(str, r"^[A-Za-z0-9_.:-]{1,64}$", 64)}
SCORECARD = {"scorecard_id": PathParam(str, r"^[A-Za-z0-9_.:-]{1,64}$", 64)}


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

    @api.op("PATCH", "/api/scorecards/{scorecard_id}", summary="Retire a scorecard (its calls "
            "fall to the next fitting card) or bring it back", tag="inspection",
            permission="inspection.rules", query=s.TenantQuery, body=ScorecardStateIn,
            response=ScorecardOut, params=SCORECARD)
    async def set_scorecard_active(req: ApiRequest) -> ScorecardOut:
        tenant = req.who.tenant_for(req.query.tenant)
        row = await asyncio.to_thread(_ops(req).set_scorecard_active, actor(req), tenant,
                                      req.path["scorecard_id"], req.body.active)
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

    @api.op("GET", "/api/inspection/audit", summary="The audit trail of inspection: scorecard "
            "changes, re-inspections, assignments, verdicts, calibrations", tag="inspection",
            permission="inspection.audit", query=InspectionAuditQuery,
            response=s.AuditPageOut,
            description="Only inspection.* entries of the tenants one may see (never the "
                        "operator-wide ones): what QA staff may read of the audit log.")
    async def inspection_audit(req: ApiRequest) -> s.AuditPageOut:
        q: InspectionAuditQuery = req.query
        tenants = req.who.tenants_for(q.tenant, allow_every=True)
        page = await asyncio.to_thread(
            _ops(req).audit_trail, tenants, call_id=q.call_id, action=q.action, actor=q.actor,
            since=q.since, until=q.until, limit=q.limit, cursor=q.cursor)
        return s.AuditPageOut(items=[audit_out(e) for e in page.entries],
                              next_cursor=page.next_cursor)

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
