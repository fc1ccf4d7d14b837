"""Flow drafts and stored test cases: what the console edits before publishing.

A draft may be invalid (a half-drawn graph is saved as is; the validator's problems are shown on
it) but it is always a JSON object of bounded size whose ``id`` is the flow's. Each save carries
the revision it was based on and succeeds only if that is still the current one (one atomic
``UPDATE ... WHERE revision = :base``), so of two people editing the same flow the second gets a
:class:`RevisionConflict` instead of silently overwriting the first. Test cases are stored the
same way, per flow. Every row carries its tenant and every method takes it.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import DateTime, Integer, String, Text, UniqueConstraint, delete, select, update
from sqlalchemy.orm import Mapped, mapped_column

from flows.model import ID_PATTERN
from storage.db import Base, Database

MAX_DOCUMENT_BYTES = 1_000_000  # a 500-node flow with prompts is ~200 kB


class RevisionConflict(Exception):
    """Someone saved since the revision this change was based on."""

    def __init__(self, what: str, current: int | None) -> None:
        super().__init__(f"{what} changed since you loaded it (now at revision {current}); "
                         "reload and apply your change again")
        self.current = current


class UnknownDraft(LookupError):
    pass


class DraftInvalid(ValueError):
    """Not storable at all (not an object, too large, wrong id): ``field`` says what."""

    def __init__(self, message: str, field: str) -> None:
        super().__init__(message)
        self.field = field


def _now() -> datetime:
    return datetime.now(UTC)


class _DocumentColumns:
    """One JSON document per (tenant, flow), with its revision and who saved it last."""

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    tenant: Mapped[str] = mapped_column(String(64))
    flow_id: Mapped[str] = mapped_column(String(64))
    document: Mapped[str] = mapped_column(Text)
    revision: Mapped[int] = mapped_column(Integer)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=_now)
    updated_by: Mapped[str] = mapped_column(String(200), default="")


class FlowDraftRow(_DocumentColumns, Base):
    __tablename__ = "flow_drafts"
    __table_args__ = (UniqueConstraint("tenant", "flow_id"),)


class FlowTestsRow(_DocumentColumns, Base):
    __tablename__ = "flow_tests"
    __table_args__ = (UniqueConstraint("tenant", "flow_id"),)


@dataclass(frozen=True, slots=True)
class Draft:
    tenant: str
    flow_id: str
    document: dict[str, Any]
    revision: int
    updated_at: datetime
    updated_by: str


def _aware(dt: datetime) -> datetime:
    return dt.replace(tzinfo=UTC) if dt.tzinfo is None else dt


def _draft(row: FlowDraftRow | FlowTestsRow) -> Draft:
    return Draft(row.tenant, row.flow_id, json.loads(row.document), row.revision,
                 _aware(row.updated_at), row.updated_by)


def _encode(document: Any, flow_id: str, *, check_id: bool) -> str:
    if not isinstance(document, dict):
        raise DraftInvalid("document: must be a JSON object", "document")
    if check_id and document.get("id") != flow_id:
        raise DraftInvalid(f"document.id: must be {flow_id!r} (the flow's id)", "document.id")
    text = json.dumps(document, ensure_ascii=False, separators=(",", ":"))
    if len(text.encode()) > MAX_DOCUMENT_BYTES:
        raise DraftInvalid(f"document: larger than {MAX_DOCUMENT_BYTES} bytes", "document")
    return text


class _Revisioned:
    """Compare-and-set storage of one JSON document per (tenant, flow)."""

    row: Any  # FlowDraftRow or FlowTestsRow (same columns)
    what = "document"
    check_id = False

    def __init__(self, db: Database) -> None:
        self.db = db

    def get(self, flow_id: str, *, tenant: str) -> Draft:
        with self.db.session() as s:
            row = s.scalar(select(self.row).where(self.row.tenant == tenant,
                                                  self.row.flow_id == flow_id))
            if row is None:
                raise UnknownDraft(f"no {self.what} for flow {flow_id!r}")
            return _draft(row)

    def save(self, flow_id: str, document: Any, *, tenant: str, base_revision: int | None,
             by: str = "") -> tuple[Draft | None, Draft]:
        """(before, after). ``base_revision=None`` creates (conflict if it exists); otherwise
        the stored revision must still be ``base_revision``."""
        if not re.fullmatch(ID_PATTERN, flow_id):
            raise DraftInvalid(f"flow_id: {flow_id!r} is not a flow id", "flow_id")
        text = _encode(document, flow_id, check_id=self.check_id)
        with self.db.session() as s:
            row = s.scalar(select(self.row).where(self.row.tenant == tenant,
                                                  self.row.flow_id == flow_id))
            before = _draft(row) if row is not None else None
            if base_revision is None:
                if row is not None:
                    raise RevisionConflict(f"{self.what} for flow {flow_id!r}", row.revision)
                row = self.row(tenant=tenant, flow_id=flow_id, document=text, revision=1,
                               updated_at=_now(), updated_by=by)
                s.add(row)
                s.flush()
                return None, _draft(row)
            done: Any = s.execute(
                update(self.row)
                .where(self.row.tenant == tenant, self.row.flow_id == flow_id,
                       self.row.revision == base_revision)
                .values(document=text, revision=base_revision + 1, updated_at=_now(),
                        updated_by=by))
            if done.rowcount != 1:
                raise RevisionConflict(f"{self.what} for flow {flow_id!r}",
                                       row.revision if row is not None else None)
        return before, self.get(flow_id, tenant=tenant)

    def delete(self, flow_id: str, *, tenant: str, base_revision: int | None = None) -> Draft:
        with self.db.session() as s:
            row = s.scalar(select(self.row).where(self.row.tenant == tenant,
                                                  self.row.flow_id == flow_id))
            if row is None:
                raise UnknownDraft(f"no {self.what} for flow {flow_id!r}")
            if base_revision is not None and row.revision != base_revision:
                raise RevisionConflict(f"{self.what} for flow {flow_id!r}", row.revision)
            before = _draft(row)
            s.execute(delete(self.row).where(self.row.id == row.id))
            return before


class DraftStore(_Revisioned):
    row = FlowDraftRow
    what = "draft"
    check_id = True

    def list(self, *, tenant: str) -> list[Draft]:
        with self.db.session() as s:
            rows = s.scalars(select(FlowDraftRow).where(FlowDraftRow.tenant == tenant)
                             .order_by(FlowDraftRow.flow_id))
            return [_draft(r) for r in rows]


class FlowTestStore(_Revisioned):
    """The JSON test suite of a flow (``flows.testcases.TestSuite``), stored per flow."""

    row = FlowTestsRow
    what = "test cases"
