"""Where inspection keeps its state: jobs, results (transcripts), scorecards, reviews.

Tables (migration 0006_inspection): ``inspection_jobs`` (the durable post-call queue, one row
per call), ``inspection_results`` (transcript, its plain text for search, item results with
evidence, the score), ``inspection_scorecards`` (each tenant's scorecards, versioned) and
``inspection_reviews`` (assignments and verdicts; see :mod:`inspection.review`).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import JSON, Boolean, Float, Index, Integer, String, Text, select
from sqlalchemy.orm import Mapped, mapped_column

from storage import Base, Database
from storage.tenancy import Tenants


class InspectionJobRow(Base):
    __tablename__ = "inspection_jobs"
    __table_args__ = (Index("ix_inspection_jobs_state_due", "state", "not_before"),)

    call_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    tenant: Mapped[str] = mapped_column(String(64), default="default")
    state: Mapped[str] = mapped_column(String(16), default="queued")  # queued running done failed
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    not_before: Mapped[float] = mapped_column(Float, default=0.0)
    lease_until: Mapped[float | None] = mapped_column(Float, nullable=True)
    owner: Mapped[str] = mapped_column(String(128), default="")
    error: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[float] = mapped_column(Float)
    updated_at: Mapped[float] = mapped_column(Float)


class InspectionResultRow(Base):
    __tablename__ = "inspection_results"
    __table_args__ = (
        Index("ix_inspection_results_tenant_time", "tenant", "inspected_at", "call_id"),
        Index("ix_inspection_results_tenant_review", "tenant", "review_state", "inspected_at"),
    )

    call_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    tenant: Mapped[str] = mapped_column(String(64), default="default")
    inspected_at: Mapped[float] = mapped_column(Float)
    scorecard: Mapped[str] = mapped_column(String(64), default="")
    scorecard_version: Mapped[int] = mapped_column(Integer, default=0)
    flow_id: Mapped[str | None] = mapped_column(String(128), nullable=True)
    campaign_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    score: Mapped[float | None] = mapped_column(Float, nullable=True)
    passed: Mapped[bool] = mapped_column(Boolean, default=True)
    auto_failed: Mapped[bool] = mapped_column(Boolean, default=False)
    needs_review: Mapped[bool] = mapped_column(Boolean, default=False)
    # "" (no review needed), queued, assigned, reviewed, escalated (awaiting level 2), final
    review_state: Mapped[str] = mapped_column(String(16), default="")
    final_score: Mapped[float | None] = mapped_column(Float, nullable=True)  # after review
    language: Mapped[str] = mapped_column(String(16), default="")
    text: Mapped[str] = mapped_column(Text, default="")  # "caller: ...\nengine: ..." for search
    transcript: Mapped[Any] = mapped_column(JSON, default=dict)
    result: Mapped[Any] = mapped_column(JSON, default=dict)  # Score.as_dict()
    stats: Mapped[Any] = mapped_column(JSON, default=dict)  # audio_s, compute_s, rtf, engine


class InspectionScorecardRow(Base):
    __tablename__ = "inspection_scorecards"

    tenant: Mapped[str] = mapped_column(String(64), primary_key=True)
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    version: Mapped[int] = mapped_column(Integer, default=1)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    document: Mapped[Any] = mapped_column(JSON, default=dict)
    updated_at: Mapped[float] = mapped_column(Float)
    updated_by: Mapped[str] = mapped_column(String(128), default="")


class InspectionReviewRow(Base):
    __tablename__ = "inspection_reviews"
    __table_args__ = (
        Index("ix_inspection_reviews_tenant_reviewer", "tenant", "reviewer", "state"),
        Index("ix_inspection_reviews_call", "call_id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    call_id: Mapped[str] = mapped_column(String(36))
    tenant: Mapped[str] = mapped_column(String(64), default="default")
    level: Mapped[int] = mapped_column(Integer, default=1)  # 1 review, 2 second-level review
    session: Mapped[str] = mapped_column(String(64), default="")  # calibration session id
    reviewer: Mapped[str] = mapped_column(String(128), default="")
    state: Mapped[str] = mapped_column(String(16), default="open")  # open, done
    verdict: Mapped[str] = mapped_column(String(16), default="")  # agree, override
    score: Mapped[float | None] = mapped_column(Float, nullable=True)
    comment: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[float] = mapped_column(Float)
    decided_at: Mapped[float | None] = mapped_column(Float, nullable=True)


class ScorecardStore:
    """Each tenant's scorecards; saving bumps the version (results name the version) and makes
    the card active again; a retired card is kept (inactive) for the results that name it."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def save(self, tenant: str, document: dict[str, Any], at: float, by: str = "") -> int:
        with self.db.session() as s:
            row = s.get(InspectionScorecardRow, (tenant, document["id"]))
            if row is None:
                s.add(InspectionScorecardRow(tenant=tenant, id=document["id"], version=1,
                                             document=document, updated_at=at, updated_by=by))
                return 1
            row.version += 1
            row.document, row.updated_at, row.updated_by, row.active = document, at, by, True
            return row.version

    def set_active(self, tenant: str, card_id: str, active: bool, at: float,
                   by: str = "") -> InspectionScorecardRow | None:
        """Retire (or bring back) a card without a new version; None when there is none."""
        with self.db.session() as s:
            row = s.get(InspectionScorecardRow, (tenant, card_id))
            if row is not None and row.active != active:
                row.active, row.updated_at, row.updated_by = active, at, by
            return row

    def active(self, tenant: str) -> list[tuple[dict[str, Any], int]]:
        """One tenant's active scorecards, by id (:func:`inspection.scoping.pick` chooses)."""
        with self.db.session() as s:
            rows = list(s.scalars(select(InspectionScorecardRow).where(
                InspectionScorecardRow.tenant == tenant, InspectionScorecardRow.active)
                .order_by(InspectionScorecardRow.id)))
        return [(r.document, r.version) for r in rows]

    def list(self, tenants: Tenants) -> list[InspectionScorecardRow]:
        with self.db.session() as s:
            return list(s.scalars(select(InspectionScorecardRow).where(
                tenants.where(InspectionScorecardRow.tenant))
                .order_by(InspectionScorecardRow.tenant, InspectionScorecardRow.id)))


class ResultStore:
    """Inspection results: one per call (re-inspection replaces it)."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def save(self, row: InspectionResultRow) -> None:
        with self.db.session() as s:
            old = s.get(InspectionResultRow, row.call_id)
            if old is not None and old.review_state and not row.review_state:
                row.review_state = old.review_state  # a re-run keeps the review's state ...
            if old is not None and old.review_state == row.review_state:
                row.final_score = old.final_score  # ... and the score a reviewer decided
            s.merge(row)

    def get(self, call_id: str, *, tenants: Tenants) -> InspectionResultRow | None:
        with self.db.session() as s:
            return s.scalar(select(InspectionResultRow).where(
                InspectionResultRow.call_id == call_id, tenants.where(InspectionResultRow.tenant)))

    def search(self, *, tenants: Tenants, text: str | None = None, needs_review: bool | None = None,
               since: float | None = None, limit: int = 50) -> list[InspectionResultRow]:
        """Newest first; ``text`` matches the transcript (case-insensitive substring)."""
        q = select(InspectionResultRow).where(tenants.where(InspectionResultRow.tenant))
        if text:
            q = q.where(InspectionResultRow.text.icontains(text, autoescape=True))
        if needs_review is not None:
            q = q.where(InspectionResultRow.needs_review == needs_review)
        if since is not None:
            q = q.where(InspectionResultRow.inspected_at >= since)
        q = q.order_by(InspectionResultRow.inspected_at.desc()).limit(limit)
        with self.db.session() as s:
            return list(s.scalars(q))
