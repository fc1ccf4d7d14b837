"""Inspection for the console and the CLI: scorecards, results, the review workflow, stats.

Every change (a scorecard imported or retired, a call queued again, a review assigned or
decided, a calibration started) writes one ``inspection.*`` audit entry; reads take the
caller's :class:`Tenants`. :meth:`InspectionOps.audit_trail` reads back those entries only, for
the QA staff who may not read the whole audit log.
"""

from __future__ import annotations

import time
from typing import Any

from sqlalchemy import select

from campaigns.store import CampaignNotFound, CampaignStore
from console.audit import AuditLog, AuditPage, AuditQuery
from console.identity import UserRow
from console.roles import OPERATOR_ROLES, PERMISSIONS, Role
from console.services.base import Actor, Audited, Conflict, Invalid, Missing
from engine.cdr import CallRecords
from flows.store import FlowStore
from inspection.queue import JobQueue
from inspection.review import Agreement, ReviewError, ReviewMissing, Reviews, export_csv, stats
from inspection.rules import RuleError
from inspection.scoping import describe, overlap, parse_scope
from inspection.scorecard import Scorecard, load_scorecard
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
        "flow_id": row.flow_id, "campaign_id": row.campaign_id, "scorecard": row.scorecard,
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


INSPECTION_ACTIONS = "inspection."  # the audit actions this service writes (a prefix)


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
        """Check and store a scorecard (a new version when its id exists, active again).
        Its scope must name the tenant's own published flows and campaigns, and may not
        claim what another active card of the tenant claims (the field is named)."""
        try:
            card = load_scorecard(document)
        except RuleError as e:
            field = str(e).split(":", 1)[0]
            raise Invalid(str(e), field=f"body.{field}") from None
        self._check_scope(tenant, card)
        version = self.scorecards.save(tenant, dict(card.document), time.time(),
                                       actor.principal.actor)
        self._audit(actor, tenant=tenant, action="inspection.scorecard.import",
                    resource=f"scorecard:{card.id}", after=card.document,
                    detail={"version": version, "items": len(card.items),
                            "scope": card.scope.as_dict()})
        return version

    def _check_scope(self, tenant: str, card: Scorecard) -> None:
        flows = FlowStore(self.db).flow_ids(tenant=tenant)
        for i, flow in enumerate(card.scope.flows):
            if flow not in flows:
                raise Invalid(f"scope.flows[{i}]: tenant {tenant} has no published flow "
                              f"{flow!r}", field=f"body.scope.flows[{i}]")
        campaigns = CampaignStore(self.db)
        for i, cid in enumerate(card.scope.campaigns):
            try:
                owner = campaigns.get(cid).tenant
            except CampaignNotFound:
                owner = None
            if owner != tenant:
                raise Invalid(f"scope.campaigns[{i}]: tenant {tenant} has no campaign {cid!r}",
                              field=f"body.scope.campaigns[{i}]")
        self._check_overlap(tenant, card.id, card.scope)

    def _check_overlap(self, tenant: str, card_id: str, scope: Any) -> None:
        for doc, _version in self.scorecards.active(tenant):
            if doc.get("id") == card_id:
                continue
            clash = overlap(scope, parse_scope(doc.get("scope")))
            if clash is not None:
                field, key = clash
                raise Conflict(f"{field}: scorecard {doc.get('id')!r} already scores "
                               f"{describe(key)} in tenant {tenant}; retire it or scope this "
                               "one differently", field=f"body.{field}",
                               code="scope_taken")

    def set_scorecard_active(self, actor: Actor, tenant: str, card_id: str,
                             active: bool) -> dict[str, Any]:
        """Retire a scorecard (calls fall to the next fitting one) or bring it back (its
        scope checked again, as at import)."""
        row = next((r for r in self.scorecards.list(Tenants.one(tenant)) if r.id == card_id),
                   None)
        if row is None:
            raise Missing(f"no scorecard {card_id} in tenant {tenant}")
        if active and not row.active:
            self._check_overlap(tenant, card_id, parse_scope(row.document.get("scope")))
        changed = row.active != active
        row = self.scorecards.set_active(tenant, card_id, active, time.time(),
                                         actor.principal.actor) or row
        if changed:
            self._audit(actor, tenant=tenant, action="inspection.scorecard."
                        + ("activate" if active else "retire"),
                        resource=f"scorecard:{card_id}", detail={"version": row.version})
        return scorecard_dict(row)

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
        decided = self.reviews.decision(call_id, tenants=tenants)
        out["decision"] = review_dict(decided) if decided is not None else None
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
            row = self.reviews.assign(call_id, reviewer, tenants=tenants,
                                      may_review=self.may_review)
        except ReviewMissing as e:
            raise Missing(str(e)) from None
        except ReviewError as e:
            raise Invalid(str(e), field=f"body.{e.field}") from None
        self._audit(actor, tenant=row.tenant, action="inspection.review.assign",
                    resource=f"call:{call_id}", detail={"review": row.id, "level": row.level,
                                                        "reviewer": reviewer})
        return review_dict(row)

    def may_review(self, username: str, tenant: str) -> str | None:
        """Why ``username`` may not review a call of ``tenant``, or None: the reviewer must
        be a console user, enabled, whose role may give verdicts, and a client's QA only on
        its own tenant's calls (the operator's staff on any). A typo would otherwise open a
        review nobody can ever see or close."""
        with self.db.session() as s:
            row = s.scalar(select(UserRow).where(UserRow.username == username))
        if row is None:
            return "is not a console user"
        if row.disabled:
            return "is disabled"
        role = Role(row.role)
        if role not in PERMISSIONS["inspection.review"]:
            return f"has role {role.value}, which may not review calls"
        if role not in OPERATOR_ROLES and row.tenant != tenant:
            return f"belongs to tenant {row.tenant!r}, not {tenant!r}"
        return None

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
                            "session": row.session, "score": row.score,
                            "result_state": res.review_state,
                            "final_score": None if row.session else res.final_score})
        return {**review_dict(row), "review_state": res.review_state,
                "final_score": res.final_score}

    def calibrate(self, actor: Actor, session: str, call_ids: list[str], reviewers: list[str],
                  tenants: Tenants) -> list[dict[str, Any]]:
        try:
            rows = self.reviews.calibrate(session, call_ids, reviewers, tenants=tenants,
                                          may_review=self.may_review)
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

    # -- the audit trail of inspection ----------------------------------------------------
    def audit_trail(self, tenants: Tenants, *, call_id: str | None = None,
                    action: str | None = None, actor: str | None = None,
                    since: float | None = None, until: float | None = None, limit: int = 50,
                    cursor: str | None = None) -> AuditPage:
        """The ``inspection.*`` entries of ``tenants`` (never operator-wide ones), newest
        first: a call's (``call_id``), one action's, or all of them."""
        if action is not None and not action.startswith(INSPECTION_ACTIONS):
            raise Invalid(f"action: only {INSPECTION_ACTIONS}* entries are here, not "
                          f"{action!r}", field="query.action")
        query = AuditQuery(actor=actor, action=action or INSPECTION_ACTIONS,
                           resource=f"call:{call_id}" if call_id else None, since=since,
                           until=until)
        return self.audit.search(query, tenants=tenants, include_global=False, limit=limit,
                                 cursor=cursor)

    # -- stats ----------------------------------------------------------------------------
    def stats(self, tenants: Tenants, since: float | None = None,
              until: float | None = None) -> dict[str, Any]:
        return stats(self.db, tenants=tenants, since=since, until=until)

    def export_csv(self, tenants: Tenants, limit: int = 100_000) -> str:
        return export_csv(self.results.search(tenants=tenants, limit=limit))
