"""Flows, immutable published versions and number->flow routes in SQL (SQLite by default).

Publishing validates the flow, scans every prompt/SMS template with the injected word checker,
and stores the canonical JSON with its SHA-256. A version row is never updated (an ORM guard
refuses it), so a call that started on version 3 keeps running version 3 while version 4 goes
live for new calls. Republishing identical content returns the existing version. The console
manages flows through this same class; every row carries a tenant id.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import DateTime, Integer, String, Text, UniqueConstraint, event, func, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from flows.expr import ExprError
from flows.model import Flow
from flows.services import WordChecker
from flows.template import compile_template
from flows.validator import CompiledFlow, FlowInvalid, Problem, compile_flow
from storage.db import Base, Database

DEFAULT_TENANT = "default"
FALLBACK_ROUTE = "*"
# A dialled number or SIP user part: ASCII digits, letters and the few symbols dial plans use.
ROUTE_NUMBER_RE = re.compile(r"^[A-Za-z0-9+*#._\-]{1,32}$", re.ASCII)


def _now() -> datetime:
    return datetime.now(UTC)


class FlowRow(Base):
    __tablename__ = "flow_defs"
    __table_args__ = (UniqueConstraint("tenant", "flow_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    tenant: Mapped[str] = mapped_column(String(64), default=DEFAULT_TENANT, index=True)
    flow_id: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=_now)


class FlowVersionRow(Base):
    __tablename__ = "flow_versions"
    __table_args__ = (UniqueConstraint("tenant", "flow_id", "version"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    tenant: Mapped[str] = mapped_column(String(64), default=DEFAULT_TENANT, index=True)
    flow_id: Mapped[str] = mapped_column(String(64), index=True)
    version: Mapped[int] = mapped_column(Integer)
    content_hash: Mapped[str] = mapped_column(String(64))
    document: Mapped[str] = mapped_column(Text)
    published_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=_now)
    published_by: Mapped[str] = mapped_column(String(100), default="")


class FlowRouteRow(Base):
    __tablename__ = "flow_routes"
    __table_args__ = (UniqueConstraint("tenant", "number"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    tenant: Mapped[str] = mapped_column(String(64), default=DEFAULT_TENANT, index=True)
    number: Mapped[str] = mapped_column(String(64))
    flow_id: Mapped[str] = mapped_column(String(64))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=_now)


@event.listens_for(FlowVersionRow, "before_update")
def _versions_are_immutable(_mapper: Any, _conn: Any, target: FlowVersionRow) -> None:
    raise PermissionError(
        f"published flow {target.flow_id!r} version {target.version} is immutable"
    )


class PublishBlocked(ValueError):
    """Publishing refused by content security; ``problems`` name the nodes and fields."""

    def __init__(self, problems: list[Problem]) -> None:
        super().__init__("; ".join(str(p) for p in problems))
        self.problems = problems


class UnknownFlow(LookupError):
    pass


class BadRoute(ValueError):
    """A route number that no call could dial (empty, too long, spaces, punctuation...)."""


def check_route_number(number: str) -> None:
    if number != FALLBACK_ROUTE and not ROUTE_NUMBER_RE.match(number):
        shown = number if len(number) <= 40 else number[:40] + "..."
        raise BadRoute(
            f"route number {shown!r} is not valid: use the dialled number or SIP user part "
            "(1-32 characters of 0-9, A-Z, a-z and + * # . _ -), or '*' for the fallback"
        )


@dataclass(frozen=True, slots=True)
class PublishedFlow:
    tenant: str
    flow_id: str
    version: int
    content_hash: str
    document: dict[str, Any]
    published_at: datetime
    created: bool = False  # False when identical content was already published

    def compile(self) -> CompiledFlow:
        compiled = compile_flow(self.document)
        return CompiledFlow(
            compiled.flow,
            compiled.nodes,
            compiled.edges,
            compiled.start_id,
            self.version,
            self.content_hash,
        )


def content_problems(compiled: CompiledFlow, words: WordChecker) -> list[Problem]:
    """Blocked terms in the literal text of prompts and SMS templates (variables are not known
    until run time)."""
    out: list[Problem] = []
    for nid, node in compiled.nodes.items():
        for field, src in node.templates():
            try:
                tpl = compile_template(src)
            except ExprError:
                continue
            literal = " ".join(p for p in tpl.parts if isinstance(p, str))
            scan = words.scan(literal)
            if scan.blocked:
                hits = ", ".join(sorted({str(getattr(h, "term", h)) for h in scan.hits}))
                out.append(
                    Problem(nid, None, "blocked_words", f"{field} contains blocked term(s): {hits}")
                )
    return out


def _published(row: FlowVersionRow, created: bool = False) -> PublishedFlow:
    return PublishedFlow(
        row.tenant,
        row.flow_id,
        row.version,
        row.content_hash,
        json.loads(row.document),
        row.published_at,
        created,
    )


class FlowStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    def publish(
        self,
        document: dict[str, Any],
        *,
        tenant: str = DEFAULT_TENANT,
        words: WordChecker | None = None,
        by: str = "",
    ) -> PublishedFlow:
        # raises FlowInvalid with every problem; a subflow node must call a published flow
        compiled = compile_flow(document, known_flows=self.flow_ids(tenant=tenant))
        if words is not None:
            blocked = content_problems(compiled, words)
            if blocked:
                raise PublishBlocked(blocked)
        flow: Flow = compiled.flow
        digest = flow.content_hash()
        canonical = flow.canonical_json()
        with self.db.session() as s:
            latest = self._latest(s, tenant, flow.id)
            if latest is not None and latest.content_hash == digest:
                return _published(latest)
            row = s.scalar(
                select(FlowRow).where(FlowRow.tenant == tenant, FlowRow.flow_id == flow.id)
            )
            if row is None:
                s.add(FlowRow(tenant=tenant, flow_id=flow.id, name=flow.name))
            elif row.name != flow.name:
                row.name = flow.name
            version = FlowVersionRow(
                tenant=tenant,
                flow_id=flow.id,
                version=(latest.version + 1 if latest else 1),
                content_hash=digest,
                document=canonical,
                published_by=by,
                published_at=_now(),
            )
            s.add(version)
            s.flush()
            return _published(version, created=True)

    @staticmethod
    def _latest(s: Session, tenant: str, flow_id: str) -> FlowVersionRow | None:
        return s.scalar(
            select(FlowVersionRow)
            .where(FlowVersionRow.tenant == tenant, FlowVersionRow.flow_id == flow_id)
            .order_by(FlowVersionRow.version.desc())
            .limit(1)
        )

    def get(
        self, flow_id: str, version: int | None = None, *, tenant: str = DEFAULT_TENANT
    ) -> PublishedFlow:
        with self.db.session() as s:
            if version is None:
                row = self._latest(s, tenant, flow_id)
            else:
                row = s.scalar(
                    select(FlowVersionRow).where(
                        FlowVersionRow.tenant == tenant,
                        FlowVersionRow.flow_id == flow_id,
                        FlowVersionRow.version == version,
                    )
                )
            if row is None:
                what = f"version {version} of " if version is not None else ""
                raise UnknownFlow(f"{what}flow {flow_id!r} is not published (tenant {tenant!r})")
            return _published(row)

    def list_flows(self, *, tenant: str = DEFAULT_TENANT) -> list[dict[str, Any]]:
        with self.db.session() as s:
            stmt = (
                select(
                    FlowVersionRow.flow_id,
                    func.max(FlowVersionRow.version),
                    func.count(FlowVersionRow.id),
                    func.max(FlowVersionRow.published_at),
                )
                .where(FlowVersionRow.tenant == tenant)
                .group_by(FlowVersionRow.flow_id)
                .order_by(FlowVersionRow.flow_id)
            )
            names = dict(
                s.execute(
                    select(FlowRow.flow_id, FlowRow.name).where(FlowRow.tenant == tenant)
                ).all()
            )
            return [
                {
                    "flow_id": fid,
                    "name": names.get(fid, ""),
                    "latest_version": latest,
                    "versions": count,
                    "published_at": at,
                }
                for fid, latest, count, at in s.execute(stmt).all()
            ]

    def flow_ids(self, *, tenant: str = DEFAULT_TENANT) -> set[str]:
        """Ids of every flow the tenant has published (what subflow nodes may call)."""
        with self.db.session() as s:
            rows = s.scalars(
                select(FlowVersionRow.flow_id).where(FlowVersionRow.tenant == tenant).distinct()
            )
            return set(rows)

    def versions(self, flow_id: str, *, tenant: str = DEFAULT_TENANT) -> list[dict[str, Any]]:
        """Every published version of a flow, oldest first (without the documents)."""
        with self.db.session() as s:
            rows = s.execute(
                select(FlowVersionRow.version, FlowVersionRow.content_hash,
                       FlowVersionRow.published_at, FlowVersionRow.published_by)
                .where(FlowVersionRow.tenant == tenant, FlowVersionRow.flow_id == flow_id)
                .order_by(FlowVersionRow.version)
            ).all()
            return [{"version": v, "content_hash": h, "published_at": at, "published_by": by}
                    for v, h, at, by in rows]

    def delete_route(self, number: str, *, tenant: str = DEFAULT_TENANT) -> str | None:
        """Stop routing ``number``; returns the flow it went to (None: it was not routed)."""
        with self.db.session() as s:
            row = s.scalar(
                select(FlowRouteRow).where(
                    FlowRouteRow.tenant == tenant, FlowRouteRow.number == number
                )
            )
            if row is None:
                return None
            s.delete(row)
            return row.flow_id

    def set_route(self, number: str, flow_id: str, *, tenant: str = DEFAULT_TENANT) -> None:
        """Route a dialled number (``*`` = fallback) to the latest published version of a flow.
        Raises :class:`BadRoute` for a number no call could dial."""
        check_route_number(number)
        self.get(flow_id, tenant=tenant)  # must be published
        with self.db.session() as s:
            row = s.scalar(
                select(FlowRouteRow).where(
                    FlowRouteRow.tenant == tenant, FlowRouteRow.number == number
                )
            )
            if row is None:
                s.add(FlowRouteRow(tenant=tenant, number=number, flow_id=flow_id))
            else:
                row.flow_id = flow_id
                row.updated_at = _now()

    def routes(self, *, tenant: str = DEFAULT_TENANT) -> dict[str, str]:
        with self.db.session() as s:
            rows = s.execute(
                select(FlowRouteRow.number, FlowRouteRow.flow_id).where(
                    FlowRouteRow.tenant == tenant
                )
            ).all()
            return dict(rows)

    def route_owners(self, number: str) -> list[str]:
        """The tenants that route exactly ``number`` (a dialled number belongs to one tenant;
        more than one is a configuration error the caller reports)."""
        with self.db.session() as s:
            rows = s.scalars(
                select(FlowRouteRow.tenant).where(FlowRouteRow.number == number)
                .order_by(FlowRouteRow.tenant)
            ).all()
            return list(rows)

    def resolve(self, number: str, *, tenant: str = DEFAULT_TENANT) -> PublishedFlow | None:
        """The flow version a new call to ``number`` runs: exact route, else ``*``, else None."""
        routes = self.routes(tenant=tenant)
        flow_id = routes.get(number) or routes.get(FALLBACK_ROUTE)
        return None if flow_id is None else self.get(flow_id, tenant=tenant)


__all__ = [
    "BadRoute",
    "FlowInvalid",
    "FlowStore",
    "PublishBlocked",
    "PublishedFlow",
    "UnknownFlow",
    "content_problems",
]
