"""``ivr words ...`` and ``ivr lists ...``: ops commands over the persisted compliance state.

Words and list entries live in the database at ``storage.url`` (SQLite by default), or the lists
in Redis when ``compliance.redis_url`` is set, so an import in one process is what a check in the
next one sees. :mod:`app.compliance_setup` builds the same services for the engine.

Imports go through :mod:`tabular` (the importer the console uses too): CSV/TSV/text in any
encoding or .xlsx, Chinese or English headers, every bad row printed with file, line, column and
reason, never a traceback for a bad file; ``--preview`` shows what an import would do.
"""

from __future__ import annotations

import asyncio
import csv
import json
import sys
from collections.abc import Sequence
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer

from app.cli.console_cli import cli_actor
from app.cli.context import settings_of
from app.compliance_setup import open_compliance, open_list_store, word_registry
from app.config import Settings
from compliance.listio import CSV_FIELDS, entry_row, preview_import
from compliance.lists import ListEntry, ListKind, ListReason, Scope
from compliance.pinyin import PinyinMode
from compliance.service import Decision
from compliance.sql_store import SqlWordStore
from compliance.wordlist import TXT_SPEC, WORD_SPEC, export_terms, term_from_row
from compliance.words import Action, Term, TermError
from console.services.base import Invalid, Missing
from console.services.compliance import ListSpec
from storage.db import open_database
from tabular import Row, RowError, TableError, TableInfo
from tabular import preview as preview_table

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


SHOWN_ERRORS = 20
PreviewOpt = Annotated[bool, typer.Option(
    "--preview", help="show the detected encoding, columns, first rows and every bad row; "
                      "import nothing")]
EncodingOpt = Annotated[str | None, typer.Option(
    help="the file's encoding when detection gets it wrong (gb18030, big5, utf-16 ...)")]
SheetOpt = Annotated[str | None, typer.Option(help=".xlsx: the sheet to read (default: first)")]
ErrorsFileOpt = Annotated[Path | None, typer.Option(help="write the bad rows here (CSV)")]


def _fail(message: str) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(2)


def _describe(info: TableInfo) -> None:
    what = info.format + (f", sheet {info.sheet!r}" if info.sheet else "")
    if info.encoding:
        what += f", {info.encoding}"
    if info.delimiter and info.format == "csv":
        what += f", delimiter {info.delimiter!r}"
    typer.echo(f"file: {info.name} ({what})")
    if info.header_line is None:
        typer.echo(f"no header row: columns by position ({', '.join(info.columns)})")
    else:
        mapped = ", ".join(f"{name} <- {head!r}" for name, head in info.columns.items())
        typer.echo(f"header on line {info.header_line}: {mapped}")
    if info.unmapped:
        typer.echo(f"ignored columns: {', '.join(info.unmapped)}")


class _ErrorsFile:
    """Bad rows written as they come (a million-row import must not hold them all)."""

    def __init__(self, path: Path | None) -> None:
        self._file = path.open("w", encoding="utf-8-sig", newline="") if path else None
        self._w = csv.writer(self._file) if self._file else None
        if self._w:
            self._w.writerow(["file", "line", "column", "value", "error"])

    def write(self, e: RowError) -> None:
        if self._w:
            self._w.writerow([e.file, e.line, e.column, e.value, e.reason])

    def __enter__(self) -> _ErrorsFile:
        return self

    def __exit__(self, *exc: object) -> None:
        if self._file:
            self._file.close()


def _report_errors(errors: Sequence[RowError], total: int, errors_file: Path | None,
                   *, write: bool = False) -> None:
    if errors_file and write:
        with _ErrorsFile(errors_file) as sink:
            for e in errors:
                sink.write(e)
    for err in errors[:SHOWN_ERRORS]:
        typer.echo(str(err), err=True)
    if total > SHOWN_ERRORS:
        typer.echo(f"... {total - SHOWN_ERRORS} more bad row(s)"
                   + (f" (all in {errors_file})" if errors_file else ""), err=True)


def _show_preview(info: TableInfo, rows: Sequence[Row], errors: Sequence[RowError],
                  row_count: int, error_count: int) -> None:
    _describe(info)
    typer.echo(f"{row_count} data row(s), {error_count} bad")
    cols = list(info.columns)
    if rows:
        typer.echo("first rows:")
        for r in rows:
            cells = "  ".join(f"{c}={r.values.get(c, '')!r}" for c in cols if r.values.get(c))
            typer.echo(f"  line {r.line}: {cells}")
    _report_errors(errors, error_count, None)
    typer.echo("preview only: nothing imported")



@words_app.command("check")
def words_check(
    ctx: typer.Context,
    text: str,
    tenant: Annotated[str | None, typer.Option(help="tenant list on top of the global one")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="machine-readable output")] = False,
) -> None:
    """Scan TEXT: every hit with span, term, category, severity, action; exit 1 when blocked."""
    result = word_registry(settings_of(ctx)).filter_for(tenant).scan(text)
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
    category: Annotated[str, typer.Option(help="default category for rows without one")]
    = "custom",
    severity: Annotated[int, typer.Option(help="default severity 1..5")] = 3,
    action: Annotated[str, typer.Option(help="default action: block, mask, flag")] = "block",
    pinyin: Annotated[str | None, typer.Option(
        help="default pinyin matching: auto, spelled, homophone, off")] = None,
    fmt: Annotated[str, typer.Option("--format", help="auto, or txt: one term per line")]
    = "auto",
    preview: PreviewOpt = False,
    encoding: EncodingOpt = None,
    sheet: SheetOpt = None,
    errors_file: ErrorsFileOpt = None,
) -> None:
    """Import a word list: a sheet with a header (term/敏感词, category/类别, severity/级别,
    action/处理方式, pinyin/拼音 ...) as CSV/TSV/.xlsx, or TXT (one term per line)."""
    try:
        mode = PinyinMode(pinyin) if pinyin else None
        defaults = Term("x", category, severity, Action(action), tenant, mode)
    except (TermError, ValueError) as e:
        raise _fail(str(e)) from e
    settings = settings_of(ctx)
    try:
        if preview:
            def check(row: Row) -> object:
                return term_from_row(row.values, defaults)
            spec = TXT_SPEC if fmt == "txt" else WORD_SPEC
            p = preview_table(file, spec, check=check, encoding=encoding, sheet=sheet)
            _show_preview(p.info, p.rows, p.errors, p.row_count, p.error_count)
            return
        got = word_ops(settings, open_database(settings.storage.url)).import_file(
            cli_actor(), file, fmt=fmt, defaults=defaults, encoding=encoding, sheet=sheet)
    except TableError as e:
        raise _fail(str(e)) from e
    _report_errors(got.errors, len(got.errors), errors_file, write=True)
    typer.echo(f"imported {len(got.terms)} term(s), {len(got.errors)} bad row(s)")


@words_app.command("export")
def words_export(
    ctx: typer.Context,
    file: Annotated[Path | None, typer.Argument(help="output file (default: stdout)")] = None,
    fmt: Annotated[str, typer.Option("--format", help="csv or txt")] = "csv",
) -> None:
    """Export every term (global and tenants) as CSV or TXT."""
    terms = SqlWordStore(open_database(settings_of(ctx).storage.url)).all_terms()
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
        raise _fail(str(e)) from e


ListOpt = Annotated[str, typer.Option("--list", help="black or white")]
TenantOpt = Annotated[str | None, typer.Option(help="tenant scope (default: global)")]
CampaignOpt = Annotated[str | None, typer.Option(help="campaign scope (needs --tenant)")]


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
    preview: PreviewOpt = False,
    encoding: EncodingOpt = None,
    sheet: SheetOpt = None,
    errors_file: ErrorsFileOpt = None,
) -> None:
    """Import numbers from CSV/TSV/.xlsx (号码/手机号/number, 原因/reason, 备注/note,
    到期/有效期/expires, list, tenant, campaign, source) or a bare one-number-per-line list."""
    settings = settings_of(ctx)
    default = _default_entry(kind=kind, tenant=tenant, campaign=campaign, reason=reason,
                             source=source or file.name, expires=None)
    region = settings.compliance.default_region
    shown: list[RowError] = []
    with _ErrorsFile(errors_file) as sink:
        def on_error(err: RowError) -> None:
            sink.write(err)
            if len(shown) < SHOWN_ERRORS:
                shown.append(err)
        try:
            if preview:
                p = preview_import(file, default=default, region=region, encoding=encoding,
                                   sheet=sheet)
                _show_preview(p.info, p.rows, p.errors, p.row_count, p.error_count)
                return
            ops = list_ops(settings, open_database(settings.storage.url))
            report = asyncio.run(ops.import_table(cli_actor(), file, default, encoding=encoding,
                                                  sheet=sheet, on_error=on_error))
        except TableError as e:
            raise _fail(str(e)) from e
    _report_errors(shown, report.error_count, errors_file)
    typer.echo(f"imported {report.imported} entr(y/ies) from {report.rows} row(s), "
               f"{report.error_count} bad row(s)")


@lists_app.command("export")
def lists_export(
    ctx: typer.Context,
    file: Annotated[Path | None, typer.Argument(help="output file (default: stdout)")] = None,
    kind: Annotated[str | None, typer.Option("--list", help="black or white (default: both)")]
    = None,
) -> None:
    """Export entries as CSV (the import format)."""
    store = open_list_store(settings_of(ctx))
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
    settings = settings_of(ctx)
    default = _default_entry(kind=kind, tenant=tenant, campaign=campaign, reason=reason,
                             source=source, expires=expires)
    ops = list_ops(settings, open_database(settings.storage.url))
    spec = ListSpec(number, default.kind, tenant, campaign, default.reason, source,
                    default.expires)
    try:
        entries = asyncio.run(ops.add(cli_actor(), spec))
    except Invalid as e:
        raise _fail(str(e)) from e
    for entry in entries:
        typer.echo(f"added {entry.describe()}")


@lists_app.command("remove")
def lists_remove(
    ctx: typer.Context, number: str, kind: ListOpt = "black", tenant: TenantOpt = None,
    campaign: CampaignOpt = None,
) -> None:
    """Remove a number or ``+86168*`` prefix from a list scope."""
    settings = settings_of(ctx)
    default = _default_entry(kind=kind, tenant=tenant, campaign=campaign, reason="other",
                             source="", expires=None)
    ops = list_ops(settings, open_database(settings.storage.url))
    try:
        n = asyncio.run(ops.remove(cli_actor(), ListSpec(number, default.kind, tenant,
                                                        campaign)))
    except Invalid as e:
        raise _fail(str(e)) from e
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
    service = open_compliance(settings_of(ctx))
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
