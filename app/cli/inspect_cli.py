"""``ivr inspect``: inspect a call now, import scorecards, watch the queue, run a worker,
stats and CSV export (the same services the console calls; changes are audited)."""

from __future__ import annotations

import asyncio
import json
import signal
import sys
import time
from pathlib import Path
from typing import Annotated, Any

import typer

from app.cli.console_cli import cli_actor
from app.cli.context import settings_of
from storage import Database, open_database
from storage.tenancy import Tenants

inspect_app = typer.Typer(help="Post-call inspection (智能质检): transcripts, rules, scores.",
                          no_args_is_help=True)
rules_app = typer.Typer(help="Scorecards (sections of rules).", no_args_is_help=True)
inspect_app.add_typer(rules_app, name="rules")


def register(app: typer.Typer) -> None:
    app.add_typer(inspect_app, name="inspect")


def _db(ctx: typer.Context) -> Database:
    return open_database(settings_of(ctx).storage.url)


def _ops(ctx: typer.Context) -> Any:
    from console.audit import AuditLog  # noqa: PLC0415
    from console.services.inspection import InspectionOps  # noqa: PLC0415

    db = _db(ctx)
    return InspectionOps(db, AuditLog(db))


def _fail(message: str, code: int = 2) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(code)


def _scope(tenant: str | None) -> Tenants:
    return Tenants.one(tenant) if tenant else Tenants.every()


def _print_result(d: dict[str, Any]) -> None:
    typer.echo(f"call:      {d['call_id']}  (tenant {d['tenant']}, flow {d['flow_id'] or '-'})")
    typer.echo(f"score:     {d['score']}  {'passed' if d['passed'] else 'FAILED'}"
               f"{'  auto-fail' if d['auto_failed'] else ''}  scorecard {d['scorecard']}")
    if d["reasons"]:
        typer.echo(f"review:    {'; '.join(d['reasons'])}")
    for item in d.get("items", []):
        typer.echo(f"  [{item['status']:4}] {item['section']} / {item['id']}"
                   f"{'  ' + item['detail'] if item['detail'] else ''}")
        for e in item["evidence"][:5]:
            where = f"{e['start_ms'] / 1000:7.2f}-{e['end_ms'] / 1000:.2f}s"
            node = f" node {e['node_id']}" if e["node_id"] else ""
            typer.echo(f"           {where} {e['speaker']}{node} {e['text'] or e['detail']}")
    turns = (d.get("transcript") or {}).get("turns", [])
    if turns:
        typer.echo("transcript:")
        for t in turns:
            if t["text"]:
                typer.echo(f"  {t['start_ms'] / 1000:7.2f}s {t['speaker']:6} {t['text']}")


@inspect_app.command("run")
def run(ctx: typer.Context, call_id: str,
        as_json: Annotated[bool, typer.Option("--json", help="One JSON object")] = False,
        no_store: Annotated[bool, typer.Option("--no-store",
                                               help="Print only; keep the stored result")] = False,
        ) -> None:
    """Inspect CALL_ID now (by id, id prefix or SIP Call-ID) and print the result."""
    from app.inspection_setup import build_inspector  # noqa: PLC0415 - models load lazily
    from asr.recognizer import RecognizerError  # noqa: PLC0415
    from console.services.inspection import result_dict  # noqa: PLC0415
    from inspection.inspector import InspectionError  # noqa: PLC0415
    from inspection.rules import RuleError  # noqa: PLC0415
    from inspection.transcribe import TranscribeError  # noqa: PLC0415

    settings = settings_of(ctx)
    inspector = build_inspector(settings, _db(ctx))
    try:
        got = inspector.inspect(call_id, store=not no_store)
    except (InspectionError, TranscribeError, RuleError, RecognizerError) as e:
        raise _fail(str(e), 1) from None
    d = result_dict(got.row)
    d["stats"] = got.row.stats
    if as_json:
        typer.echo(json.dumps(d, ensure_ascii=False))
        return
    _print_result(d)
    st = got.stats
    typer.echo(f"audio {st.audio_s:.1f}s  compute {st.compute_s:.1f}s  rtf {st.rtf:.3f}  "
               f"engine {got.transcript.engine_name}", err=True)


@inspect_app.command("show")
def show(ctx: typer.Context, call_id: str,
         as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """The stored result of CALL_ID (transcript, items, evidence, reviews)."""
    from console.services.base import Missing  # noqa: PLC0415

    try:
        d = _ops(ctx).result(call_id, Tenants.every())
    except Missing as e:
        raise _fail(str(e), 1) from None
    if as_json:
        typer.echo(json.dumps(d, ensure_ascii=False))
    else:
        _print_result(d)


@rules_app.command("import")
def rules_import(ctx: typer.Context, file: Path,
                 tenant: Annotated[str, typer.Option(help="Whose scorecard")] = "default",
                 ) -> None:
    """Check and store a scorecard (JSON); a new version when its id exists. Its ``scope``
    (flows and/or campaigns; none: the tenant's default) may not clash with another active
    card's."""
    from console.services.base import Conflict, Invalid  # noqa: PLC0415
    from storage.tenancy import TenantError, check_tenant_id  # noqa: PLC0415

    try:
        check_tenant_id(tenant)
        doc = json.loads(file.read_text(encoding="utf-8-sig"))
    except (OSError, UnicodeDecodeError, TenantError) as e:
        raise _fail(f"{file}: {e}" if not isinstance(e, TenantError) else str(e)) from None
    except json.JSONDecodeError as e:
        raise _fail(f"{file}: not JSON: {e.msg} at line {e.lineno} column {e.colno}") from None
    try:
        version = _ops(ctx).import_scorecard(cli_actor(), tenant, doc)
    except (Invalid, Conflict) as e:
        raise _fail(f"{file}: {e}") from None
    typer.echo(f"scorecard {doc['id']} for tenant {tenant}: version {version}")


@rules_app.command("list")
def rules_list(ctx: typer.Context, tenant: Annotated[str | None, typer.Option()] = None) -> None:
    """Scorecards: tenant, id, version, items, active or retired, which calls they score."""
    for c in _ops(ctx).list_scorecards(_scope(tenant)):
        items = sum(len(s.get("items", [])) for s in c["document"].get("sections", []))
        scope = c["document"].get("scope") or {}
        scores = "; ".join(f"{k} {','.join(v)}" for k, v in scope.items() if v) or "default"
        typer.echo(f"{c['tenant']:16} {c['id']:24} v{c['version']:<4} {items} items  "
                   f"{'active ' if c['active'] else 'retired'}  {scores}  "
                   f"{c['document'].get('name', '')}")


def _set_active(ctx: typer.Context, card_id: str, tenant: str, active: bool) -> None:
    from console.services.base import Conflict, Missing  # noqa: PLC0415

    try:
        _ops(ctx).set_scorecard_active(cli_actor(), tenant, card_id, active)
    except Missing as e:
        raise _fail(str(e), 1) from None
    except Conflict as e:
        raise _fail(str(e)) from None
    typer.echo(f"scorecard {card_id} for tenant {tenant}: {'active' if active else 'retired'}")


@rules_app.command("retire")
def rules_retire(ctx: typer.Context, card_id: str,
                 tenant: Annotated[str, typer.Option(help="Whose scorecard")] = "default",
                 ) -> None:
    """Retire a scorecard: its calls are scored by the next fitting one."""
    _set_active(ctx, card_id, tenant, False)


@rules_app.command("activate")
def rules_activate(ctx: typer.Context, card_id: str,
                   tenant: Annotated[str, typer.Option(help="Whose scorecard")] = "default",
                   ) -> None:
    """Bring a retired scorecard back (refused while another active card has its scope)."""
    _set_active(ctx, card_id, tenant, True)


@inspect_app.command("queue")
def queue(ctx: typer.Context,
          state: Annotated[str | None, typer.Option(help="queued, running, done, failed")] = None,
          limit: Annotated[int, typer.Option(min=1, max=1000)] = 20,
          as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Jobs by state, and the latest ones (with the error of failed ones)."""
    got = _ops(ctx).jobs(state, limit)
    if as_json:
        typer.echo(json.dumps(got, ensure_ascii=False))
        return
    counts = got["counts"]
    typer.echo("  ".join(f"{k}={counts.get(k, 0)}" for k in ("queued", "running", "done",
                                                             "failed")))
    for j in got["jobs"]:
        when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(j["updated_at"]))
        typer.echo(f"{when}  {j['state']:8} {j['call_id']}  attempts={j['attempts']}"
                   f"{'  ' + j['error'][:120] if j['error'] else ''}")


@inspect_app.command("rerun")
def rerun(ctx: typer.Context, call_id: str) -> None:
    """Queue CALL_ID again (the running engine or `ivr inspect worker` picks it up)."""
    from console.services.base import Missing  # noqa: PLC0415

    try:
        _ops(ctx).rerun(cli_actor(), call_id, Tenants.every())
    except Missing as e:
        raise _fail(str(e), 1) from None
    typer.echo(f"queued {call_id}")


@inspect_app.command("worker")
def worker(ctx: typer.Context,
           workers: Annotated[int | None, typer.Option(min=1, max=64)] = None) -> None:
    """Run the inspection queue in this process until SIGINT/SIGTERM (a box of its own, or
    next to an engine that has ``inspection.enabled = false``)."""
    from app.inspection_setup import build_worker  # noqa: PLC0415
    from core.clock import SystemClock  # noqa: PLC0415

    settings = settings_of(ctx)
    if workers:
        settings.inspection.workers = workers

    async def main() -> None:
        w = build_worker(settings, _db(ctx), SystemClock())
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await w.start()
        typer.echo(f"inspection worker {w.owner}: {w.workers} at once", err=True)
        await stop.wait()
        await w.stop()
        typer.echo(f"stopped: {w.done} inspected, {w.failed} failed", err=True)

    asyncio.run(main())


@inspect_app.command("stats")
def stats_cmd(ctx: typer.Context, tenant: Annotated[str | None, typer.Option()] = None,
              days: Annotated[float, typer.Option(min=0)] = 30.0) -> None:
    """Per flow, rule (scorecard item), reviewer and day, as JSON."""
    since = time.time() - days * 86400 if days else None
    typer.echo(json.dumps(_ops(ctx).stats(_scope(tenant), since), ensure_ascii=False,
                          indent=1))


@inspect_app.command("export")
def export(ctx: typer.Context, tenant: Annotated[str | None, typer.Option()] = None,
           output: Annotated[Path | None, typer.Option("-o", "--output")] = None) -> None:
    """Results as CSV (UTF-8 with BOM) on stdout or to a file."""
    text = _ops(ctx).export_csv(_scope(tenant))
    if output is None:
        sys.stdout.write(text)
    else:
        output.write_text(text, encoding="utf-8")
        typer.echo(f"wrote {output}", err=True)
