"""Sensitive words and black/white lists as the console and ``ivr words|lists`` change them.

The operator's global list (``tenant=None``) applies to every tenant and only the operator's
staff may change it; a tenant's own entries apply on top. Imports report every bad row with its
line and import the rest; a client's import cannot write another tenant's scope (such rows are
bad rows too).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from compliance.listio import ListImportReport, import_csv, parse_row
from compliance.lists import ListEntry, ListKind, ListReason, ListStore, Scope
from compliance.numbers import InvalidNumber
from compliance.service import ComplianceService, Decision
from compliance.sql_store import SqlListStore, SqlWordStore
from compliance.wordlist import RowError, WordRegistry, parse_terms
from compliance.words import Action, ScanResult, Term, TermError
from console.audit import GLOBAL_TENANT, AuditLog
from console.services.base import Actor, Audited, Invalid, Missing

SCAN_FALLBACK_LIMIT = 200_000  # entries a store without search (Redis) is scanned for


def _term_dict(t: Term) -> dict[str, Any]:
    return {"term": t.text, "category": t.category, "severity": t.severity,
            "action": t.action.value, "tenant": t.tenant, "pinyin": t.pinyin, "allow": t.allow}


class WordOps(Audited):
    def __init__(self, store: SqlWordStore, registry: WordRegistry, audit: AuditLog) -> None:
        super().__init__(audit)
        self.store = store
        self.registry = registry

    def search(self, tenant: str | None, query: str | None, after_id: int,
               limit: int) -> list[tuple[int, Term]]:
        return self.store.search(tenant=tenant, query=query, after_id=after_id, limit=limit)

    def add(self, actor: Actor, terms: list[Term]) -> int:
        n = self.store.add_terms(terms)
        for t in terms:
            self._audit(actor, tenant=t.tenant or GLOBAL_TENANT, action="word.add",
                        resource=f"word:{t.text}", after=_term_dict(t))
        return n

    def remove(self, actor: Actor, text: str, tenant: str | None) -> None:
        if not self.store.remove_term(text, tenant):
            raise Missing(f"no term {text!r} in {'the global list' if tenant is None else tenant}")
        self._audit(actor, tenant=tenant or GLOBAL_TENANT, action="word.remove",
                    resource=f"word:{text}", before={"term": text, "tenant": tenant})

    def import_text(self, actor: Actor, text: str, *, fmt: str, defaults: Term,
                    allowed_tenants: set[str | None] | None = None
                    ) -> tuple[int, list[RowError]]:
        """Parse a CSV/TXT list; rows naming a tenant outside ``allowed_tenants`` are bad
        rows. Returns (imported, bad rows)."""
        terms, errors = parse_terms(text, fmt=fmt, defaults=defaults)
        if allowed_tenants is not None:
            kept = []
            for t in terms:
                if t.tenant in allowed_tenants:
                    kept.append(t)
                else:  # the parser keeps no line per term: name the term instead
                    errors.append(RowError(0, f"tenant: term {t.text!r} names tenant "
                                              f"{t.tenant or 'global'!r}, not a list you may "
                                              "write"))
            terms = kept
        n = self.store.add_terms(terms) if terms else 0
        tenants = sorted({t.tenant or GLOBAL_TENANT for t in terms})
        for tenant in tenants:
            mine = [t for t in terms if (t.tenant or GLOBAL_TENANT) == tenant]
            self._audit(actor, tenant=tenant, action="word.import", resource="words",
                        after=[_term_dict(t) for t in mine],
                        detail={"imported": len(mine), "bad_rows": len(errors)})
        return n, errors

    async def test(self, text: str, tenant: str) -> ScanResult:
        """Scan like a call would (global words + the tenant's), compiling off the loop."""
        registry = self.registry
        return await asyncio.to_thread(lambda: registry.filter_for(tenant).scan(text))


def make_term(text: str, *, category: str = "custom", severity: int = 3, action: str = "block",
              tenant: str | None, pinyin: bool = False, allow: bool = False) -> Term:
    try:
        return Term(text, category, severity, Action(action), tenant, pinyin, allow)
    except TermError as e:
        raise Invalid(str(e), str(e).split(":", 1)[0] if ":" in str(e) else "term") from e
    except ValueError as e:
        raise Invalid(f"action: {action!r} is not block, mask or flag", "action") from e


@dataclass(frozen=True, slots=True)
class ListSpec:
    """What an add/remove names: a number, prefix (``+86168*``) or range, in one scope."""

    number: str
    kind: ListKind
    tenant: str | None  # None: global
    campaign: str | None = None
    reason: ListReason = ListReason.OTHER
    source: str = ""
    expires: datetime | None = None


def _entry_dict(e: ListEntry) -> dict[str, Any]:
    return {"kind": e.kind.value, "target": e.target, "is_prefix": e.is_prefix,
            "scope": e.scope.key, "reason": e.reason.value, "source": e.source,
            "expires": e.expires.isoformat() if e.expires else None}


class ListOps(Audited):
    def __init__(self, store: ListStore, service: ComplianceService, audit: AuditLog,
                 region: str) -> None:
        super().__init__(audit)
        self.store = store
        self.service = service
        self.region = region

    def entries(self, spec: ListSpec) -> list[ListEntry]:
        try:
            scope = Scope(spec.tenant, spec.campaign)
            default = ListEntry(spec.kind, "", False, scope, spec.reason, spec.source,
                                spec.expires)
            return parse_row({"number": spec.number}, default, self.region)
        except InvalidNumber as e:
            raise Invalid(f"number: {e}", "number") from e
        except ValueError as e:
            raise Invalid(str(e), "number" if "number" in str(e) else "campaign") from e

    async def add(self, actor: Actor, spec: ListSpec) -> list[ListEntry]:
        entries = self.entries(spec)
        await self.store.add(entries)
        for e in entries:
            self._audit(actor, tenant=spec.tenant or GLOBAL_TENANT, action="list.add",
                        resource=f"list:{e.kind}:{e.scope.key}:{e.target}",
                        after=_entry_dict(e))
        return entries

    async def remove(self, actor: Actor, spec: ListSpec) -> int:
        removed = 0
        for e in self.entries(spec):
            if await self.store.remove(e.kind, e.scope, e.target, e.is_prefix):
                removed += 1
                self._audit(actor, tenant=spec.tenant or GLOBAL_TENANT, action="list.remove",
                            resource=f"list:{e.kind}:{e.scope.key}:{e.target}",
                            before=_entry_dict(e))
        if not removed:
            raise Missing(f"{spec.number} is not on the {spec.kind} list of that scope")
        return removed

    async def import_lines(self, actor: Actor, lines: Iterable[str], default: ListEntry,
                           allowed_tenants: set[str | None] | None = None) -> ListImportReport:
        """Stream a CSV (or bare list) in; rows for a tenant outside ``allowed_tenants`` are
        reported as bad rows, like any other bad row."""

        def refuse(e: ListEntry) -> str | None:
            if allowed_tenants is not None and e.scope.tenant not in allowed_tenants:
                return f"tenant: {e.scope.tenant or 'global'!r} is not a scope you may write"
            return None

        report = await import_csv(self.store, lines, default=default, region=self.region,
                                  refuse=refuse)
        self._audit(actor, tenant=default.scope.tenant or GLOBAL_TENANT, action="list.import",
                    resource=f"list:{default.kind}",
                    detail={"imported": report.imported, "bad_rows": len(report.errors)})
        return report

    async def search(self, tenant: str | None, *, kind: ListKind | None, campaign: str | None,
                     query: str | None, after_id: int, limit: int
                     ) -> list[tuple[int, ListEntry]]:
        if isinstance(self.store, SqlListStore):
            store = self.store
            return await asyncio.to_thread(
                lambda: store.search(tenant=tenant, kind=kind, campaign=campaign, query=query,
                                     after_id=after_id, limit=limit))
        # A store without search (Redis): scan its export, bounded, in a stable order.
        wanted = Scope(tenant, campaign).key if campaign or tenant is None else None
        found: list[tuple[int, ListEntry]] = []
        seen = 0
        async for e in self.store.export(kind):
            seen += 1
            if seen > SCAN_FALLBACK_LIMIT:
                break
            if wanted is not None and e.scope.key != wanted:
                continue
            if wanted is None and e.scope.tenant != tenant:
                continue
            if query and query.lstrip("+") not in e.target:
                continue
            found.append((seen, e))
        return [f for f in found if f[0] > after_id][:limit]

    async def check(self, number: str, purpose: str, tenant: str, campaign: str | None,
                    at: datetime) -> Decision:
        try:
            return await self.service.check(number, purpose, tenant, campaign, at)
        except ValueError as e:
            raise Invalid(str(e), "at") from e


def default_entry(kind: str, tenant: str | None, *, campaign: str | None = None,
                  reason: str = "other", source: str = "",
                  expires: datetime | None = None) -> ListEntry:
    try:
        return ListEntry(ListKind(kind), "", False, Scope(tenant, campaign), ListReason(reason),
                         source, expires)
    except ValueError as e:
        field = "kind" if "ListKind" in repr(e) or kind not in ("black", "white") else "reason"
        raise Invalid(str(e), field) from e
