"""Inspection for the console and the CLI: scorecards, results, the review workflow, stats.

Every change (a scorecard imported, a call queued again, a review assigned or decided, a
calibration started) writes one audit entry; reads take the caller's :class:`Tenants`.
"""

from __future__ import annotations

import time
from typing import Any

from console.audit import AuditLog
from console.services.base import Actor, Audited, Invalid, Missing
from engine.cdr import CallRecords
from inspection.queue import JobQueue
from inspection.review import Agreement, ReviewError, ReviewMissing, Reviews, export_csv, stats
from inspection.rules import RuleError
from inspection.scorecard import load_scorecard
from inspection.store import (
    InspectionResultRow,
    InspectionReviewRow,
    InspectionScorecardRow,
    ResultStore,
    ScorecardStore,
)
from storage import Database
from storage.tenancy import Tenants


def result_dict(row: InspectionResultRow, *, whole: bool = True) -> dict[str, Any]:
    d: dict[str, Any] = {
        "call_id": row.call_id, "tenant": row.tenant, "inspected_at": row.inspected_at,
        "flow_id": row.flow_id, "scorecard": row.scorecard,
        "scorecard_version": row.scorecard_version, "score": row.score, "passed": row.passed,
        "auto_failed": row.auto_failed, "needs_review": row.needs_review,
        "review_state": row.review_state, "final_score": row.final_score,
        "language": row.language, "reasons": (row.result or {}).get("reasons", [])}
    if whole:
        d.update(items=(row.result or {}).get("items", []),
                 sections=(row.result or {}).get("sections", {}), stats=row.stats,
                 transcript=row.transcript)
    return d


def review_dict(row: InspectionReviewRow) -> dict[str, Any]:
    return {"id": row.id, "call_id": row.call_id, "tenant": row.tenant, "level": row.level,
            "session": row.session, "reviewer": row.reviewer, "state": row.state,
            "verdict": row.verdict, "score": row.score, "comment": row.comment,
            "created_at": row.created_at, "decided_at": row.decided_at}


def scorecard_dict(row: InspectionScorecardRow) -> dict[str, Any]:
    return {"tenant": row.tenant, "id": row.id, "version": row.version, "active": row.active,
            "updated_at": row.updated_at, "updated_by": row.updated_by,
            "document": row.document}


class InspectionOps(Audited):
    def __init__(self, db: Database, audit: AuditLog) -> None:
        super().__init__(audit)
        self.db = db
        self.scorecards = ScorecardStore(db)
        self.results = ResultStore(db)
        self.reviews = Reviews(db)
        self.queue = JobQueue(db)

    # -- scorecards ---------------------------------------------------------------------
    def import_scorecard(self, actor: Actor, tenant: str, document: Any) -> int:
        """Check and store a scorecard (a new version when its id exists)."""
        try:
            card = load_scorecard(document)
        except RuleError as e:
            field = str(e).split(":", 1)[0]
            raise Invalid(str(e), field=f"body.{field}") from None
        version = self.scorecards.save(tenant, dict(card.document), time.time(),
                                       actor.principal.actor)
        self._audit(actor, tenant=tenant, action="inspection.scorecard.import",
                    resource=f"scorecard:{card.id}", after=card.document,
                    detail={"version": version, "items": len(card.items)})
        return version

    def list_scorecards(self, tenants: Tenants) -> list[dict[str, Any]]:
        return [scorecard_dict(r) for r in self.scorecards.list(tenants)]

    # -- results ------------------------------------------------------------------------
    def result(self, call_id: str, tenants: Tenants) -> dict[str, Any]:
        row = self.results.get(call_id, tenants=tenants)
        if row is None:
            raise Missing(f"no inspection result for call {call_id}")
        out = result_dict(row)
        out["reviews"] = [review_dict(r) for r in self.reviews.history(call_id,
                                                                       tenants=tenants)]
        return out

    def search(self, tenants: Tenants, *, text: str | None = None,
               needs_review: bool | None = None, limit: int = 50) -> list[dict[str, Any]]:
        return [result_dict(r, whole=False) for r in self.results.search(
            tenants=tenants, text=text, needs_review=needs_review, limit=limit)]

    def rerun(self, actor: Actor, call_id: str, tenants: Tenants) -> bool:
        rec = CallRecords(self.db).get(call_id, tenants=tenants)
        if rec is None:
            raise Missing(f"no call {call_id}")
        queued = self.queue.enqueue(rec.id, rec.tenant, time.time(), force=True)
        self._audit(actor, tenant=rec.tenant, action="inspection.rerun",
                    resource=f"call:{rec.id}", detail={"queued": queued})
        return queued

    def jobs(self, state: str | None = None, limit: int = 50) -> dict[str, Any]:
        return {"counts": self.queue.counts(),
                "jobs": [{"call_id": j.call_id, "tenant": j.tenant, "state": j.state,
                          "attempts": j.attempts, "error": j.error, "owner": j.owner,
                          "updated_at": j.updated_at} for j in self.queue.jobs(state, limit)]}

    # -- review ---------------------------------------------------------------------------
    def review_queue(self, tenants: Tenants, **filters: Any) -> list[dict[str, Any]]:
        return [result_dict(r, whole=False) for r in self.reviews.queue(tenants=tenants,
                                                                        **filters)]

    def assign(self, actor: Actor, call_id: str, reviewer: str,
               tenants: Tenants) -> dict[str, Any]:
        try:
            row = self.reviews.assign(call_id, reviewer, tenants=tenants)
        except ReviewMissing as e:
            raise Missing(str(e)) from None
        except ReviewError as e:
            raise Invalid(str(e), field=f"body.{e.field}") from None
        self._audit(actor, tenant=row.tenant, action="inspection.review.assign",
                    resource=f"call:{call_id}", detail={"review": row.id, "level": row.level,
                                                        "reviewer": reviewer})
        return review_dict(row)

    def decide(self, actor: Actor, review_id: int, verdict: str, tenants: Tenants, *,
               score: float | None = None, comment: str = "") -> dict[str, Any]:
        try:
            row, res = self.reviews.decide(review_id, actor.principal.username, verdict,
                                           tenants=tenants, score=score, comment=comment)
        except ReviewMissing as e:
            raise Missing(str(e)) from None
        except ReviewError as e:
            raise Invalid(str(e), field=f"body.{e.field}") from None
        self._audit(actor, tenant=row.tenant, action="inspection.review.decide",
                    resource=f"call:{row.call_id}", after=review_dict(row),
                    detail={"review": row.id, "verdict": verdict, "level": row.level,
                            "session": row.session, "result_state": res.review_state})
        return {**review_dict(row), "review_state": res.review_state,
                "final_score": res.final_score}

    def calibrate(self, actor: Actor, session: str, call_ids: list[str], reviewers: list[str],
                  tenants: Tenants) -> list[dict[str, Any]]:
        try:
            rows = self.reviews.calibrate(session, call_ids, reviewers, tenants=tenants)
        except ReviewMissing as e:
            raise Missing(str(e)) from None
        except ReviewError as e:
            raise Invalid(str(e), field=f"body.{e.field}") from None
        for tenant in sorted({r.tenant for r in rows}):
            self._audit(actor, tenant=tenant, action="inspection.calibration.start",
                        resource=f"calibration:{session}",
                        detail={"calls": sorted({r.call_id for r in rows}),
                                "reviewers": sorted({r.reviewer for r in rows})})
        return [review_dict(r) for r in rows]

    def calibrations(self, tenants: Tenants) -> list[dict[str, Any]]:
        return self.reviews.sessions(tenants=tenants)

    def agreement(self, session: str, tenants: Tenants) -> Agreement:
        return self.reviews.agreement(session, tenants=tenants)

    # -- stats ----------------------------------------------------------------------------
    def stats(self, tenants: Tenants, since: float | None = None,
              until: float | None = None) -> dict[str, Any]:
        return stats(self.db, tenants=tenants, since=since, until=until)

    def export_csv(self, tenants: Tenants, limit: int = 100_000) -> str:
        return export_csv(self.results.search(tenants=tenants, limit=limit))
