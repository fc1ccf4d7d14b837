"""The review workflow, statistics and CSV export over stored results (blocking, DB).

A result that needs a person is ``queued``; assigning it opens a level-1 review for a reviewer
(``assigned``). The level-1 verdict is ``agree`` (the automatic score stands) or ``override``
(a new score and a comment, both required). An agreement is final at once; an override goes to
a second-level review by another reviewer (``escalated``). The second level judges the
**level-1 verdict**, as QC products do (VICIdial's QC levels, Contact Lens re-evaluations):
``agree`` confirms level 1's score (the override), ``override`` replaces it with its own score
and a comment. The call's ``final_score`` is always the one of the latest decided level, and
:meth:`Reviews.decision` says which review that was. Calibration sessions give the same calls
to several reviewers independently (their reviews do not touch the result) and measure how
often they agree. Every change is audited by the console service that calls these
(:mod:`console.services.inspection`).
"""

from __future__ import annotations

import csv
import io
import itertools
import statistics
import time
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select

from inspection.agreement import category_table, cohen_kappa, fleiss_kappa
from inspection.store import InspectionResultRow, InspectionReviewRow
from storage import Database
from storage.tenancy import Tenants

VERDICTS = ("agree", "override")
# (reviewer, call's tenant) -> why that person may not review it, or None
ReviewerCheck = Callable[[str, str], "str | None"]


class ReviewError(ValueError):
    """A review step refused; ``field`` names what is wrong."""

    def __init__(self, message: str, field: str = "") -> None:
        super().__init__(message)
        self.field = field


class ReviewMissing(LookupError):
    """No such result or review (or another tenant's)."""


@dataclass(frozen=True, slots=True)
class Agreement:
    session: str
    calls: int  # calls with at least two decided reviews
    reviews: int
    verdict_agreement: float | None  # share of reviewer pairs giving the same verdict
    pass_agreement: float | None  # share of pairs agreeing on pass/fail
    mean_score_spread: float | None  # mean (max - min) of the scores given per call
    reviewers: int = 0  # reviewers with at least one decided review in the session
    kappa_method: str | None = None  # cohen (two reviewers) | fleiss (more) | None
    kappa_calls: int = 0  # calls every reviewer decided: what kappa is computed over
    verdict_kappa: float | None = None  # chance-corrected agreement on agree/override
    pass_kappa: float | None = None  # chance-corrected agreement on pass/fail


class Reviews:
    def __init__(self, db: Database) -> None:
        self.db = db

    def _result(self, s: Any, call_id: str, tenants: Tenants) -> InspectionResultRow:
        row = s.scalar(select(InspectionResultRow).where(
            InspectionResultRow.call_id == call_id, tenants.where(InspectionResultRow.tenant)))
        if row is None:
            raise ReviewMissing(f"no inspection result for call {call_id}")
        return row

    def queue(self, *, tenants: Tenants, state: str = "queued", reviewer: str | None = None,
              rule: str | None = None, max_score: float | None = None,
              min_score: float | None = None, reason: str | None = None,
              limit: int = 50) -> list[InspectionResultRow]:
        """Results waiting for a person, oldest first; ``state`` ``any`` with ``reviewer``:
        every call where that reviewer has an open review (calibration ones too); ``rule``:
        only those where that item failed; ``min_score``..``max_score``: by score;
        ``reason``: why it is queued (``auto_fail``, ``score``, ``review``, ``sample``)."""
        q = select(InspectionResultRow).where(tenants.where(InspectionResultRow.tenant))
        if state != "any":
            q = q.where(InspectionResultRow.review_state == state)
        if max_score is not None:
            q = q.where(InspectionResultRow.score <= max_score)
        if min_score is not None:
            q = q.where(InspectionResultRow.score >= min_score)
        if reviewer is not None:
            q = q.where(InspectionResultRow.call_id.in_(select(InspectionReviewRow.call_id).where(
                InspectionReviewRow.reviewer == reviewer, InspectionReviewRow.state == "open")))
        post_filter = bool(rule or reason)
        q = q.order_by(InspectionResultRow.inspected_at).limit(limit * 4 if post_filter
                                                               else limit)
        with self.db.session() as s:
            rows = list(s.scalars(q))
        if rule:
            rows = [r for r in rows if any(i["id"] == rule and i["status"] == "fail"
                                           for i in (r.result or {}).get("items", []))]
        if reason:
            rows = [r for r in rows if any(str(x).split(" ")[0].rstrip(":") == reason
                                           for x in (r.result or {}).get("reasons", []))]
        return rows[:limit]

    def assign(self, call_id: str, reviewer: str, *, tenants: Tenants,
               now: float | None = None, may_review: ReviewerCheck | None = None
               ) -> InspectionReviewRow:
        """Open the next review of the call for ``reviewer`` (level 1, or level 2 when the
        call is escalated); a reviewer never reviews their own override. ``may_review``
        (reviewer, tenant) -> why not, or None: the console's users decide who may review."""
        if not reviewer:
            raise ReviewError("reviewer: required", "reviewer")
        with self.db.session() as s:
            res = self._result(s, call_id, tenants)
            why = may_review(reviewer, res.tenant) if may_review else None
            if why:
                raise ReviewError(f"reviewer: {reviewer!r} {why}", "reviewer")
            if res.review_state in ("queued", ""):
                level = 1
            elif res.review_state == "escalated":
                level = 2
                first = self._decided(s, call_id, level=1)
                if first is not None and first.reviewer == reviewer:
                    raise ReviewError("reviewer: the second-level review needs another "
                                      "reviewer than the first", "reviewer")
            else:
                raise ReviewError(f"call {call_id} is {res.review_state}: nothing to assign",
                                  "call_id")
            row = InspectionReviewRow(call_id=call_id, tenant=res.tenant, level=level,
                                      session="", reviewer=reviewer, state="open", verdict="",
                                      comment="", created_at=now or time.time())
            s.add(row)
            res.review_state = "assigned"
            s.flush()
            return row

    def decide(self, review_id: int, reviewer: str, verdict: str, *, tenants: Tenants,
               score: float | None = None, comment: str = "",
               now: float | None = None) -> tuple[InspectionReviewRow, InspectionResultRow]:
        if verdict not in VERDICTS:
            raise ReviewError(f"verdict: {verdict!r} is not one of agree, override", "verdict")
        if verdict == "override":
            if score is None or not 0 <= score <= 100:
                raise ReviewError("score: an override needs a score in 0..100", "score")
            if not comment.strip():
                raise ReviewError("comment: an override needs a comment", "comment")
        with self.db.session() as s:
            row = s.scalar(select(InspectionReviewRow).where(
                InspectionReviewRow.id == review_id, tenants.where(InspectionReviewRow.tenant)))
            if row is None:
                raise ReviewMissing(f"no review {review_id}")
            if row.state != "open":
                raise ReviewError(f"review {review_id} is already decided", "review_id")
            if row.reviewer != reviewer:
                raise ReviewError(f"review {review_id} is assigned to {row.reviewer}",
                                  "reviewer")
            res = self._result(s, row.call_id, tenants)
            judged = self._decided(s, row.call_id, level=row.level - 1) if not row.session \
                and row.level > 1 else None
            row.state, row.verdict, row.comment = "done", verdict, comment.strip()[:4000]
            # agree: the score under judgement stands (the automatic one at level 1 and in
            # calibration, the level below's at level 2); override: the reviewer's own
            row.score = score if verdict == "override" else \
                judged.score if judged is not None else res.score
            row.decided_at = now or time.time()
            if row.session:  # calibration: the result is not touched
                return row, res
            if verdict == "override" and row.level == 1:
                res.review_state = "escalated"
            else:
                res.review_state = "final"
            res.final_score = row.score  # the latest decided level's score, always
            return row, res

    @staticmethod
    def _decided(s: Any, call_id: str, *, level: int | None = None
                 ) -> InspectionReviewRow | None:
        """The call's latest decided review (of ``level``), calibration ones aside."""
        q = select(InspectionReviewRow).where(
            InspectionReviewRow.call_id == call_id, InspectionReviewRow.session == "",
            InspectionReviewRow.state == "done")
        if level is not None:
            q = q.where(InspectionReviewRow.level == level)
        return s.scalar(q.order_by(InspectionReviewRow.decided_at.desc(),
                                   InspectionReviewRow.id.desc()).limit(1))

    def decision(self, call_id: str, *, tenants: Tenants) -> InspectionReviewRow | None:
        """The review whose score is the call's ``final_score`` (the latest decided level),
        or None while nobody has decided."""
        with self.db.session() as s:
            self._result(s, call_id, tenants)
            return self._decided(s, call_id)

    def history(self, call_id: str, *, tenants: Tenants) -> list[InspectionReviewRow]:
        with self.db.session() as s:
            return list(s.scalars(select(InspectionReviewRow).where(
                InspectionReviewRow.call_id == call_id, tenants.where(InspectionReviewRow.tenant))
                .order_by(InspectionReviewRow.id)))

    def calibrate(self, session: str, call_ids: Iterable[str], reviewers: Iterable[str], *,
                  tenants: Tenants, now: float | None = None,
                  may_review: ReviewerCheck | None = None) -> list[InspectionReviewRow]:
        """One independent review per (call, reviewer) in calibration session ``session``;
        every reviewer must pass ``may_review`` for every call's tenant (see :meth:`assign`)."""
        reviewers = [r for r in dict.fromkeys(reviewers) if r]
        if len(reviewers) < 2:
            raise ReviewError("reviewers: a calibration needs at least two", "reviewers")
        if not session or len(session) > 64:
            raise ReviewError("session: 1-64 characters", "session")
        out = []
        with self.db.session() as s:
            for call_id in dict.fromkeys(call_ids):
                res = self._result(s, call_id, tenants)
                for i, r in enumerate(reviewers):
                    why = may_review(r, res.tenant) if may_review else None
                    if why:
                        raise ReviewError(f"reviewers[{i}]: {r!r} {why}", f"reviewers[{i}]")
                    row = InspectionReviewRow(call_id=call_id, tenant=res.tenant, level=1,
                                              session=session, reviewer=r, state="open",
                                              verdict="", comment="",
                                              created_at=now or time.time())
                    s.add(row)
                    out.append(row)
            s.flush()
        return out

    def agreement(self, session: str, *, tenants: Tenants,
                  pass_score: float = 80.0) -> Agreement:
        with self.db.session() as s:
            rows = list(s.scalars(select(InspectionReviewRow).where(
                InspectionReviewRow.session == session, InspectionReviewRow.state == "done",
                tenants.where(InspectionReviewRow.tenant))))
        by_call: dict[str, list[InspectionReviewRow]] = defaultdict(list)
        for r in rows:
            by_call[r.call_id].append(r)
        same_verdict = same_pass = pairs = 0
        spreads = []
        calls = 0
        for reviews in by_call.values():
            if len(reviews) < 2:
                continue
            calls += 1
            scores = [r.score or 0.0 for r in reviews]
            spreads.append(max(scores) - min(scores))
            for a, b in itertools.combinations(reviews, 2):
                pairs += 1
                same_verdict += a.verdict == b.verdict
                same_pass += ((a.score or 0) >= pass_score) == ((b.score or 0) >= pass_score)
        method, kappa_calls, verdict_k, pass_k = _kappas(by_call, pass_score)
        return Agreement(session, calls, len(rows),
                         round(same_verdict / pairs, 3) if pairs else None,
                         round(same_pass / pairs, 3) if pairs else None,
                         round(statistics.fmean(spreads), 2) if spreads else None,
                         len({r.reviewer for r in rows}), method, kappa_calls,
                         None if verdict_k is None else round(verdict_k, 3),
                         None if pass_k is None else round(pass_k, 3))

    def sessions(self, *, tenants: Tenants, limit: int = 100) -> list[dict[str, Any]]:
        """Calibration sessions, newest first: calls, reviewers, open and decided reviews."""
        with self.db.session() as s:
            rows = list(s.scalars(select(InspectionReviewRow).where(
                InspectionReviewRow.session != "", tenants.where(InspectionReviewRow.tenant))))
        by_session: dict[str, list[InspectionReviewRow]] = defaultdict(list)
        for r in rows:
            by_session[r.session].append(r)
        out: list[dict[str, Any]] = [
            {"session": k, "calls": len({r.call_id for r in v}),
             "reviewers": sorted({r.reviewer for r in v}),
             "open": sum(r.state == "open" for r in v), "done": sum(r.state == "done" for r in v),
             "created_at": min(r.created_at for r in v)} for k, v in by_session.items()]
        out.sort(key=lambda d: d["created_at"], reverse=True)
        return out[:limit]


def _kappas(by_call: dict[str, list[InspectionReviewRow]], pass_score: float,
            ) -> tuple[str | None, int, float | None, float | None]:
    """Cohen's kappa when the session has two reviewers, Fleiss' when more, over the calls
    every one of them decided (kappa needs the same raters on every call)."""
    reviewers = sorted({r.reviewer for rs in by_call.values() for r in rs})
    if len(reviewers) < 2:
        return None, 0, None, None
    complete = [rs for rs in by_call.values() if {r.reviewer for r in rs} == set(reviewers)
                and len(rs) == len(reviewers)]
    if not complete:
        return None, 0, None, None
    verdicts = [[r.verdict for r in sorted(rs, key=lambda r: r.reviewer)] for rs in complete]
    passes = [[(r.score or 0) >= pass_score for r in sorted(rs, key=lambda r: r.reviewer)]
              for rs in complete]
    if len(reviewers) == 2:
        return ("cohen", len(complete), cohen_kappa([(a, b) for a, b in verdicts]),
                cohen_kappa([(a, b) for a, b in passes]))
    return ("fleiss", len(complete), fleiss_kappa(category_table(verdicts)),
            fleiss_kappa(category_table(passes)))


def stats(db: Database, *, tenants: Tenants, since: float | None = None,
          until: float | None = None) -> dict[str, Any]:
    """Counts and mean scores per flow, per campaign, per scorecard item (fail rate), per
    reviewer (reviews, override rate) and per day (trend)."""
    q = select(InspectionResultRow).where(tenants.where(InspectionResultRow.tenant))
    if since is not None:
        q = q.where(InspectionResultRow.inspected_at >= since)
    if until is not None:
        q = q.where(InspectionResultRow.inspected_at < until)
    with db.session() as s:
        results = list(s.scalars(q))
        ids = [r.call_id for r in results]
        reviews = list(s.scalars(select(InspectionReviewRow).where(
            InspectionReviewRow.call_id.in_(ids), InspectionReviewRow.state == "done"))) \
            if ids else []

    def summary(rows: list[InspectionResultRow]) -> dict[str, Any]:
        scores = [r.score for r in rows if r.score is not None]
        return {"calls": len(rows), "mean_score": round(statistics.fmean(scores), 1)
                if scores else None, "passed": sum(r.passed for r in rows),
                "needs_review": sum(r.needs_review for r in rows)}

    flows: dict[str, list[InspectionResultRow]] = defaultdict(list)
    campaigns: dict[str, list[InspectionResultRow]] = defaultdict(list)
    days: dict[str, list[InspectionResultRow]] = defaultdict(list)
    items: dict[str, dict[str, int]] = defaultdict(lambda: {"pass": 0, "fail": 0, "na": 0})
    for r in results:
        flows[r.flow_id or ""].append(r)
        if r.campaign_id:
            campaigns[r.campaign_id].append(r)
        days[time.strftime("%Y-%m-%d", time.gmtime(r.inspected_at))].append(r)
        for it in (r.result or {}).get("items", []):
            items[it["id"]][it["status"]] += 1
    reviewers: dict[str, dict[str, int]] = defaultdict(lambda: {"reviews": 0, "overrides": 0})
    for rv in reviews:
        reviewers[rv.reviewer]["reviews"] += 1
        reviewers[rv.reviewer]["overrides"] += rv.verdict == "override"
    return {
        "total": summary(results),
        "flows": {k: summary(v) for k, v in sorted(flows.items())},
        "campaigns": {k: summary(v) for k, v in sorted(campaigns.items())},
        "days": {k: summary(v) for k, v in sorted(days.items())},
        "items": {k: {**v, "fail_rate": round(v["fail"] / max(1, v["pass"] + v["fail"]), 3)}
                  for k, v in sorted(items.items())},
        "reviewers": {k: {**v, "override_rate": round(v["overrides"] / max(1, v["reviews"]), 3)}
                      for k, v in sorted(reviewers.items())},
    }


CSV_COLUMNS = ("call_id", "tenant", "inspected_at", "flow_id", "scorecard", "score", "passed",
               "auto_failed", "review_state", "final_score", "language", "failed_items",
               "campaign_id", "scorecard_version")


def export_csv(rows: Iterable[InspectionResultRow]) -> str:
    """Results as CSV (UTF-8 with a BOM, so spreadsheet programs read Chinese right)."""
    out = io.StringIO()
    out.write("\ufeff")
    w = csv.writer(out)
    w.writerow(CSV_COLUMNS)
    for r in rows:
        failed = [i["id"] for i in (r.result or {}).get("items", []) if i["status"] == "fail"]
        w.writerow([r.call_id, r.tenant,
                    time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(r.inspected_at)),
                    r.flow_id or "", r.scorecard, r.score, int(r.passed), int(r.auto_failed),
                    r.review_state, "" if r.final_score is None else r.final_score,
                    r.language, " ".join(failed), r.campaign_id or "", r.scorecard_version])
    return out.getvalue()
