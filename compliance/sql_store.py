"""SQLite/PostgreSQL persistence for word lists and list entries (SQLAlchemy, one schema).

This is what makes ``ivr lists import`` in one process visible to ``ivr lists check`` in the next,
and what the console edits. The engine loads it into the in-memory structures (or uses Redis) for
dial-time speed; calls that touch the database run in a worker thread so they never block the loop.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    Boolean,
    DateTime,
    Integer,
    String,
    UniqueConstraint,
    bindparam,
    delete,
    false,
    select,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Mapped, mapped_column

from compliance.lists import ListEntry, ListKind, ListReason, Scope
from compliance.pinyin import PinyinMode
from compliance.word_version import words_changed
from compliance.words import Action, Term
from storage.db import Base, Database

GLOBAL = ""  # tenant column value for the global word list (NULLs are never equal in UNIQUE)
BATCH = 5_000


class WordRow(Base):
    __tablename__ = "compliance_words"
    __table_args__ = (UniqueConstraint("tenant", "term"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    tenant: Mapped[str] = mapped_column(String(64), default=GLOBAL)
    term: Mapped[str] = mapped_column(String(256))
    category: Mapped[str] = mapped_column(String(32))
    severity: Mapped[int] = mapped_column(Integer)
    action: Mapped[str] = mapped_column(String(8))
    pinyin: Mapped[bool] = mapped_column(Boolean, default=False)  # before pinyin_mode: homophones
    allow: Mapped[bool] = mapped_column(Boolean, default=False)
    pinyin_mode: Mapped[str | None] = mapped_column(String(12), nullable=True)
    initials: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())


class ListRow(Base):
    __tablename__ = "compliance_list_entries"
    __table_args__ = (UniqueConstraint("kind", "scope", "target", "is_prefix"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(8))
    scope: Mapped[str] = mapped_column(String(160))
    target: Mapped[str] = mapped_column(String(20), index=True)
    is_prefix: Mapped[bool] = mapped_column(Boolean)
    reason: Mapped[str] = mapped_column(String(16))
    source: Mapped[str] = mapped_column(String(128), default="")
    expires: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    note: Mapped[str] = mapped_column(String(200), default="", server_default="")


class MetaRow(Base):
    __tablename__ = "compliance_meta"
    key: Mapped[str] = mapped_column(String(32), primary_key=True)
    value: Mapped[int] = mapped_column(Integer)


def _insert(db: Database, table: Any) -> Any:
    dialect = postgresql if db.engine.dialect.name == "postgresql" else sqlite
    return dialect.insert(table)


def _utc(dt: datetime | None) -> datetime | None:
    """Stored in UTC: SQLite keeps the wall time and drops the offset."""
    return dt.astimezone(UTC) if dt is not None else None


def _aware(dt: datetime | None) -> datetime | None:
    return dt.replace(tzinfo=UTC) if dt is not None and dt.tzinfo is None else dt


class SqlWordStore:
    """Implements :class:`compliance.wordlist.WordStore`; ``version`` moves on every change so
    other processes' registries recompile (hot reload)."""

    def __init__(self, db: Database, *,
                 on_change: Callable[[], None] = words_changed) -> None:
        self._db = db
        self._on_change = on_change  # after a committed change (compliance/word_version.py)

    @staticmethod
    def _mode(r: WordRow) -> PinyinMode | None:
        if r.pinyin_mode:
            return PinyinMode(r.pinyin_mode)
        return PinyinMode.HOMOPHONE if r.pinyin else None  # rows from before pinyin_mode

    def all_terms(self) -> list[Term]:
        with self._db.session() as s:
            rows = s.scalars(select(WordRow)).all()
            return [Term(r.term, r.category, r.severity, Action(r.action), r.tenant or None,
                         self._mode(r), r.allow, bool(r.initials)) for r in rows]

    def _bump(self, s: Any) -> None:
        stmt = _insert(self._db, MetaRow).values(key="words_version", value=1)
        s.execute(stmt.on_conflict_do_update(index_elements=["key"],
                                             set_={"value": MetaRow.value + 1}))

    def add_terms(self, terms: Iterable[Term]) -> int:
        rows = [{"tenant": t.tenant or GLOBAL, "term": t.text, "category": t.category,
                 "severity": t.severity, "action": t.action.value,
                 "pinyin": t.pinyin is PinyinMode.HOMOPHONE,
                 "pinyin_mode": t.pinyin.value if t.pinyin else None, "allow": t.allow,
                 "initials": t.initials} for t in terms]
        with self._db.session() as s:
            for i in range(0, len(rows), BATCH):
                stmt = _insert(self._db, WordRow)
                stmt = stmt.on_conflict_do_update(
                    index_elements=["tenant", "term"],
                    set_={c: stmt.excluded[c] for c in
                          ("category", "severity", "action", "pinyin", "allow",
                           "pinyin_mode", "initials")})
                s.execute(stmt, rows[i : i + BATCH])
            self._bump(s)
        self._on_change()
        return len(rows)

    def remove_term(self, text: str, tenant: str | None) -> bool:
        with self._db.session() as s:
            result: Any = s.execute(delete(WordRow).where(
                WordRow.term == text, WordRow.tenant == (tenant or GLOBAL)))
            n = result.rowcount
            self._bump(s)
        self._on_change()
        return bool(n)

    def version(self) -> int:
        with self._db.session() as s:
            return s.scalar(select(MetaRow.value).where(MetaRow.key == "words_version")) or 0

    def search(self, *, tenant: str | None, query: str | None = None, after_id: int = 0,
               limit: int = 50) -> list[tuple[int, Term]]:
        """One tenant's terms (``tenant=None``: the global list), by id, optionally those
        containing ``query``; page with ``after_id`` (the last id seen)."""
        with self._db.session() as s:
            q = select(WordRow).where(WordRow.tenant == (tenant or GLOBAL), WordRow.id > after_id)
            if query:
                q = q.where(WordRow.term.contains(query, autoescape=True))
            rows = s.scalars(q.order_by(WordRow.id).limit(limit)).all()
            return [(r.id, Term(r.term, r.category, r.severity, Action(r.action),
                                r.tenant or None, self._mode(r), r.allow, bool(r.initials)))
                    for r in rows]


_LISTS = ListRow.__table__
# Built once: every dial and every inbound call runs it (expanding binds take the IN lists).
_MATCH = select(_LISTS.c.kind, _LISTS.c.target, _LISTS.c.is_prefix, _LISTS.c.scope,
                _LISTS.c.reason, _LISTS.c.source, _LISTS.c.expires, _LISTS.c.note).where(
    _LISTS.c.kind.in_(bindparam("b_kinds", expanding=True)),
    _LISTS.c.scope.in_(bindparam("b_scopes", expanding=True)),
    (_LISTS.c.is_prefix.is_(False) & (_LISTS.c.target == bindparam("b_number")))
    | (_LISTS.c.is_prefix.is_(True)
       & _LISTS.c.target.in_(bindparam("b_prefixes", expanding=True))))


class SqlListStore:
    """Implements :class:`compliance.lists.ListStore` over the shared database."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def add_sync(self, entries: Sequence[ListEntry]) -> int:
        rows = [{"kind": e.kind.value, "scope": e.scope.key, "target": e.target,
                 "is_prefix": e.is_prefix, "reason": e.reason.value, "source": e.source,
                 "expires": _utc(e.expires), "note": e.note} for e in entries]
        with self._db.session() as s:
            for i in range(0, len(rows), BATCH):
                stmt = _insert(self._db, ListRow)
                stmt = stmt.on_conflict_do_update(
                    index_elements=["kind", "scope", "target", "is_prefix"],
                    set_={c: stmt.excluded[c] for c in ("reason", "source", "expires", "note")})
                s.execute(stmt, rows[i : i + BATCH])
        return len(rows)

    async def add(self, entries: Sequence[ListEntry]) -> int:
        return await asyncio.to_thread(self.add_sync, list(entries))

    def remove_sync(self, kind: ListKind, scope: Scope, target: str, is_prefix: bool) -> bool:
        with self._db.session() as s:
            result: Any = s.execute(delete(ListRow).where(
                ListRow.kind == kind.value, ListRow.scope == scope.key,
                ListRow.target == target, ListRow.is_prefix == is_prefix))
            n = result.rowcount
        return bool(n)

    async def remove(self, kind: ListKind, scope: Scope, target: str, is_prefix: bool) -> bool:
        return await asyncio.to_thread(self.remove_sync, kind, scope, target, is_prefix)

    @staticmethod
    def _entry(r: ListRow) -> ListEntry:
        return ListEntry(ListKind(r.kind), r.target, r.is_prefix, Scope.from_key(r.scope),
                         ListReason(r.reason), r.source, _aware(r.expires), r.note or "")

    def match_kinds_sync(self, kinds: Sequence[ListKind], e164: str, scopes: Sequence[Scope],
                         at: datetime) -> dict[ListKind, list[ListEntry]]:
        """Every kind in one Core query on one connection: each dial asks for its number's
        black and white entries, and ORM sessions cost more CPU than the lookup itself."""
        digits = e164.lstrip("+")
        prefixes = [digits[:i] for i in range(1, len(digits) + 1)]
        with self._db.engine.connect() as conn:
            rows = conn.execute(_MATCH, {
                "b_kinds": [k.value for k in kinds], "b_scopes": [sc.key for sc in scopes],
                "b_number": e164, "b_prefixes": prefixes}).all()
        out: dict[ListKind, list[ListEntry]] = {k: [] for k in kinds}
        for kind, target, is_prefix, scope, reason, source, expires, note in rows:
            e = ListEntry(ListKind(kind), target, is_prefix, Scope.from_key(scope),
                          ListReason(reason), source, _aware(expires), note or "")
            if e.active(at):
                out[e.kind].append(e)
        return out

    def match_sync(self, kind: ListKind, e164: str, scopes: Sequence[Scope],
                   at: datetime) -> list[ListEntry]:
        return self.match_kinds_sync([kind], e164, scopes, at)[kind]

    async def match(self, kind: ListKind, e164: str, scopes: Sequence[Scope],
                    at: datetime) -> list[ListEntry]:
        return await asyncio.to_thread(self.match_sync, kind, e164, scopes, at)

    async def match_kinds(self, kinds: Sequence[ListKind], e164: str, scopes: Sequence[Scope],
                          at: datetime) -> dict[ListKind, list[ListEntry]]:
        return await asyncio.to_thread(self.match_kinds_sync, list(kinds), e164, scopes, at)

    def _page(self, kind: ListKind | None, after_id: int) -> list[tuple[int, ListEntry]]:
        with self._db.session() as s:
            q = select(ListRow).where(ListRow.id > after_id).order_by(ListRow.id).limit(BATCH)
            if kind is not None:
                q = q.where(ListRow.kind == kind.value)
            return [(r.id, self._entry(r)) for r in s.scalars(q).all()]

    def search(self, *, tenant: str | None, kind: ListKind | None = None,
               campaign: str | None = None, query: str | None = None, after_id: int = 0,
               limit: int = 50) -> list[tuple[int, ListEntry]]:
        """Entries of one tenant (its own scope and its campaigns'; ``tenant=None``: the global
        scope), optionally of one campaign and whose number contains ``query``; page with
        ``after_id``."""
        if tenant is None:
            scope = ListRow.scope == Scope().key
        elif campaign is not None:
            scope = ListRow.scope == Scope(tenant, campaign).key
        else:
            scope = (ListRow.scope == Scope(tenant).key) | ListRow.scope.startswith(
                f"c:{tenant}:", autoescape=True)
        with self._db.session() as s:
            q = select(ListRow).where(scope, ListRow.id > after_id)
            if kind is not None:
                q = q.where(ListRow.kind == kind.value)
            if query:
                q = q.where(ListRow.target.contains(query.lstrip("+"), autoescape=True))
            rows = s.scalars(q.order_by(ListRow.id).limit(limit)).all()
            return [(r.id, self._entry(r)) for r in rows]

    async def export(self, kind: ListKind | None = None) -> AsyncIterator[ListEntry]:
        after = 0
        while True:
            page = await asyncio.to_thread(self._page, kind, after)
            if not page:
                return
            for _, e in page:
                yield e
            after = page[-1][0]
