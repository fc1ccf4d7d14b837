"""``ivr campaign create|start|pause|resume|stop|status|report|list`` and ``ivr callerid keygen``.

The commands call :class:`campaigns.service.CampaignService`, as the console does; the running
engine (``ivr run``) dials. Bad input exits 2 with one line naming the field or file line;
a campaign refused for its content exits 1 with every problem.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Annotated, Any

import typer

from app.config import Settings
from core.clock import SystemClock
from storage import open_database

campaign_app = typer.Typer(help="Outbound campaigns (docs/campaigns.md).", no_args_is_help=True)
callerid_app = typer.Typer(help="Branded caller ID: keys and certificates.",
                           no_args_is_help=True)


def register(app: typer.Typer) -> None:
    app.add_typer(campaign_app, name="campaign")
    app.add_typer(callerid_app, name="callerid")


def _service(ctx: typer.Context) -> Any:
    from app.campaign_setup import campaign_service  # noqa: PLC0415 - loads word lists

    settings: Settings = ctx.obj
    return campaign_service(settings, open_database(settings.storage.url), SystemClock())


def _ops(ctx: typer.Context) -> Any:
    """The console's campaign operations over the same service: changes are audited as
    ``<user> (cli)``, like the console's."""
    from app.campaign_setup import campaign_service  # noqa: PLC0415
    from console.audit import AuditLog  # noqa: PLC0415
    from console.services.campaigns import CampaignOps  # noqa: PLC0415

    settings: Settings = ctx.obj
    db = open_database(settings.storage.url)
    return CampaignOps(campaign_service(settings, db, SystemClock()), AuditLog(db))


def _fail(message: str, code: int = 2) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(code)


def _when(ts: float | None) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(ts)) if ts else "-"


@campaign_app.command("create")
def create(
    ctx: typer.Context,
    spec: Annotated[Path, typer.Argument(help="campaign spec (JSON)")],
    contacts: Annotated[Path, typer.Option("--contacts", help="CSV/TSV/XLSX of contacts")],
    encoding: Annotated[str | None, typer.Option(help="override the detected encoding")] = None,
    sheet: Annotated[str | None, typer.Option(help="XLSX sheet name")] = None,
    start: Annotated[bool, typer.Option(help="start it right away")] = False,
    errors_file: Annotated[Path | None, typer.Option(help="every bad row, as CSV")] = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Create a campaign (a draft) from SPEC and its contacts; bad rows are reported, the
    rest imported."""
    from app.cli.console_cli import cli_actor  # noqa: PLC0415
    from campaigns.service import load_spec_file  # noqa: PLC0415
    from campaigns.spec import SpecError  # noqa: PLC0415
    from console.services.base import Conflict, Invalid  # noqa: PLC0415
    from storage.tenancy import EVERY_TENANT  # noqa: PLC0415

    ops = _ops(ctx)
    try:
        data = load_spec_file(spec)
        tenant = data.get("tenant", "default") if isinstance(data, dict) else "default"
        created = ops.create(cli_actor(), str(tenant), data, contacts,
                             contacts_name=contacts.name, flow_files_in=spec.parent,
                             encoding=encoding, sheet=sheet)
    except (SpecError, Invalid, Conflict) as e:
        raise _fail(str(e)) from e
    c, imported = created.campaign, created.contacts
    for err in imported.errors[:20]:
        typer.echo(f"bad row: {err}", err=True)
    if imported.error_count > 20:
        typer.echo(f"... {imported.error_count - 20} more bad rows"
                   f"{'' if errors_file else ' (--errors-file FILE lists all)'}", err=True)
    if errors_file is not None:
        _write_errors(errors_file, imported.errors)
    state = c.state
    if start:
        try:
            state = ops.control(cli_actor(), EVERY_TENANT, c.id, "start").state
        except Conflict as e:
            for p in e.current if isinstance(e.current, list) else [str(e)]:
                typer.echo(f"blocked: {p}", err=True)
            raise _fail(f"campaign {c.id} created but not started", 1) from e
    out = {"id": c.id, "state": state, "flow": f"{c.flow_id} v{c.flow_version}",
           **imported.summary()}
    if as_json:
        typer.echo(json.dumps(out, ensure_ascii=False, indent=2))
        return
    typer.echo(f"campaign {c.id} ({c.name}, tenant {c.tenant}): {state}, flow {out['flow']}")
    typer.echo(f"contacts: {len(imported.contacts)} imported, {imported.merged} duplicates "
               f"merged, {imported.error_count} bad rows (of {imported.rows})")


def _write_errors(path: Path, errors: list[Any]) -> None:
    import csv  # noqa: PLC0415

    with path.open("w", encoding="utf-8-sig", newline="") as f:
        w = csv.writer(f)
        w.writerow(["file", "line", "column", "value", "reason"])
        for e in errors:
            w.writerow([e.file, e.line, e.column, e.value, e.reason])


def _transition(ctx: typer.Context, campaign_id: str, action: str) -> None:
    from app.cli.console_cli import cli_actor  # noqa: PLC0415
    from console.services.base import Conflict, Missing  # noqa: PLC0415
    from storage.tenancy import EVERY_TENANT  # noqa: PLC0415

    try:
        c = _ops(ctx).control(cli_actor(), EVERY_TENANT, campaign_id, action)
    except Missing as e:
        raise _fail(str(e)) from e
    except Conflict as e:
        if e.code == "content_blocked":
            for p in e.current or []:
                typer.echo(f"blocked: {p}", err=True)
            raise _fail(f"campaign {campaign_id} may not start: {len(e.current or [])} "
                        "problem(s)", 1) from e
        raise _fail(str(e), 1) from e
    typer.echo(f"campaign {c.id}: {c.state}")


@campaign_app.command("start")
def start_cmd(ctx: typer.Context, campaign_id: Annotated[str, typer.Argument()]) -> None:
    """Screen the campaign's texts and start dialling (the running engine dials)."""
    _transition(ctx, campaign_id, "start")


@campaign_app.command("pause")
def pause_cmd(ctx: typer.Context, campaign_id: Annotated[str, typer.Argument()]) -> None:
    """No new calls; calls in progress finish."""
    _transition(ctx, campaign_id, "pause")


@campaign_app.command("resume")
def resume_cmd(ctx: typer.Context, campaign_id: Annotated[str, typer.Argument()]) -> None:
    _transition(ctx, campaign_id, "resume")


@campaign_app.command("stop")
def stop_cmd(ctx: typer.Context, campaign_id: Annotated[str, typer.Argument()]) -> None:
    """End the campaign for good (contacts not yet called stay uncalled)."""
    _transition(ctx, campaign_id, "stop")


@campaign_app.command("status")
def status_cmd(
    ctx: typer.Context,
    campaign_id: Annotated[str, typer.Argument()],
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """State, contacts by state, progress and ETA."""
    from campaigns.store import CampaignNotFound  # noqa: PLC0415

    try:
        st = _service(ctx).status(campaign_id)
    except CampaignNotFound as e:
        raise _fail(str(e)) from e
    if as_json:
        typer.echo(json.dumps(st, ensure_ascii=False, indent=2))
        return
    typer.echo(f"campaign {st['id']} ({st['name']}, tenant {st['tenant']}): {st['state']}, "
               f"flow {st['flow']}")
    typer.echo(f"contacts {st['contacts']}: " + ", ".join(
        f"{k} {v}" for k, v in sorted(st["by_state"].items())))
    eta = "-" if st["eta_s"] is None else f"{st['eta_s']:.0f} s"
    typer.echo(f"progress {st['progress']:.1%}, {st['attempts_last_minute']} calls in the "
               f"last minute, ETA {eta}; started {_when(st['started_at'])}, finished "
               f"{_when(st['finished_at'])}")
    if st["skipped_or_deferred"]:
        typer.echo("skipped/deferred: " + ", ".join(
            f"{k} {v}" for k, v in sorted(st["skipped_or_deferred"].items())))


@campaign_app.command("report")
def report_cmd(
    ctx: typer.Context,
    campaign_id: Annotated[str, typer.Argument()],
    csv_path: Annotated[Path | None, typer.Option("--csv", help="one row per contact")] = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Attempts, answer rate, AMD split, completion, confirmations, opt-outs, SMS sent."""
    from campaigns.reports import write_csv  # noqa: PLC0415
    from campaigns.store import CampaignNotFound  # noqa: PLC0415

    svc = _service(ctx)
    try:
        rep = svc.report(campaign_id)
    except CampaignNotFound as e:
        raise _fail(str(e)) from e
    if csv_path is not None:
        n = write_csv(svc.store, campaign_id, csv_path)
        typer.echo(f"{n} contacts written to {csv_path}", err=True)
    if as_json or csv_path is None:
        if as_json:
            typer.echo(json.dumps(rep, ensure_ascii=False, indent=2, default=str))
            return
        typer.echo(f"campaign {rep['campaign']}: {rep['state']}, {rep['contacts']} contacts, "
                   f"completion {rep['completion']:.1%}")
        typer.echo(f"attempts {rep['attempts']}, answer rate {rep['answer_rate']:.1%}: "
                   + ", ".join(f"{k} {v}" for k, v in sorted(rep["dispositions"].items())))
        typer.echo(f"AMD: {rep['amd'] or '-'}; confirmed {rep['confirmed']}, opted out "
                   f"{rep['opted_out']}, heard in full {rep['heard_full']}, SMS sent "
                   f"{rep['sms_sent']}")


@campaign_app.command("list")
def list_cmd(
    ctx: typer.Context,
    tenant: Annotated[str | None, typer.Option()] = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    rows = _service(ctx).list(tenant)
    if as_json:
        typer.echo(json.dumps([{"id": c.id, "name": c.name, "tenant": c.tenant,
                                "state": c.state, "contacts": c.total,
                                "created_at": c.created_at} for c in rows],
                              ensure_ascii=False, indent=2))
        return
    for c in rows:
        typer.echo(f"{c.id:20} {c.state:9} {c.tenant:12} {c.total:8} {c.name}")


@callerid_app.command("keygen")
def keygen(
    folder: Annotated[Path, typer.Argument(help="where the PEM files go")],
    name: Annotated[str, typer.Option(help="organisation in the certificates")] = "IVR Test",
    cert_url: Annotated[str, typer.Option(help="the x5u URL verifiers will use")] =
        "https://cert.example.invalid/ivr-signer.pem",
    days: Annotated[int, typer.Option(help="validity")] = 365,
) -> None:
    """A test CA and a signing certificate (ES256, P-256) for branded caller ID."""
    from campaigns.certs import write_test_ca  # noqa: PLC0415

    paths = write_test_ca(folder, name=name, days=days)
    for kind, path in paths.items():
        typer.echo(f"{kind}: {path}")
    typer.echo("\n[callerid]\n"
               f'key_path = "{paths["signer_key"]}"\ncert_url = "{cert_url}"\n'
               f'# verifying side:\ntrust_anchors = ["{paths["ca_cert"]}"]\n'
               f'certs = {{ "{cert_url}" = "{paths["signer_chain"]}" }}')
    if sys.stdout.isatty():
        typer.echo("keep the .key files private (mode 0600)", err=True)
