"""Sensitive words, black/white lists and voiceprints.

Scope rules: ``global=true`` is the operator's list (staff with ``*.write_global`` change it;
everyone's calls obey it); otherwise the request's tenant. A client never names another tenant.
"""

from __future__ import annotations

import asyncio
from dataclasses import asdict
from datetime import UTC, datetime
from typing import Any

from compliance.lists import ListEntry, ListKind, ListReason
from compliance.words import Term
from console.api import compliance_schemas as cs
from console.api import schemas as s
from console.api.admin import actor
from console.api.context import services
from console.api.errors import ApiError
from console.api.routing import Api, ApiRequest, PathParam
from console.services.compliance import ListOps, ListSpec, WordOps, default_entry, make_term
from console.services.voiceprints import VoiceprintOps
from storage.paging import decode_cursor, encode_cursor
from tabular import RowError, TableError

PERSON = {"person_id": PathParam(str, r"^[^/\x00-\x1f]{1,128}$", 128)}
TABLE_TYPES = ("text/csv", "text/plain", "text/tab-separated-values",
               "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
               "application/octet-stream")
IMPORT_ERRORS_SHOWN = 1_000  # a response lists this many bad rows; error_count has them all


def _words(req: ApiRequest) -> WordOps:
    ops = services(req).words
    if ops is None:
        raise ApiError(409, "not_configured", "word lists are not configured here")
    return ops


def _lists(req: ApiRequest) -> ListOps:
    ops = services(req).lists
    if ops is None:
        raise ApiError(409, "not_configured", "black/white lists are not configured here")
    return ops


def _voiceprints(req: ApiRequest) -> VoiceprintOps:
    ops = services(req).voiceprints
    if ops is None:
        raise ApiError(409, "not_configured", "voiceprints are not configured here")
    return ops


def scope_tenant(req: ApiRequest, global_: bool, *, write: str | None = None) -> str | None:
    """The list scope a request names: None for the operator's global list, else a tenant."""
    if global_:
        if write is not None:
            req.who.require(f"{write}.write_global")
        return None
    return req.who.tenant_for(req.query.tenant if req.query is not None else None)


def word_out(t: Term, row_id: int | None = None) -> cs.WordOut:
    return cs.WordOut(id=row_id, term=t.text, category=t.category, severity=t.severity,
                     action=t.action.value, tenant=t.tenant,
                     pinyin=t.pinyin.value if t.pinyin else None, allow=t.allow,
                     initials=t.initials)


def entry_out(e: ListEntry, row_id: int | None = None) -> cs.ListEntryOut:
    return cs.ListEntryOut(id=row_id, kind=e.kind.value,
                          number=f"+{e.target}*" if e.is_prefix else e.target,
                          is_prefix=e.is_prefix, scope=e.scope.key, tenant=e.scope.tenant,
                          campaign=e.scope.campaign, reason=e.reason.value, source=e.source,
                          expires=e.expires)


def _after(cursor: str | None) -> int:
    return decode_cursor(cursor, int)[0] if cursor else 0


def import_out(imported: int, rows: int, errors: list[RowError],
                error_count: int) -> cs.ImportOut:
    return cs.ImportOut(imported=imported, rows=rows, error_count=error_count, errors=[
        cs.RowErrorOut(line=e.line, column=e.column, value=e.value,
                      message=f"{e.column}: {e.reason}" if e.column else e.reason)
        for e in errors[:IMPORT_ERRORS_SHOWN]])


def _table_error(e: TableError) -> ApiError:
    return ApiError(422, "invalid", str(e), "body")


def register(api: Api) -> None:
    # --- words ---------------------------------------------------------------------------------

    @api.op("GET", "/api/words", summary="Sensitive words of a tenant or the global list",
            tag="words", permission="words.read", query=cs.WordQuery, response=cs.WordPageOut)
    async def list_words(req: ApiRequest) -> cs.WordPageOut:
        q: cs.WordQuery = req.query
        if q.global_ and not req.who.is_operator:
            raise ApiError(403, "forbidden", "the operator's global list is not shown to "
                                             "clients (it still applies)", "global")
        tenant = scope_tenant(req, q.global_)
        rows = await asyncio.to_thread(_words(req).search, tenant, q.q, _after(q.cursor),
                                       q.limit + 1)
        items = [word_out(t, i) for i, t in rows[:q.limit]]
        more = len(rows) > q.limit
        return cs.WordPageOut(items=items,
                             next_cursor=encode_cursor(rows[q.limit - 1][0]) if more else None)

    @api.op("POST", "/api/words", summary="Add (or update) a term", tag="words",
            permission="words.write", query=s.TenantQuery, body=cs.WordIn, response=cs.WordOut,
            status=201)
    async def add_word(req: ApiRequest) -> cs.WordOut:
        b: cs.WordIn = req.body
        tenant = scope_tenant(req, b.global_, write="words")
        term = make_term(b.term, category=b.category, severity=b.severity, action=b.action,
                         tenant=tenant, pinyin=b.pinyin, allow=b.allow, initials=b.initials)
        await asyncio.to_thread(_words(req).add, actor(req), [term])
        return word_out(term)

    @api.op("DELETE", "/api/words", summary="Remove a term", tag="words",
            permission="words.write", query=cs.WordRemoveQuery, status=204)
    async def remove_word(req: ApiRequest) -> None:
        q: cs.WordRemoveQuery = req.query
        tenant = scope_tenant(req, q.global_, write="words")
        await asyncio.to_thread(_words(req).remove, actor(req), q.term, tenant)

    @api.op("POST", "/api/words/import", summary="Import a CSV (term,category,...) or TXT "
            "list; bad rows are reported, the rest imported", tag="words",
            permission="words.write", query=cs.WordImportQuery, raw_body=TABLE_TYPES,
            response=cs.ImportOut)
    async def import_words(req: ApiRequest) -> cs.ImportOut:
        q: cs.WordImportQuery = req.query
        tenant = scope_tenant(req, q.global_, write="words")
        defaults = make_term("x", category=q.category, severity=q.severity, action=q.action,
                             tenant=tenant, pinyin=q.pinyin)
        allowed: set[str | None] | None = None if req.who.can("words.write_global") else {
            tenant}
        try:
            got = await asyncio.to_thread(
                _words(req).import_file, actor(req), req.raw, fmt=q.format, defaults=defaults,
                allowed_tenants=allowed, name="<upload>", encoding=q.encoding, sheet=q.sheet)
        except TableError as e:
            raise _table_error(e) from e
        return import_out(len(got.terms), got.rows, got.errors, len(got.errors))

    @api.op("POST", "/api/words/test", summary="Scan a sentence like a call would (global "
            "words plus the tenant's)", tag="words", permission="words.read",
            query=s.TenantQuery, body=cs.WordTestIn, response=cs.WordTestOut)
    async def test_words(req: ApiRequest) -> cs.WordTestOut:
        result = await _words(req).test(req.body.text, req.who.tenant_for(req.query.tenant))
        return cs.WordTestOut(blocked=result.blocked, masked_text=result.masked_text, hits=[
            cs.HitOut(start=h.start, end=h.end, term=h.term, matched=h.matched,
                     category=h.category, severity=h.severity, action=h.action.value,
                     via_pinyin=h.via_pinyin) for h in result.hits])

    # --- lists ---------------------------------------------------------------------------------

    @api.op("GET", "/api/lists", summary="Black/white list entries of a tenant or the "
            "global list", tag="lists", permission="lists.read", query=cs.ListQueryIn,
            response=cs.ListPageOut)
    async def list_entries(req: ApiRequest) -> cs.ListPageOut:
        q: cs.ListQueryIn = req.query
        if q.global_ and not req.who.is_operator:
            raise ApiError(403, "forbidden", "the operator's global list is not shown to "
                                             "clients (it still applies)", "global")
        tenant = scope_tenant(req, q.global_)
        if q.global_ and q.campaign:
            raise ApiError(422, "invalid", "campaign: the global list has no campaigns",
                           "campaign")
        rows = await _lists(req).search(tenant, kind=ListKind(q.kind) if q.kind else None,
                                        campaign=q.campaign, query=q.q,
                                        after_id=_after(q.cursor), limit=q.limit + 1)
        more = len(rows) > q.limit
        return cs.ListPageOut(items=[entry_out(e, i) for i, e in rows[:q.limit]],
                             next_cursor=encode_cursor(rows[q.limit - 1][0]) if more else None)

    def spec(req: ApiRequest, number: str, kind: str, global_: bool, campaign: str | None,
             **extra: Any) -> ListSpec:
        tenant = scope_tenant(req, global_, write="lists")
        if tenant is None and campaign:
            raise ApiError(422, "invalid", "campaign: the global list has no campaigns",
                           "campaign")
        return ListSpec(number, ListKind(kind), tenant, campaign, **extra)

    @api.op("POST", "/api/lists", summary="Add a number, '+86168*' prefix or 'LOW..HIGH' "
            "range", tag="lists", permission="lists.write", query=s.TenantQuery,
            body=cs.ListAddIn, response=cs.ListEntriesOut, status=201)
    async def add_entry(req: ApiRequest) -> cs.ListEntriesOut:
        b: cs.ListAddIn = req.body
        expires = b.expires.replace(tzinfo=b.expires.tzinfo or UTC) if b.expires else None
        entries = await _lists(req).add(actor(req), spec(
            req, b.number, b.kind, b.global_, b.campaign, reason=ListReason(b.reason),
            source=b.source, expires=expires))
        return cs.ListEntriesOut(items=[entry_out(e) for e in entries])

    @api.op("DELETE", "/api/lists", summary="Remove a number or prefix from one scope",
            tag="lists", permission="lists.write", query=cs.ListRemoveQuery,
            response=cs.RemovedOut)
    async def remove_entry(req: ApiRequest) -> cs.RemovedOut:
        q: cs.ListRemoveQuery = req.query
        n = await _lists(req).remove(actor(req), spec(req, q.number, q.kind, q.global_,
                                                      q.campaign))
        return cs.RemovedOut(removed=n)

    @api.op("POST", "/api/lists/import", summary="Import a CSV (number,list,tenant,campaign,"
            "reason,source,expires) or a bare list; bad rows reported, the rest imported",
            tag="lists", permission="lists.write", query=cs.ListImportQuery, raw_body=TABLE_TYPES,
            response=cs.ImportOut)
    async def import_entries(req: ApiRequest) -> cs.ImportOut:
        q: cs.ListImportQuery = req.query
        tenant = scope_tenant(req, q.global_, write="lists")
        default = default_entry(q.kind, tenant, campaign=q.campaign, reason=q.reason,
                                source=q.source)
        allowed = None if req.who.can("lists.write_global") else {tenant}
        try:
            report = await _lists(req).import_table(actor(req), req.raw, default, allowed,
                                                    name="<upload>", encoding=q.encoding,
                                                    sheet=q.sheet)
        except TableError as e:
            raise _table_error(e) from e
        return import_out(report.imported, report.rows, report.errors, report.error_count)

    @api.op("POST", "/api/lists/check", summary="Would we dial this number now? Every "
            "reason", tag="lists", permission="lists.read", query=s.TenantQuery,
            body=cs.CheckIn, response=cs.DecisionOut)
    async def check_number(req: ApiRequest) -> cs.DecisionOut:
        b: cs.CheckIn = req.body
        at = b.at or datetime.now(UTC)
        if at.tzinfo is None:
            raise ApiError(422, "invalid", "at: needs a UTC offset, e.g. 2026-01-01T10:00+08:00",
                           "body.at")
        d = await _lists(req).check(b.number, b.purpose, req.who.tenant_for(req.query.tenant),
                                    b.campaign, at)
        return cs.DecisionOut(allowed=d.allowed, number=d.number, vip=d.vip,
                             retry_at=d.retry_at,
                             reasons=[cs.ReasonOut(code=r.code, message=r.message)
                                      for r in d.reasons])

    # --- voiceprints ---------------------------------------------------------------------------

    @api.op("GET", "/api/voiceprints", summary="Enrolled people (never the voiceprint "
            "itself)", tag="voiceprints", permission="voiceprints.read",
            query=cs.VoiceprintQuery, response=cs.VoiceprintList)
    async def list_voiceprints(req: ApiRequest) -> cs.VoiceprintList:
        q: cs.VoiceprintQuery = req.query
        rows = await _voiceprints(req).enrolled(req.who.tenant_for(q.tenant), after=q.after,
                                                limit=q.limit, query=q.q)
        return cs.VoiceprintList(items=[cs.VoiceprintOut(**asdict(r)) for r in rows])

    @api.op("DELETE", "/api/voiceprints/{person_id}", summary="Erase a person's voiceprint "
            "(consent withdrawn; the access log stays)", tag="voiceprints",
            permission="voiceprints.delete", query=s.TenantQuery, status=204, params=PERSON)
    async def delete_voiceprint(req: ApiRequest) -> None:
        await _voiceprints(req).delete(actor(req), req.who.tenant_for(req.query.tenant),
                                       req.path["person_id"])

    @api.op("GET", "/api/voiceprints/{person_id}/audit", summary="Who used this voiceprint, "
            "when, with what outcome", tag="voiceprints", permission="voiceprints.read",
            query=s.TenantQuery, response=cs.VoiceprintAccessList, params=PERSON)
    async def voiceprint_access(req: ApiRequest) -> cs.VoiceprintAccessList:
        rows = await _voiceprints(req).access_log(req.who.tenant_for(req.query.tenant),
                                                  req.path["person_id"])
        return cs.VoiceprintAccessList(items=[
            cs.VoiceprintAccessOut(person_id=e.person_id, action=e.action, actor=e.actor,
                                  outcome=e.outcome, at=e.at) for e in rows])

