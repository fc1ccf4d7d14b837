"""``ivr sms send|list|status`` and ``ivr sms template save|list``.

``send`` records the message in the outbox at ``storage.url`` (checked on the spot: template,
sensitive words with the variables filled in, links, part count); the running engine's sender
picks it up within ``poll`` time and moves it on (``--wait`` follows it to a final status).
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Annotated

import typer

from app.cli.context import settings_of
from app.sms_setup import build_sms_service
from core.clock import SystemClock
from notify.content import ContentRefused, SmsTemplate, TemplateStore
from notify.outbox import FINAL_STATUSES, Outbox, SmsRecord
from notify.service import SmsRequest
from storage import Database, open_database

sms_app = typer.Typer(help="Post-call SMS: send, list, status, templates.", no_args_is_help=True)
template_app = typer.Typer(help="SMS templates (checked when saved).", no_args_is_help=True)
sms_app.add_typer(template_app, name="template")


def register(app: typer.Typer) -> None:
    app.add_typer(sms_app, name="sms")


def _db(ctx: typer.Context) -> Database:
    return open_database(settings_of(ctx).storage.url)


def _when(ts: float | None) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(ts)) if ts else "-"


def _vars(pairs: list[str]) -> dict[str, str]:
    out = {}
    for pair in pairs:
        name, eq, value = pair.partition("=")
        if not eq or not name:
            typer.echo(f"error: --var {pair!r}: expected NAME=VALUE", err=True)
            raise typer.Exit(2)
        out[name] = value
    return out


def _show(rec: SmsRecord) -> None:
    typer.echo(f"id:        {rec.id}")
    typer.echo(f"status:    {rec.status}{f' ({rec.reason})' if rec.reason else ''}")
    typer.echo(f"to:        {rec.to}  from {rec.sender}  tenant {rec.tenant}")
    typer.echo(f"parts:     {rec.parts} {rec.coding}  delivered {rec.parts_delivered}")
    typer.echo(f"gateway:   {rec.gateway}  attempts {rec.attempts}")
    typer.echo(f"call:      {rec.call_id or '-'}  campaign {rec.campaign or '-'}  "
               f"template {rec.template_id or '-'}  rule {rec.rule or '-'}")
    typer.echo(f"created:   {_when(rec.created_at)}  due {_when(rec.due_at)}  "
               f"submitted {_when(rec.submitted_at)}  done {_when(rec.done_at)}")
    typer.echo(f"text:      {rec.text}")


@sms_app.command("send")
def send(
    ctx: typer.Context,
    number: str,
    text: Annotated[str | None, typer.Argument(help="the text (omit with --template)")] = None,
    template: Annotated[str | None, typer.Option(help="template id")] = None,
    var: Annotated[list[str] | None, typer.Option(help="NAME=VALUE for the template")] = None,
    tenant: Annotated[str, typer.Option(help="tenant")] = "default",
    key: Annotated[str | None, typer.Option(help="idempotency key (resends return the "
                                                  "first message)")] = None,
    delay_s: Annotated[float, typer.Option(help="send no sooner than this")] = 0.0,
    wait_s: Annotated[float, typer.Option("--wait", help="follow it up to this many seconds "
                                                         "to a final status")] = 0.0,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Record a message for sending; exit 1 when it is refused (the reason says why)."""
    if text is None and template is None:
        typer.echo("error: give TEXT or --template", err=True)
        raise typer.Exit(2)
    settings = settings_of(ctx)
    db = _db(ctx)
    clock = SystemClock()
    service = build_sms_service(settings, db, clock)
    req = SmsRequest(to=number, text=text, template_id=template, variables=_vars(var or []),
                     tenant=tenant, idempotency_key=key, delay_s=delay_s)
    rec = asyncio.run(service.send(req))
    deadline = time.monotonic() + wait_s
    outbox = Outbox(db)
    while rec.status not in FINAL_STATUSES and time.monotonic() < deadline:
        time.sleep(0.1)
        rec = outbox.get(rec.id) or rec
    if as_json:
        typer.echo(json.dumps(rec.as_dict(), ensure_ascii=False))
    else:
        _show(rec)
    raise typer.Exit(1 if rec.status in ("refused", "failed", "expired") else 0)


@sms_app.command("list")
def list_messages(
    ctx: typer.Context,
    status: Annotated[str | None, typer.Option(help="only this status")] = None,
    tenant: Annotated[str | None, typer.Option(help="only this tenant")] = None,
    call: Annotated[str | None, typer.Option(help="only this call id")] = None,
    limit: Annotated[int, typer.Option(help="how many, newest first")] = 20,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """The newest messages."""
    records = Outbox(_db(ctx)).recent(tenant=tenant, status=status, call_id=call, limit=limit)
    if as_json:
        typer.echo(json.dumps([r.as_dict() for r in records], ensure_ascii=False))
        return
    typer.echo(f"{'id':<32} {'created':<19} {'status':<9} {'to':<16} parts  text")
    for r in records:
        short = r.text if len(r.text) <= 30 else r.text[:29] + "…"
        typer.echo(f"{r.id:<32} {_when(r.created_at):<19} {r.status:<9} {r.to:<16} "
                   f"{r.parts:>5}  {short}")


@sms_app.command("status")
def status(
    ctx: typer.Context,
    message_id: str,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """One message: status, reason, parts, timings."""
    rec = Outbox(_db(ctx)).get(message_id)
    if rec is None:
        typer.echo(f"error: no message {message_id!r}", err=True)
        raise typer.Exit(1)
    if as_json:
        typer.echo(json.dumps(rec.as_dict(), ensure_ascii=False))
    else:
        _show(rec)


@template_app.command("save")
def template_save(
    ctx: typer.Context,
    template_id: str,
    text: str,
    tenant: Annotated[str, typer.Option(help="tenant")] = "default",
    signature: Annotated[str, typer.Option(help="【签名】 without the brackets")] = "",
) -> None:
    """Save a template after checking its words and links."""
    settings = settings_of(ctx)
    db = _db(ctx)
    store: TemplateStore | None = build_sms_service(settings, db, SystemClock()).templates
    assert store is not None
    try:
        store.save(SmsTemplate(tenant, template_id, text, signature), time.time())
    except ContentRefused as e:
        typer.echo(f"error: {e}", err=True)
        raise typer.Exit(1) from e
    typer.echo(f"saved template {template_id} for tenant {tenant}")


@template_app.command("list")
def template_list(
    ctx: typer.Context,
    tenant: Annotated[str | None, typer.Option(help="only this tenant")] = None,
) -> None:
    settings = settings_of(ctx)
    store = build_sms_service(settings, _db(ctx), SystemClock()).templates
    assert store is not None
    for t in store.all(tenant):
        sig = f"【{t.signature}】" if t.signature else ""
        typer.echo(f"{t.tenant:<12} {t.template_id:<20} {sig}{t.text}")
