"""The audit log: every configuration change, who made it, when, in which tenant, and what it
was before and after (as digests), in an append-only table.

Append-only twice over: the ORM refuses to update or delete a row, and the migration puts
triggers on the table so that even SQL typed by hand cannot change history (SQLite and
PostgreSQL alike). The digests are SHA-256 of the canonical JSON of the resource before and
after, so an auditor can prove which published version, word list entry or user record a change
produced without the log holding the data itself (a voiceprint, a password hash never appear).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from sqlalchemy import JSON, Float, Index, Integer, String, event, select
from sqlalchemy.orm import Mapped, mapped_column

from core.clock import Clock, SystemClock
from storage.db import Base, Database
from storage.paging import decode_cursor, encode_cursor
from storage.tenancy import Tenants

GLOBAL_TENANT = ""  # changes to the operator's global lists and words, users, tenants


class AuditRow(Base):
    __tablename__ = "audit_log"
    __table_args__ = (Index("ix_audit_log_tenant_at", "tenant", "at", "id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    at: Mapped[float] = mapped_column(Float)
    actor: Mapped[str] = mapped_column(String(200))
    actor_kind: Mapped[str] = mapped_column(String(16))  # session | token | cli | system
    tenant: Mapped[str] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(64), index=True)  # e.g. flow.publish
    resource: Mapped[str] = mapped_column(String(300))  # e.g. flow:acme_main@3
    before_digest: Mapped[str | None] = mapped_column(String(64), nullable=True)
    after_digest: Mapped[str | None] = mapped_column(String(64), nullable=True)
    detail: Mapped[Any] = mapped_column(JSON, default=dict)  # small summary, never secrets
    ip: Mapped[str] = mapped_column(String(64), default="")


@event.listens_for(AuditRow, "before_update")
def _no_update(_mapper: Any, _conn: Any, target: AuditRow) -> None:
    raise PermissionError(f"audit entry {target.id} is append-only")


@event.listens_for(AuditRow, "before_delete")
def _no_delete(_mapper: Any, _conn: Any, target: AuditRow) -> None:
    raise PermissionError(f"audit entry {target.id} is append-only")


def digest(value: Any) -> str | None:
    """SHA-256 of ``value`` as canonical JSON (sorted keys, no spaces); None for None."""
    if value is None:
        return None
    raw = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                     default=str)
    return hashlib.sha256(raw.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class AuditEntry:
    id: int
    at: float
    actor: str
    actor_kind: str
    tenant: str
    action: str
    resource: str
    before_digest: str | None
    after_digest: str | None
    detail: dict[str, Any]
    ip: str


@dataclass(frozen=True, slots=True)
class AuditQuery:
    actor: str | None = None
    action: str | None = None  # exact, or a prefix ending in '.' ("flow.")
    resource: str | None = None
    since: float | None = None
    until: float | None = None


@dataclass(frozen=True, slots=True)
class AuditPage:
    entries: list[AuditEntry]
    next_cursor: str | None


def _entry(r: AuditRow) -> AuditEntry:
    return AuditEntry(r.id, r.at, r.actor, r.actor_kind, r.tenant, r.action, r.resource,
                      r.before_digest, r.after_digest, dict(r.detail or {}), r.ip)


class AuditLog:
    def __init__(self, db: Database, clock: Clock | None = None) -> None:
        self.db = db
        self.clock = clock or SystemClock()

    def record(self, *, actor: str, actor_kind: str, tenant: str, action: str, resource: str,
               before: Any = None, after: Any = None, detail: dict[str, Any] | None = None,
               ip: str = "") -> AuditEntry:
        row = AuditRow(at=self.clock.wall(), actor=actor[:200], actor_kind=actor_kind,
                       tenant=tenant, action=action, resource=resource[:300],
                       before_digest=digest(before), after_digest=digest(after),
                       detail=json.loads(json.dumps(detail or {}, default=str)), ip=ip[:64])
        with self.db.session() as s:
            s.add(row)
            s.flush()
            return _entry(row)

    def search(self, query: AuditQuery, *, tenants: Tenants, include_global: bool = False,
               limit: int = 50, cursor: str | None = None) -> AuditPage:
        """Newest first. ``include_global`` adds changes to operator-wide resources (global
        lists and words, users, tenants) for the staff who may see them."""
        scope = tenants.where(AuditRow.tenant)
        if include_global and not tenants.is_every:
            scope = scope | (AuditRow.tenant == GLOBAL_TENANT)
        q = select(AuditRow).where(scope)
        if query.actor:
            q = q.where(AuditRow.actor == query.actor)
        if query.action:
            q = q.where(AuditRow.action.startswith(query.action, autoescape=True)
                        if query.action.endswith(".") else AuditRow.action == query.action)
        if query.resource:
            q = q.where(AuditRow.resource == query.resource)
        if query.since is not None:
            q = q.where(AuditRow.at >= query.since)
        if query.until is not None:
            q = q.where(AuditRow.at < query.until)
        if cursor is not None:
            at, last_id = decode_cursor(cursor, float, int)
            q = q.where((AuditRow.at < at) | ((AuditRow.at == at) & (AuditRow.id < last_id)))
        q = q.order_by(AuditRow.at.desc(), AuditRow.id.desc()).limit(limit + 1)
        with self.db.session() as s:
            rows = list(s.scalars(q))
        entries = [_entry(r) for r in rows[:limit]]
        nxt = (encode_cursor(entries[-1].at, entries[-1].id)
               if len(rows) > limit and entries else None)
        return AuditPage(entries, nxt)
