"""Sensitive words and black/white lists as the console and ``ivr words|lists`` change them.

The operator's global list (``tenant=None``) applies to every tenant and only the operator's
staff may change it; a tenant's own entries apply on top. Imports report every bad row with its
line and import the rest; a client's import cannot write another tenant's scope (such rows are
bad rows too).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from compliance.listio import ListImportReport, import_table, parse_row
from compliance.lists import ListEntry, ListKind, ListReason, ListStore, Scope
from compliance.numbers import InvalidNumber
from compliance.pinyin import PinyinMode
from compliance.service import ComplianceService, Decision
from compliance.sql_store import SqlListStore, SqlWordStore
from compliance.wordlist import TermImport, WordRegistry, read_terms
from compliance.words import Action, ScanResult, Term, TermError
from console.audit import GLOBAL_TENANT, AuditLog
from console.services.base import Actor, Audited, Invalid, Missing
from tabular import CellError, RowError
from tabular.table import TableInput

SCAN_FALLBACK_LIMIT = 200_000  # entries a store without search (Redis) is scanned for


def _term_dict(t: Term) -> dict[str, Any]:
    return {"term": t.text, "category": t.category, "severity": t.severity,
            "action": t.action.value, "tenant": t.tenant,
            "pinyin": t.pinyin.value if t.pinyin else None, "allow": t.allow,
            "initials": t.initials}


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

    def import_file(self, actor: Actor, source: TableInput, *, fmt: str, defaults: Term,
                    allowed_tenants: set[str | None] | None = None, name: str | None = None,
                    encoding: str | None = None, sheet: str | None = None) -> TermImport:
        """Read a word list (CSV/TSV/.xlsx with a header, or TXT); rows naming a tenant
        outside ``allowed_tenants`` are bad rows. Raises :class:`tabular.TableError` for a
        file that cannot be read at all."""
        got = read_terms(source, defaults=defaults, fmt=fmt, name=name, encoding=encoding,
                         sheet=sheet)
        if allowed_tenants is not None:
            kept = []
            for t in got.terms:
                if t.tenant in allowed_tenants:
                    kept.append(t)
                else:  # terms keep no line: name the term instead
                    got.errors.append(RowError(
                        got.info.name if got.info else "", 0, "tenant", t.tenant or "global",
                        f"term {t.text!r} is in a list you may not write", "tenant"))
            got.terms = kept
        terms = got.terms
        if terms:
            self.store.add_terms(terms)
        tenants = sorted({t.tenant or GLOBAL_TENANT for t in terms})
        for tenant in tenants:
            mine = [t for t in terms if (t.tenant or GLOBAL_TENANT) == tenant]
            self._audit(actor, tenant=tenant, action="word.import", resource="words",
                        after=[_term_dict(t) for t in mine],
                        detail={"imported": len(mine), "bad_rows": len(got.errors)})
        return got

    async def test(self, text: str, tenant: str) -> ScanResult:
        """Scan like a call would (global words + the tenant's), compiling off the loop."""
        registry = self.registry
        return await asyncio.to_thread(lambda: registry.filter_for(tenant).scan(text))


def make_term(text: str, *, category: str = "custom", severity: int = 3, action: str = "block",
              tenant: str | None, pinyin: str | None = None, allow: bool = False,
              initials: bool = False) -> Term:
    try:
        return Term(text, category, severity, Action(action), tenant,
                    PinyinMode(pinyin) if pinyin else None, allow, initials)
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
        except CellError as e:
            raise Invalid(str(e), e.column) from e
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

    async def import_table(self, actor: Actor, source: TableInput, default: ListEntry,
                           allowed_tenants: set[str | None] | None = None, *,
                           name: str | None = None, encoding: str | None = None,
                           sheet: str | None = None,
                           on_error: Callable[[RowError], object] | None = None,
                           ) -> ListImportReport:
        """Stream a list file (CSV/TSV/text in any encoding, .xlsx) in; rows for a tenant
        outside ``allowed_tenants`` are bad rows like any other. Raises
        :class:`tabular.TableError` for a file that cannot be read at all."""

        def refuse(e: ListEntry) -> str | None:
            if allowed_tenants is not None and e.scope.tenant not in allowed_tenants:
                return f"{e.scope.tenant or 'global'!r} is not a scope you may write"
            return None

        report = await import_table(self.store, source, default=default, region=self.region,
                                    name=name, encoding=encoding, sheet=sheet,
                                    on_error=on_error, refuse=refuse)
        self._audit(actor, tenant=default.scope.tenant or GLOBAL_TENANT, action="list.import",
                    resource=f"list:{default.kind}",
                    detail={"imported": report.imported, "bad_rows": report.error_count})
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
