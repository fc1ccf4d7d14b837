"""``ivr words ...`` and ``ivr lists ...``: ops commands over the persisted compliance state.

Words and list entries live in the database at ``storage.url`` (SQLite by default), or the lists
in Redis when ``compliance.redis_url`` is set, so an import in one process is what a check in the
next one sees. :mod:`app.compliance_setup` builds the same services for the engine.
"""

from __future__ import annotations

import asyncio
import csv
import json
import sys
from collections.abc import Iterator
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer

from app.cli.console_cli import cli_actor
from app.compliance_setup import open_compliance, open_list_store, word_registry
from app.config import Settings
from compliance.listio import CSV_FIELDS, entry_row
from compliance.lists import ListEntry, ListKind, ListReason, Scope
from compliance.service import Decision
from compliance.sql_store import SqlWordStore
from compliance.wordlist import export_terms
from compliance.words import Action, Term, TermError
from console.services.base import Invalid, Missing
from console.services.compliance import ListSpec
from storage.db import open_database

words_app = typer.Typer(help="Sensitive words: check text, import and export lists.",
                        no_args_is_help=True)
lists_app = typer.Typer(help="Black/white lists: import, export, add, remove, check a number.",
                        no_args_is_help=True)


def register(app: typer.Typer) -> None:
    app.add_typer(words_app, name="words")
    app.add_typer(lists_app, name="lists")


def list_ops(settings: Settings, db: Any) -> Any:
    from app.console_setup import list_ops as build  # noqa: PLC0415 - keep `ivr` quick to start

    return build(settings, db)


def word_ops(settings: Settings, db: Any) -> Any:
    from app.console_setup import word_ops as build  # noqa: PLC0415

    return build(settings, db)


def _settings(ctx: typer.Context) -> Settings:
    obj = ctx.find_root().obj
    return obj if isinstance(obj, Settings) else Settings()




@words_app.command("check")
def words_check(
    ctx: typer.Context,
    text: str,
    tenant: Annotated[str | None, typer.Option(help="tenant list on top of the global one")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="machine-readable output")] = False,
) -> None:
    """Scan TEXT: every hit with span, term, category, severity, action; exit 1 when blocked."""
    result = word_registry(_settings(ctx)).filter_for(tenant).scan(text)
    if as_json:
        typer.echo(json.dumps({"blocked": result.blocked, "masked_text": result.masked_text,
                               "hits": [asdict(h) for h in result.hits]}, ensure_ascii=False))
    else:
        typer.echo(f"{'start':>5} {'end':>5}  {'term':<16} {'category':<10} sev action  matched")
        for h in result.hits:
            typer.echo(f"{h.start:>5} {h.end:>5}  {h.term:<16} {h.category:<10} {h.severity:>3} "
                       f"{h.action.value:<7} {h.matched!r}{' (pinyin)' if h.via_pinyin else ''}")
        typer.echo(f"masked: {result.masked_text}")
        typer.echo("BLOCKED" if result.blocked else "ok")
    raise typer.Exit(1 if result.blocked else 0)


@words_app.command("import")
def words_import(
    ctx: typer.Context,
    file: Path,
    *,
    tenant: Annotated[str | None, typer.Option(help="default tenant (else global)")] = None,
    category: Annotated[str, typer.Option(help="default category for TXT lines")] = "custom",
    severity: Annotated[int, typer.Option(help="default severity 1..5")] = 3,
    action: Annotated[str, typer.Option(help="default action: block, mask, flag")] = "block",
    fmt: Annotated[str, typer.Option("--format", help="auto, csv or txt")] = "auto",
) -> None:
    """Import a CSV (header ``term,category,...``) or TXT (one term per line) word list."""
    try:
        defaults = Term("x", category, severity, Action(action), tenant)
    except (TermError, ValueError) as e:
        typer.echo(f"error: {e}", err=True)
        raise typer.Exit(2) from e
    settings = _settings(ctx)
    n, errors = word_ops(settings, open_database(settings.storage.url)).import_text(
        cli_actor(), file.read_text("utf-8-sig"), fmt=fmt, defaults=defaults)
    for err in errors:
        typer.echo(f"line {err.line}: {err.message}", err=True)
    typer.echo(f"imported {n} term(s), {len(errors)} bad row(s)")


@words_app.command("export")
def words_export(
    ctx: typer.Context,
    file: Annotated[Path | None, typer.Argument(help="output file (default: stdout)")] = None,
    fmt: Annotated[str, typer.Option("--format", help="csv or txt")] = "csv",
) -> None:
    """Export every term (global and tenants) as CSV or TXT."""
    terms = SqlWordStore(open_database(_settings(ctx).storage.url)).all_terms()
    out = file.open("w", encoding="utf-8") if file else sys.stdout
    try:
        for chunk in export_terms(terms, fmt=fmt):
            out.write(chunk)
    finally:
        if file:
            out.close()


def _default_entry(*, kind: str, tenant: str | None, campaign: str | None, reason: str,
                   source: str, expires: str | None) -> ListEntry:
    try:
        return ListEntry(ListKind(kind), "", False, Scope(tenant, campaign), ListReason(reason),
                         source, datetime.fromisoformat(expires).replace(tzinfo=UTC)
                         if expires else None)
    except ValueError as e:
        typer.echo(f"error: {e}", err=True)
        raise typer.Exit(2) from e


ListOpt = Annotated[str, typer.Option("--list", help="black or white")]
TenantOpt = Annotated[str | None, typer.Option(help="tenant scope (default: global)")]
CampaignOpt = Annotated[str | None, typer.Option(help="campaign scope (needs --tenant)")]


def _lines(file: Path) -> Iterator[str]:
    with file.open(encoding="utf-8-sig", newline="") as f:
        yield from f


@lists_app.command("import")
def lists_import(
    ctx: typer.Context,
    file: Path,
    *,
    kind: ListOpt = "black",
    tenant: TenantOpt = None,
    campaign: CampaignOpt = None,
    reason: Annotated[str, typer.Option(help="default reason")] = "other",
    source: Annotated[str | None, typer.Option(help="default source (default: file name)")] = None,
    errors_file: Annotated[Path | None, typer.Option(help="write the bad rows here (CSV)")] = None,
) -> None:
    """Import a CSV (``number,list,tenant,campaign,reason,source,expires``) or a bare list."""
    settings = _settings(ctx)
    default = _default_entry(kind=kind, tenant=tenant, campaign=campaign, reason=reason,
                             source=source or file.name, expires=None)
    ops = list_ops(settings, open_database(settings.storage.url))
    report = asyncio.run(ops.import_lines(cli_actor(), _lines(file), default))
    if errors_file:
        with errors_file.open("w", encoding="utf-8", newline="") as f:
            w = csv.writer(f)
            w.writerow(["line", "value", "error"])
            w.writerows([err.line, err.value, err.message] for err in report.errors)
    for err in report.errors[:20]:
        typer.echo(f"line {err.line}: {err.value!r}: {err.message}", err=True)
    if len(report.errors) > 20:
        typer.echo(f"... {len(report.errors) - 20} more bad row(s)", err=True)
    typer.echo(f"imported {report.imported} entr(y/ies), {len(report.errors)} bad row(s)")


@lists_app.command("export")
def lists_export(
    ctx: typer.Context,
    file: Annotated[Path | None, typer.Argument(help="output file (default: stdout)")] = None,
    kind: Annotated[str | None, typer.Option("--list", help="black or white (default: both)")]
    = None,
) -> None:
    """Export entries as CSV (the import format)."""
    store = open_list_store(_settings(ctx))
    out = file.open("w", encoding="utf-8") if file else sys.stdout

    async def run() -> None:
        w = csv.writer(out, lineterminator="\n")
        w.writerow(CSV_FIELDS)
        async for e in store.export(ListKind(kind) if kind else None):
            w.writerow(entry_row(e))

    try:
        asyncio.run(run())
    finally:
        if file:
            out.close()


@lists_app.command("add")
def lists_add(
    ctx: typer.Context,
    number: str,
    *,
    kind: ListOpt = "black",
    tenant: TenantOpt = None,
    campaign: CampaignOpt = None,
    reason: Annotated[str, typer.Option(help="complaint, opt-out, regulator, test, vip, ...")]
    = "other",
    source: Annotated[str, typer.Option(help="who asked")] = "cli",
    expires: Annotated[str | None, typer.Option(help="ISO date/time (UTC)")] = None,
) -> None:
    """Add a number, ``+86168*`` prefix or ``LOW..HIGH`` range."""
    settings = _settings(ctx)
    default = _default_entry(kind=kind, tenant=tenant, campaign=campaign, reason=reason,
                             source=source, expires=expires)
    ops = list_ops(settings, open_database(settings.storage.url))
    spec = ListSpec(number, default.kind, tenant, campaign, default.reason, source,
                    default.expires)
    try:
        entries = asyncio.run(ops.add(cli_actor(), spec))
    except Invalid as e:
        typer.echo(f"error: {e}", err=True)
        raise typer.Exit(2) from e
    for entry in entries:
        typer.echo(f"added {entry.describe()}")


@lists_app.command("remove")
def lists_remove(
    ctx: typer.Context, number: str, kind: ListOpt = "black", tenant: TenantOpt = None,
    campaign: CampaignOpt = None,
) -> None:
    """Remove a number or ``+86168*`` prefix from a list scope."""
    settings = _settings(ctx)
    default = _default_entry(kind=kind, tenant=tenant, campaign=campaign, reason="other",
                             source="", expires=None)
    ops = list_ops(settings, open_database(settings.storage.url))
    try:
        n = asyncio.run(ops.remove(cli_actor(), ListSpec(number, default.kind, tenant,
                                                        campaign)))
    except Invalid as e:
        typer.echo(f"error: {e}", err=True)
        raise typer.Exit(2) from e
    except Missing:
        n = 0
    typer.echo(f"removed {n} entr(y/ies)")
    raise typer.Exit(0 if n else 1)


def _decision_json(d: Decision) -> dict[str, Any]:
    return {"allowed": d.allowed, "number": d.number, "vip": d.vip,
            "retry_at": d.retry_at.isoformat() if d.retry_at else None,
            "reasons": [{"code": r.code, "message": r.message} for r in d.reasons]}


@lists_app.command("check")
def lists_check(
    ctx: typer.Context,
    number: str,
    *,
    purpose: Annotated[str, typer.Option(help="marketing, notification, survey, ...")]
    = "marketing",
    tenant: Annotated[str, typer.Option(help="tenant")] = "default",
    campaign: CampaignOpt = None,
    at: Annotated[str | None, typer.Option(help="ISO time with offset (default: now)")] = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Would we dial NUMBER now? ALLOW/DENY with every reason; exit 1 on deny."""
    service = open_compliance(_settings(ctx))
    when = datetime.fromisoformat(at) if at else datetime.now(UTC)
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    d = asyncio.run(service.check(number, purpose, tenant, campaign, when))
    if as_json:
        typer.echo(json.dumps(_decision_json(d), ensure_ascii=False))
    else:
        typer.echo(f"{'ALLOW' if d.allowed else 'DENY'} {d.number or number}"
                   f"{' (VIP)' if d.vip else ''}")
        for r in d.reasons:
            typer.echo(f"  {r.code}: {r.message}")
        if d.retry_at:
            typer.echo(f"  defer until {d.retry_at.isoformat()}")
    raise typer.Exit(0 if d.allowed else 1)
