"""Request and response models of the inspection API (:mod:`console.api.inspection`)."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from console.api import schemas as s


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
    document: dict[str, Any] = Field(description="sections of weighted items, each one rule, "
                                                 "and an optional scope: flows and/or "
                                                 "campaigns (docs/inspection.md)")


class ScorecardStateIn(s.In):
    active: bool = Field(description="false retires the card: its calls fall to the next "
                                     "fitting one")


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
    campaign_id: str | None = Field(description="the campaign that placed the call")
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
    decision: dict[str, Any] | None = Field(
        description="the review whose score is final_score (the latest decided level); "
                    "null while nobody has decided")


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


class InspectionAuditQuery(s.PageQuery):
    call_id: str | None = Field(None, pattern=r"^[A-Za-z0-9@._:+-]{1,255}$",
                                description="one call's entries")
    action: str | None = Field(None, max_length=64, description="an inspection.* action, "
                                                                "or a prefix ending '.'")
    actor: str | None = Field(None, max_length=200)
    since: float | None = None
    until: float | None = None


class StatsOut(s.Out):
    total: dict[str, Any]
    flows: dict[str, Any]
    campaigns: dict[str, Any]
    days: dict[str, Any]
    items: dict[str, Any]
    reviewers: dict[str, Any]


class JobsOut(s.Out):
    counts: dict[str, int]
    jobs: list[dict[str, Any]]
