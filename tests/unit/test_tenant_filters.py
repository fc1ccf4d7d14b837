"""No query without a tenant filter: a walk over every repository method.

Two checks. (1) Every public method of every repository either takes the tenant(s) it may touch,
writes rows that carry their own tenant, or is listed in ``EXEMPT`` with the reason it must see
across tenants; a new method that is none of these fails here. (2) Each tenant-taking method is
run for tenant ``acme`` on a database that also holds ``globex`` data, with every SQL statement
recorded: each SELECT, UPDATE or DELETE on a table that has a tenant column must constrain that
column in its WHERE clause, and nothing of globex's may come back.
"""

from __future__ import annotations

import asyncio
import inspect
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sqlalchemy import event

from compliance.lists import ListEntry, ListKind, Scope
from compliance.sql_store import SqlListStore, SqlWordStore
from compliance.words import Term
from console.audit import AuditLog, AuditQuery
from console.identity import Identity
from engine.cdr import CallQuery, CallRecord, CallRecords
from engine.cdr_stats import CallStatistics, StatsQuery
from flows.drafts import DraftStore, FlowTestStore
from flows.store import FlowStore
from speaker_id.store import Sample, Voiceprint, VoiceprintStore, generate_key, parse_key
from storage.db import Database, open_database
from storage.tenancy import Tenants
from tests.console_harness import FAST_HASHER

REPOSITORIES = [CallRecords, CallStatistics, FlowStore, DraftStore, FlowTestStore, SqlWordStore,
                SqlListStore, VoiceprintStore, AuditLog, Identity]
TENANT_PARAMS = {"tenant", "tenants", "tenant_id", "scopes", "scope"}
WRITES_CARRY_TENANT = {  # the rows themselves name their tenant (or scope)
    "CallRecords.save_many", "SqlWordStore.add_terms", "SqlListStore.add",
    "SqlListStore.add_sync", "AuditLog.record",
}
EXEMPT = {
    "CallRecords.unfinished_nodes": "cluster housekeeping: which nodes left calls open, "
                                    "across tenants (no call data)",
    "CallRecords.mark_orphans": "cluster housekeeping: closes one dead node's calls, whatever "
                                "their tenant",
    "FlowStore.route_owners": "finds which tenant owns a dialled number (the router's job)",
    "SqlWordStore.all_terms": "compiles every tenant's filter; WordRegistry.filter_for picks "
                              "the global terms plus one tenant's",
    "SqlWordStore.version": "a counter, no tenant data",
    "SqlListStore.export": "the operator's full CSV export (`ivr lists export`, CLI only)",
    "Identity.check_password": "authentication: by credential, before a tenant is known",
    "Identity.login": "authentication",
    "Identity.logout": "authentication",
    "Identity.session_principal": "authentication: the session names its user",
    "Identity.token_principal": "authentication: the token names its user",
    "Identity.ensure_tenant": "the tenant registry itself",
    "Identity.create_tenant": "the tenant registry itself",
    "Identity.tenant_exists": "the tenant registry itself",
    "Identity.has_users": "first start: are there any users at all",
    "Identity.bootstrap_admin": "first start",
    "Identity.create_user": "creates in the tenant it is given (a keyword argument)",
}
TENANT_COLUMNS = {"calls": "tenant", "flow_defs": "tenant", "flow_versions": "tenant",
                  "flow_routes": "tenant", "flow_drafts": "tenant", "flow_tests": "tenant",
                  "compliance_words": "tenant", "compliance_list_entries": "scope",
                  "speaker_voiceprints": "tenant_id", "speaker_samples": "tenant_id",
                  "speaker_consents": "tenant_id", "speaker_audit": "tenant_id",
                  "audit_log": "tenant", "users": "tenant"}


def _public_methods(cls: type) -> Iterator[tuple[str, Callable[..., Any]]]:
    for name, fn in inspect.getmembers(cls, inspect.isfunction):
        if not name.startswith("_") and fn.__qualname__.split(".")[0] == cls.__name__ or (
                not name.startswith("_") and any(fn.__qualname__.startswith(base.__name__)
                                                 for base in cls.__mro__[1:-1])):
            yield name, fn


def test_every_repository_method_takes_a_tenant_or_says_why_not() -> None:
    unclassified = []
    for cls in REPOSITORIES:
        for name, fn in _public_methods(cls):
            key = f"{cls.__name__}.{name}"
            params = set(inspect.signature(fn).parameters)
            if params & TENANT_PARAMS or key in WRITES_CARRY_TENANT or key in EXEMPT:
                continue
            unclassified.append(key)
    assert not unclassified, f"repository methods with no tenant filter: {unclassified}"


@contextmanager
def recorded(db: Database) -> Iterator[list[str]]:
    statements: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        statements.append(statement)

    event.listen(db.engine, "before_cursor_execute", record)
    try:
        yield statements
    finally:
        event.remove(db.engine, "before_cursor_execute", record)


def unfiltered(statements: list[str]) -> list[str]:
    """Statements that read or change a tenant table without its tenant column in WHERE.

    A write by primary key alone is the ORM saving a row the same method first read with the
    tenant filter, and passes only after such a read of that table."""
    bad = []
    read_filtered: set[str] = set()
    for sql in statements:
        flat = " ".join(sql.split())
        verb = flat.split(" ", 1)[0].upper()
        if verb not in ("SELECT", "UPDATE", "DELETE"):
            continue
        tables = set(re.findall(r"(?:FROM|JOIN|UPDATE)\s+(\w+)", flat, re.IGNORECASE))
        for table in tables & TENANT_COLUMNS.keys():
            where = flat.upper().split(" WHERE ", 1)[1] if " WHERE " in flat.upper() else ""
            if f"{table}.{TENANT_COLUMNS[table]}".upper() in where or \
                    f" {TENANT_COLUMNS[table].upper()} " in f" {where} ":
                if verb == "SELECT":
                    read_filtered.add(table)
                continue
            by_key = re.fullmatch(rf"{table.upper()}\.ID = \?", where.strip())
            if verb != "SELECT" and by_key and table in read_filtered:
                continue
            bad.append(flat[:200])
    return bad


FLOW = {"id": "f", "name": "F", "nodes": [{"id": "start", "type": "start"},
                                           {"id": "bye", "type": "hangup"}],
        "edges": [{"from": "start", "port": "next", "to": "bye"}]}


@pytest.fixture
def world(tmp_path: Path) -> dict[str, Any]:
    """Two tenants' worth of everything."""
    db = open_database(f"sqlite:///{tmp_path}/t.sqlite")
    key = parse_key(generate_key())
    repos: dict[str, Any] = {
        "calls": CallRecords(db), "stats": CallStatistics(db), "flows": FlowStore(db),
        "drafts": DraftStore(db), "tests": FlowTestStore(db), "words": SqlWordStore(db),
        "lists": SqlListStore(db), "voice": VoiceprintStore(db, key), "audit": AuditLog(db),
        "ids": Identity(db, hasher=FAST_HASHER), "db": db}
    for t in ("acme", "globex"):
        repos["calls"].save_many([CallRecord(f"sip-{t}", "inbound", "+861380000", "100",
                                             tenant=t, flow_id="f")])
        repos["flows"].publish(FLOW, tenant=t)
        repos["flows"].set_route(f"{t}-1", "f", tenant=t)
        repos["drafts"].save("f", FLOW, tenant=t, base_revision=None)
        repos["tests"].save("f", {"cases": []}, tenant=t, base_revision=None)
        repos["words"].add_terms([Term(f"{t}word", tenant=t)])
        repos["lists"].add_sync([ListEntry(ListKind.BLACK, "+8613800000001", False, Scope(t))])
        repos["voice"].save(t, "p", Voiceprint(np.ones(4, np.float32), "x", 1, 1.0, None),
                            consent_method="t", consent_text="t", actor="t", now=1.0)
        repos["voice"].add_sample(t, "p", "enroll", Sample(np.ones(4, np.float32),
                                                          np.zeros((2, 8), np.uint8)), 1.0)
        repos["voice"].audit(t, "p", "verify", actor="t", outcome="match", now=1.0)
        repos["audit"].record(actor="x", actor_kind="cli", tenant=t, action="a", resource="r")
        repos["ids"].ensure_tenant(t)
        repos["ids"].create_user(f"user-{t}", "long enough password", "client", tenant=t)
    return repos


A = Tenants.one("acme")


def calls_for(w: dict[str, Any]) -> dict[str, Callable[[], Any]]:
    """Each tenant-taking method, called for acme."""
    user = w["ids"].users(tenants=A)[0]
    globex_user = w["ids"].users(tenants=Tenants.one("globex"))[0]
    at = datetime.now(UTC)
    return {
        "CallRecords.list": lambda: w["calls"].list(tenants=A),
        "CallRecords.search": lambda: w["calls"].search(CallQuery(number="+861380000"),
                                                        tenants=A).records,
        "CallRecords.get": lambda: w["calls"].get("sip-globex", tenants=A),
        "CallStatistics.summary": lambda: _leaks_counts(w["stats"].summary(
            StatsQuery(since=0, until=4e9, bucket_s=86_400 * 400), tenants=A)),
        "FlowStore.publish": lambda: w["flows"].publish({**FLOW, "name": "G"}, tenant="acme"),
        "FlowStore.get": lambda: w["flows"].get("f", tenant="acme"),
        "FlowStore.list_flows": lambda: w["flows"].list_flows(tenant="acme"),
        "FlowStore.versions": lambda: w["flows"].versions("f", tenant="acme"),
        "FlowStore.flow_ids": lambda: w["flows"].flow_ids(tenant="acme"),
        "FlowStore.set_route": lambda: w["flows"].set_route("x", "f", tenant="acme"),
        "FlowStore.delete_route": lambda: w["flows"].delete_route("globex-1", tenant="acme"),
        "FlowStore.routes": lambda: w["flows"].routes(tenant="acme"),
        "FlowStore.resolve": lambda: w["flows"].resolve("globex-1", tenant="acme"),
        "DraftStore.get": lambda: w["drafts"].get("f", tenant="acme"),
        "DraftStore.list": lambda: w["drafts"].list(tenant="acme"),
        "DraftStore.save": lambda: w["drafts"].save("f", FLOW, tenant="acme", base_revision=1),
        "DraftStore.delete": lambda: w["drafts"].delete("f", tenant="acme"),
        "FlowTestStore.get": lambda: w["tests"].get("f", tenant="acme"),
        "FlowTestStore.save": lambda: w["tests"].save("f", {}, tenant="acme", base_revision=1),
        "FlowTestStore.delete": lambda: w["tests"].delete("f", tenant="acme"),
        "SqlWordStore.search": lambda: w["words"].search(tenant="acme"),
        "SqlWordStore.remove_term": lambda: w["words"].remove_term("globexword", "acme"),
        "SqlListStore.search": lambda: w["lists"].search(tenant="acme"),
        "SqlListStore.match": lambda: asyncio.run(w["lists"].match(
            ListKind.BLACK, "+8613800000001", Scope("acme").chain(), at)),
        "SqlListStore.match_sync": lambda: w["lists"].match_sync(
            ListKind.BLACK, "+8613800000001", Scope("acme").chain(), at),
        "SqlListStore.match_kinds": lambda: asyncio.run(w["lists"].match_kinds(
            (ListKind.BLACK, ListKind.WHITE), "+8613800000001", Scope("acme").chain(), at)),
        "SqlListStore.match_kinds_sync": lambda: w["lists"].match_kinds_sync(
            (ListKind.BLACK, ListKind.WHITE), "+8613800000001", Scope("acme").chain(), at),
        "SqlListStore.remove": lambda: asyncio.run(w["lists"].remove(
            ListKind.BLACK, Scope("acme"), "+8613800000009", False)),
        "SqlListStore.remove_sync": lambda: w["lists"].remove_sync(
            ListKind.BLACK, Scope("acme"), "+8613800000009", False),
        "VoiceprintStore.save": lambda: w["voice"].save(
            "acme", "q", Voiceprint(np.ones(4, np.float32), "x", 1, 1.0, None),
            consent_method="t", consent_text="t", actor="t", now=2.0),
        "VoiceprintStore.load": lambda: w["voice"].load("acme", "p"),
        "VoiceprintStore.voiceprints": lambda: w["voice"].voiceprints("acme"),
        "VoiceprintStore.add_sample": lambda: w["voice"].add_sample(
            "acme", "p", "verify", Sample(np.ones(4, np.float32), np.zeros((2, 8), np.uint8)),
            2.0),
        "VoiceprintStore.samples": lambda: w["voice"].samples("acme", "p"),
        "VoiceprintStore.audit": lambda: w["voice"].audit("acme", "p", "read", actor="t",
                                                          outcome="ok", now=2.0),
        "VoiceprintStore.audit_log": lambda: w["voice"].audit_log("acme"),
        "VoiceprintStore.consents": lambda: w["voice"].consents("acme", "p"),
        "VoiceprintStore.delete": lambda: w["voice"].delete("acme", "q", 3.0),
        "AuditLog.search": lambda: w["audit"].search(AuditQuery(), tenants=A).entries,
        "Identity.tenants": lambda: w["ids"].tenants(tenants=A),
        "Identity.users": lambda: w["ids"].users(tenants=A),
        "Identity.user": lambda: _absent(lambda: w["ids"].user(globex_user.id, tenants=A)),
        "Identity.user_by_name": lambda: _absent(
            lambda: w["ids"].user_by_name("user-globex", tenants=A)),
        "Identity.update_user": lambda: w["ids"].update_user(user.id, tenants=A,
                                                             display_name="x"),
        "Identity.set_password": lambda: w["ids"].set_password(user.id, "another long one",
                                                               tenants=A),
        "Identity.create_token": lambda: w["ids"].create_token(user.id, "t", tenants=A),
        "Identity.tokens": lambda: w["ids"].tokens(tenants=A),
        "Identity.revoke_token": lambda: _absent(
            lambda: w["ids"].revoke_token("nope", tenants=A)),
    }


def _leaks_counts(stats: Any) -> str:
    """Both tenants hold one call: a count of two is globex's call counted for acme."""
    n = sum(b.inbound + b.outbound for b in stats.buckets)
    return "globex counted" if n != 1 else repr(stats)


def _absent(fn: Callable[[], Any]) -> str:
    try:
        fn()
    except LookupError:
        return "not found"
    return "FOUND"


def test_every_tenant_query_filters_on_the_tenant(world: dict[str, Any]) -> None:
    calls = calls_for(world)
    taking = {f"{cls.__name__}.{n}" for cls in REPOSITORIES for n, fn in _public_methods(cls)
              if set(inspect.signature(fn).parameters) & TENANT_PARAMS
              } - EXEMPT.keys() - WRITES_CARRY_TENANT
    assert taking - set(calls) == set(), "run these methods in calls_for()"
    leaks, unfiltered_sql = [], []
    for key, call in calls.items():
        with recorded(world["db"]) as statements:
            result = call()
        if "globex" in repr(result) or result == "FOUND":
            leaks.append(f"{key} -> {result!r}"[:200])
        unfiltered_sql += [f"{key}: {s}" for s in unfiltered(statements)]
    assert not leaks, "\n".join(leaks)
    assert not unfiltered_sql, "\n".join(unfiltered_sql)


def test_the_sql_check_catches_a_query_without_the_filter(world: dict[str, Any]) -> None:
    """The recorder must be able to fail: a query over every tenant is reported."""
    with recorded(world["db"]) as statements:
        world["calls"].list(tenants=Tenants.every())
    assert unfiltered(statements)
