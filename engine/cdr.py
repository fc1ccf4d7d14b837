"""Call records (CDR): one row per call, and the repository the CLI and console read.

:mod:`engine.cdr_builder` assembles a :class:`CallRecord` from the call's events;
:mod:`engine.cdr_writer` writes it off the event loop in batches.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from dataclasses import asdict, dataclass, field
from typing import Any

from sqlalchemy import (
    JSON,
    ColumnElement,
    Float,
    Index,
    Integer,
    String,
    Text,
    case,
    select,
    union_all,
    update,
)
from sqlalchemy.orm import Mapped, mapped_column

from storage import Base, Database
from storage.paging import decode_cursor, encode_cursor
from storage.tenancy import Tenants

log = logging.getLogger("ivr.cdr")


class CallRow(Base):
    __tablename__ = "calls"
    # Search (console, CLI) is newest first within a tenant, optionally by number, flow or
    # disposition: each index leads with the tenant and ends with the time it sorts by.
    __table_args__ = (
        Index("ix_calls_tenant_time", "tenant", "invite_at", "id"),
        Index("ix_calls_tenant_from_time", "tenant", "from_number", "invite_at", "id"),
        Index("ix_calls_tenant_to_time", "tenant", "to_number", "invite_at", "id"),
        Index("ix_calls_tenant_flow_time", "tenant", "flow_id", "invite_at", "id"),
        Index("ix_calls_tenant_disposition_time", "tenant", "disposition", "invite_at", "id"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    tenant: Mapped[str] = mapped_column(String(64), default="default")
    node: Mapped[str] = mapped_column(String(128), default="", server_default="", index=True)
    sip_call_id: Mapped[str] = mapped_column(String(255), index=True)
    direction: Mapped[str] = mapped_column(String(8))
    from_number: Mapped[str] = mapped_column(String(128), index=True)
    to_number: Mapped[str] = mapped_column(String(128), index=True)
    invite_at: Mapped[float] = mapped_column(Float, index=True)
    answer_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    end_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    disposition: Mapped[str] = mapped_column(String(32))
    hangup_cause: Mapped[str] = mapped_column(String(64), default="")
    hangup_side: Mapped[str] = mapped_column(String(16), default="")
    sip_status: Mapped[int | None] = mapped_column(Integer, nullable=True)
    digits: Mapped[str] = mapped_column(String(256), default="")
    recording_path: Mapped[str | None] = mapped_column(Text, nullable=True)
    codec: Mapped[str] = mapped_column(String(16), default="")
    backend: Mapped[str] = mapped_column(String(16), default="sip",
                                         server_default="sip")  # sip | asterisk
    flow_id: Mapped[str | None] = mapped_column(String(128), nullable=True)
    flow_version: Mapped[int | None] = mapped_column(Integer, nullable=True)
    campaign_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    trace: Mapped[Any] = mapped_column(JSON, default=list)
    media: Mapped[Any] = mapped_column(JSON, default=dict)
    flow_result: Mapped[Any] = mapped_column(JSON, default=dict)


@dataclass
class CallRecord:
    sip_call_id: str
    direction: str  # inbound | outbound
    from_number: str
    to_number: str
    id: str = field(default_factory=lambda: str(uuid.uuid4()))
    tenant: str = "default"
    node: str = ""  # the engine node that carried the call (orphans are marked per node)
    invite_at: float = field(default_factory=time.time)
    answer_at: float | None = None
    end_at: float | None = None
    # in_progress (written at INVITE and answer), answered, no_answer, busy, rejected, failed
    disposition: str = "failed"
    hangup_cause: str = ""
    hangup_side: str = ""
    sip_status: int | None = None
    digits: str = ""
    recording_path: str | None = None
    codec: str = ""
    backend: str = "sip"  # which backend carried the call: sip (own stack) or asterisk
    flow_id: str | None = None
    flow_version: int | None = None
    campaign_id: str | None = None  # the outbound campaign that placed the call
    trace: list[dict[str, Any]] = field(default_factory=list)
    media: dict[str, Any] = field(default_factory=dict)
    flow_result: dict[str, Any] = field(default_factory=dict)  # status, variables (masked)

    @property
    def duration_s(self) -> float:
        if self.answer_at is None or self.end_at is None:
            return 0.0
        return max(0.0, self.end_at - self.answer_at)

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["duration_s"] = round(self.duration_s, 3)
        return d


JSON_FIELDS = ("trace", "media", "flow_result")
_RECORD_FIELDS = tuple(CallRecord.__dataclass_fields__)


def _values(rec: CallRecord) -> dict[str, Any]:
    """The record as column values; JSON fields made plain (what is not JSON becomes text).
    An empty list or dict is plain already: two of a call's three writes carry nothing else
    (the INVITE and answer snapshots), so they skip the dumps/loads round trip."""
    data = {f: getattr(rec, f) for f in _RECORD_FIELDS}
    for f in JSON_FIELDS:
        v = data[f]
        data[f] = (type(v)() if not v and type(v) in (list, dict)
                   else json.loads(json.dumps(v, default=str)))
    return data


def _row(rec: CallRecord) -> CallRow:
    return CallRow(**_values(rec))


def _upsert(dialect: str) -> Any:
    """INSERT ... ON CONFLICT (id) DO UPDATE every column, or None where the dialect has no
    such statement (the ORM's merge then does it: a SELECT and an INSERT or UPDATE per row)."""
    from sqlalchemy.dialects import postgresql, sqlite  # noqa: PLC0415

    inserts: dict[str, Any] = {"sqlite": sqlite.insert, "postgresql": postgresql.insert}
    if dialect not in inserts:
        return None
    stmt = inserts[dialect](CallRow.__table__)
    return stmt.on_conflict_do_update(
        index_elements=[CallRow.id],
        set_={c.name: stmt.excluded[c.name] for c in CallRow.__table__.columns if c.name != "id"})


def record_from_row(row: CallRow) -> CallRecord:
    return CallRecord(**{c: getattr(row, c) for c in CallRecord.__dataclass_fields__})


@dataclass(frozen=True, slots=True)
class CallQuery:
    """Filters for :meth:`CallRecords.search` (all optional, combined with AND).

    ``number`` matches the caller or the callee; a trailing ``*`` makes it a prefix.
    ``since``/``until`` bound the INVITE time (epoch seconds, ``since <= t < until``).
    """

    since: float | None = None
    until: float | None = None
    number: str | None = None
    flow_id: str | None = None
    disposition: str | None = None
    direction: str | None = None
    campaign_id: str | None = None  # the outbound campaign that placed the calls


@dataclass(frozen=True, slots=True)
class CallPage:
    records: list[CallRecord]
    next_cursor: str | None  # pass back to get the following page; None: this was the last


def _number_match(column: Any, number: str) -> ColumnElement[bool]:
    """Exact, or a prefix for ``123*`` (as a range, so the index serves it on every
    database: LIKE with an escape clause does not use one on SQLite)."""
    if not number.endswith("*"):
        return column == number
    stem = number[:-1]
    if not stem:
        return column.is_not(None)
    return (column >= stem) & (column < stem[:-1] + chr(ord(stem[-1]) + 1))


# What a list needs: everything but the trace and media statistics (those can be large).
_SUMMARY_COLUMNS = [c for c in CallRow.__table__.columns if c.name not in ("trace", "media")]


class CallRecords:
    """Reading and writing call records (the CLI and the console read through this).

    Every read takes the :class:`~storage.tenancy.Tenants` it may see; a record of another
    tenant is simply not there.
    """

    def __init__(self, db: Database) -> None:
        self.db = db
        self._upsert: dict[str, Any] = {}  # dialect -> its prebuilt upsert (None: merge)

    def save_many(self, records: list[CallRecord]) -> None:
        """Insert or update each record whole (a call is written at INVITE, at answer and at
        its end, so a batch may hold several snapshots of one call: the last one wins). One
        upsert statement for the batch: the ORM's merge cost a SELECT per row (~1.6 ms CPU
        per write, measured; docs/benchmarks.md)."""
        latest = {rec.id: rec for rec in records}
        if not latest:
            return
        upsert = self._upsert.get(self.db.engine.dialect.name, False)
        if upsert is False:
            upsert = self._upsert[self.db.engine.dialect.name] = _upsert(
                self.db.engine.dialect.name)
        if upsert is None:
            with self.db.session() as s:
                for rec in latest.values():
                    s.merge(_row(rec))
            return
        # a Core connection and executemany: through an ORM session the same statement takes
        # the ORM's bulk path, which walks every row's values to build a cache key
        with self.db.engine.begin() as conn:
            conn.execute(upsert, [_values(rec) for rec in latest.values()])

    def unfinished_nodes(self) -> list[str]:
        """Nodes with calls still open in the records (alive, or killed mid-call)."""
        with self.db.session() as s:
            return [n for n in s.scalars(select(CallRow.node).where(
                CallRow.end_at.is_(None), CallRow.node != "").distinct())]

    def mark_orphans(self, node: str, at: float) -> int:
        """Calls this node left unfinished (it was killed): ended at ``at`` with cause
        ``node_lost``; answered ones stay ``answered``, the rest become ``failed``."""
        with self.db.session() as s:
            result = s.execute(
                update(CallRow)
                .where(CallRow.node == node, CallRow.end_at.is_(None))
                .values(end_at=at, hangup_cause="node_lost", hangup_side="system",
                        disposition=case((CallRow.answer_at.is_(None), "failed"),
                                         else_="answered"))
            )
            return int(getattr(result, "rowcount", 0) or 0)

    def list(self, limit: int = 50, *, tenants: Tenants) -> list[CallRecord]:
        """The newest records, whole (trace included)."""
        with self.db.session() as s:
            q = (select(CallRow).where(tenants.where(CallRow.tenant))
                 .order_by(CallRow.invite_at.desc(), CallRow.id.desc()).limit(limit))
            return [record_from_row(r) for r in s.scalars(q)]

    def search(self, query: CallQuery, *, tenants: Tenants, limit: int = 50,
               cursor: str | None = None, whole: bool = False) -> CallPage:
        """Newest first, ``limit`` per page, keyset-paged (stable while calls keep arriving).
        Records come without ``trace`` and ``media`` (they can be large) unless ``whole``.

        A number matches the caller or the callee: two index lookups joined by UNION ALL (an
        OR across two columns would make the database scan the tenant's every call)."""
        base = [tenants.where(CallRow.tenant)]
        if query.since is not None:
            base.append(CallRow.invite_at >= query.since)
        if query.until is not None:
            base.append(CallRow.invite_at < query.until)
        for column, value in ((CallRow.flow_id, query.flow_id),
                              (CallRow.disposition, query.disposition),
                              (CallRow.direction, query.direction),
                              (CallRow.campaign_id, query.campaign_id)):
            if value is not None:
                base.append(column == value)
        if cursor is not None:
            at, last_id = decode_cursor(cursor, float, str)
            base.append((CallRow.invite_at < at)
                        | ((CallRow.invite_at == at) & (CallRow.id < last_id)))
        order = (CallRow.invite_at.desc(), CallRow.id.desc())
        columns = list(CallRow.__table__.columns) if whole else _SUMMARY_COLUMNS
        if query.number:
            sides = [select(select(*columns)  # each side in a subquery: SQLite
                            .where(*base, _number_match(column, query.number))  # has no
                            .order_by(*order).limit(limit + 1).subquery())  # (... LIMIT) UNION
                     for column in (CallRow.from_number, CallRow.to_number)]
            both = union_all(*sides).subquery()
            q = (select(both).distinct()
                 .order_by(both.c.invite_at.desc(), both.c.id.desc()).limit(limit + 1))
        else:
            q = select(*columns).where(*base).order_by(*order).limit(limit + 1)
        with self.db.session() as s:
            rows = s.execute(q).all()
        records = [CallRecord(**dict(row._mapping)) for row in rows[:limit]]
        more = len(rows) > limit
        nxt = encode_cursor(records[-1].invite_at, records[-1].id) if more and records else None
        return CallPage(records, nxt)

    def get(self, call_id: str, *, tenants: Tenants) -> CallRecord | None:
        """By id, a unique id prefix (8+ characters) or the SIP Call-ID."""
        with self.db.session() as s:
            row = s.scalar(select(CallRow).where(CallRow.id == call_id,
                                                 tenants.where(CallRow.tenant)))
            if row is None:
                match = CallRow.sip_call_id == call_id
                if len(call_id) >= 8:
                    match = match | CallRow.id.startswith(call_id, autoescape=True)
                rows = list(s.scalars(select(CallRow).where(
                    match, tenants.where(CallRow.tenant)).limit(2)))
                row = rows[0] if len(rows) == 1 else None
            return record_from_row(row) if row is not None else None
