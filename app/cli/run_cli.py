"""``ivr run``, ``ivr calls list|show`` and ``ivr call URI --play FILE``."""

from __future__ import annotations

import asyncio
import gc
import json
import logging
import signal
import time
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from app.config import ConfigError, Settings
from app.demo import demo_app
from app.engine import Engine
from app.loop import loop_name, space_full_collections
from app.loop import run as run_loop
from audio.tones import dtmf_sequence
from core.call import BargeIn
from engine.cdr import CallQuery, CallRecord, CallRecords
from engine.sip.ua import Credentials
from engine.sipcall import SipCall
from storage import open_database
from storage.tenancy import Tenants

log = logging.getLogger("ivr.run")

if TYPE_CHECKING:
    from console.api.app import ConsoleServer

DTMF_KEYS = "0123456789*#ABCD"
calls_app = typer.Typer(help="Call records (CDR).", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    app.command("run")(run)
    app.command("call")(call)
    app.add_typer(calls_app, name="calls")


BACKENDS = {"sip": (True, False), "asterisk": (False, True), "both": (True, True)}


def run(
    ctx: typer.Context,
    sip_listen: Annotated[str | None, typer.Option(help="HOST:PORT (default from config)")] = None,
    demo: Annotated[bool, typer.Option(help="answer with the built-in keypad demo")] = False,
    backend: Annotated[str | None, typer.Option(
        help="sip (own SIP/RTP), asterisk (AMI + AudioSocket) or both; default from config "
             "(sip.enabled, asterisk.enabled)")] = None,
    workers: Annotated[int, typer.Option(
        help="engine processes (one per core; 0: this one). More than 1 puts Kamailio on "
             "HOST:PORT and the workers behind it (docs/cluster.md)")] = 0,
    balancer: Annotated[bool, typer.Option(
        help="with --workers: start Kamailio in front (--no-balancer: your own)")] = True,
) -> None:
    """Start the engine and serve calls until Ctrl-C / SIGTERM (then drain and stop)."""
    settings: Settings = ctx.obj
    if sip_listen:
        settings.sip.listen = sip_listen
    if backend is not None:
        if backend not in BACKENDS:
            typer.echo(f"error: --backend: {backend!r} is not one of sip, asterisk, both",
                       err=True)
            raise typer.Exit(2)
        settings.sip.enabled, settings.asterisk.enabled = BACKENDS[backend]
    if not (settings.sip.enabled or settings.asterisk.enabled):
        typer.echo("error: no backend enabled (sip.enabled and asterisk.enabled are both "
                   "false); use --backend", err=True)
        raise typer.Exit(2)
    if workers > 1:
        if settings.asterisk.enabled:
            # Each worker would bind the one AudioSocket address and log in to AMI: Asterisk
            # spreads calls itself (several engines, each its own [asterisk] section).
            typer.echo("error: --workers: the Asterisk backend runs in one engine process "
                       "(use --backend sip with --workers, or one engine per AudioSocket "
                       "address)", err=True)
            raise typer.Exit(2)
        run_loop(_supervise(settings, workers, demo, balancer,
                            ctx.parent.params.get("config") if ctx.parent else None),
                 settings.runtime.event_loop)
        return
    space_full_collections(settings.runtime.gc_full_every)
    run_loop(_run(settings, demo), settings.runtime.event_loop)


async def _supervise(settings: Settings, workers: int, demo: bool, balancer: bool,
                     config: Path | None) -> None:
    from app.supervisor import Supervisor  # noqa: PLC0415 - only for --workers

    try:
        sup = Supervisor(settings, workers, config_path=config, demo=demo, balancer=balancer)
    except ValueError as e:
        typer.echo(f"error: {e}", err=True)
        raise typer.Exit(2) from e
    for plan in sup.plans:
        typer.echo(f"worker {plan.index}: sip:{plan.sip[0]}:{plan.sip[1]} rtp {plan.rtp[0]}-"
                   f"{plan.rtp[1]} metrics {plan.metrics or '-'} node {plan.node_id}")
    if balancer:
        typer.echo(f"balancer: kamailio on sip:{settings.sip.listen}")
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await sup.run(stop)
    except RuntimeError as e:
        typer.echo(f"error: {e}", err=True)
        await sup.stop()
        raise typer.Exit(2) from e


async def _run(settings: Settings, demo: bool) -> None:
    engine = Engine(settings, router=(lambda c: demo_app) if demo else None)
    # Handlers before the start: the start takes seconds (models, prompts), and the SMS sender
    # and dialler already work during it; a SIGTERM then must stop in order, not kill.
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        addresses = await engine.start()
    except ConfigError as e:  # a setting only the running engine checks (e.g. sms.rules)
        typer.echo(f"error: {e}", err=True)
        await engine.stop(drain_s=0)
        raise typer.Exit(2) from e
    for kind, (host, port) in addresses.items():
        if kind == "audiosocket":
            a = settings.asterisk
            typer.echo(f"listening: AudioSocket {host}:{port} for Asterisk; AMI "
                       f"{a.ami_host}:{a.ami_port} as {a.username!r} (connecting)")
        else:
            typer.echo(f"listening: sip:{host}:{port};transport={kind}")
    if engine.metrics_address is not None:
        host, port = engine.metrics_address
        typer.echo(f"metrics: http://{host}:{port}/metrics (and /healthz)")
    what = "built-in demo" if demo else f"flows (default {settings.flows.default_flow})"
    typer.echo(f"answering with: {what}; call records in {settings.storage.url}; "
               f"event loop {loop_name(settings.runtime.event_loop)}")
    console = None
    try:
        if not stop.is_set():  # no console for an engine already asked to stop
            console = await _start_console(settings, engine)
    except Exception as e:  # the console is optional: calls go on regardless
        log.exception("console: not started")
        typer.echo(f"console: not served: {e} (calls are answered regardless)", err=True)
    await stop.wait()
    typer.echo(f"stopping: draining calls for up to {settings.sip.drain_s:g} s")
    if console is not None:
        await console.stop()
    await engine.stop()


async def _start_console(settings: Settings, engine: Engine) -> ConsoleServer | None:
    """The console next to the engine, on ``[console] listen`` (its failure to bind is
    reported, and calls are served anyway)."""
    if not settings.console.listen:
        return None
    from app.cli.console_cli import print_console  # noqa: PLC0415
    from app.console_setup import EngineCallPlacer, build_console, start_console  # noqa: PLC0415

    db = engine.db
    assert db is not None
    loop = asyncio.get_running_loop()
    placer = await loop.run_in_executor(None, EngineCallPlacer, engine, settings)
    svc = await loop.run_in_executor(
        None, lambda: build_console(settings, db, clock=engine.clock, bus=engine.bus,
                                    placer=placer))
    try:
        server, url, password = await start_console(settings, svc)
    except OSError as e:
        typer.echo(f"console: not served on {settings.console.listen}: {e}", err=True)
        return None
    print_console(url, settings.console.bootstrap_admin, password, engine=True)
    # As the engine does after its start: what the console loaded lives as long as the
    # process, so keep it out of the collector's full scans (they pause media).
    gc.freeze()
    return server


def _records(settings: Settings) -> CallRecords:
    return CallRecords(open_database(settings.storage.url))


def _tenants(tenant: str) -> Tenants:
    return Tenants.every() if tenant == "*" else Tenants.one(tenant)


def _epoch(value: str | None, what: str) -> float | None:
    if value is None:
        return None
    try:
        return datetime.fromisoformat(value).timestamp()
    except ValueError as e:
        typer.echo(f"error: --{what}: {value!r} is not an ISO date/time", err=True)
        raise typer.Exit(2) from e


def _when(ts: float | None) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(ts)) if ts else "-"


TenantOpt = Annotated[str, typer.Option(help="a tenant, or * for every tenant")]


@calls_app.command("list")
def calls_list(
    ctx: typer.Context,
    limit: Annotated[int, typer.Option(help="how many, newest first")] = 20,
    tenant: TenantOpt = "*",
    number: Annotated[str | None, typer.Option(help="caller or callee ('*' suffix: prefix)")]
    = None,
    flow: Annotated[str | None, typer.Option(help="flow id")] = None,
    disposition: Annotated[str | None, typer.Option(help="answered, busy, no_answer, ...")]
    = None,
    since: Annotated[str | None, typer.Option(help="ISO date/time")] = None,
    until: Annotated[str | None, typer.Option(help="ISO date/time")] = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """The newest call records (the same search as the console's)."""
    query = CallQuery(since=_epoch(since, "since"), until=_epoch(until, "until"), number=number,
                      flow_id=flow, disposition=disposition)
    records = _records(ctx.obj).search(query, tenants=_tenants(tenant), limit=limit,
                                       whole=as_json).records
    if as_json:
        typer.echo(json.dumps([r.as_dict() for r in records], indent=2, default=str))
        return
    typer.echo(f"{'id':8}  {'invite':19}  {'dir':8} {'backend':8} {'from':>14} {'to':>14}  "
               f"{'disposition':11} {'dur s':>6}  {'cause':14} digits")
    for r in records:
        typer.echo(f"{r.id[:8]}  {_when(r.invite_at)}  {r.direction:8} {r.backend:8} "
                   f"{r.from_number[-14:]:>14} {r.to_number[-14:]:>14}  {r.disposition:11} "
                   f"{r.duration_s:6.1f}  {r.hangup_cause[:14]:14} {r.digits}")


@calls_app.command("show")
def calls_show(
    ctx: typer.Context,
    call_id: Annotated[str, typer.Argument(help="record id (or a unique prefix) or SIP Call-ID")],
    tenant: TenantOpt = "*",
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """One call record with its trace."""
    rec = _records(ctx.obj).get(call_id, tenants=_tenants(tenant))
    if rec is None:
        typer.echo(f"no call record matches {call_id!r}", err=True)
        raise typer.Exit(1)
    if as_json:
        typer.echo(json.dumps(rec.as_dict(), indent=2, default=str))
        return
    _print_record(rec)


def _print_record(rec: CallRecord) -> None:
    for name in ("id", "sip_call_id", "backend", "direction", "from_number", "to_number",
                 "disposition",
                 "hangup_cause", "hangup_side", "sip_status", "codec", "digits",
                 "recording_path", "flow_id", "flow_version"):
        typer.echo(f"{name:15} {getattr(rec, name)}")
    typer.echo(f"{'invite':15} {_when(rec.invite_at)}")
    typer.echo(f"{'answer':15} {_when(rec.answer_at)}")
    typer.echo(f"{'end':15} {_when(rec.end_at)}  ({rec.duration_s:.1f} s)")
    typer.echo(f"{'media':15} {json.dumps(rec.media)}")
    if rec.trace:
        typer.echo("trace:")
        t0 = rec.trace[0].get("at", 0)
        for e in rec.trace:
            extra = {k: v for k, v in e.items() if k not in ("at", "kind")}
            typer.echo(f"  +{e.get('at', 0) - t0:7.3f}s  {e.get('kind', '')}  "
                       f"{json.dumps(extra, default=str) if extra else ''}")


def call(
    ctx: typer.Context,
    uri: Annotated[str, typer.Argument(help="whom to call, e.g. sip:1000@127.0.0.1:5090")],
    play: Annotated[Path | None, typer.Option(help="WAV file to play when answered")] = None,
    digits: Annotated[str, typer.Option(
        help="DTMF to send after the prompt: RFC 4733, or in-band tones when the callee "
             "offered no telephone-event")] = "",
    from_user: Annotated[str, typer.Option("--from", help="caller user part")] = "ivr",
    username: Annotated[str | None, typer.Option(help="digest user")] = None,
    password: Annotated[str | None, typer.Option(envvar="IVR_SIP_PASSWORD")] = None,
    wait: Annotated[float, typer.Option(help="seconds to stay on the line after")] = 1.0,
    ring_timeout: Annotated[float, typer.Option(help="seconds to wait for an answer")] = 30.0,
) -> None:
    """Place a test call: play FILE when answered, send digits, hang up, print the record."""
    settings: Settings = ctx.obj
    if play is not None and not play.exists():
        typer.echo(f"error: {play} does not exist", err=True)
        raise typer.Exit(2)
    bad = sorted(set(digits) - set(DTMF_KEYS))
    if bad:
        typer.echo(f"error: --digits: {''.join(bad)!r} are not DTMF keys ({DTMF_KEYS})", err=True)
        raise typer.Exit(2)
    host = settings.sip.listen.rsplit(":", 1)[0]
    settings.sip.listen = f"{host}:0"
    creds = Credentials(username, password or "") if username else None
    rec = asyncio.run(_call(settings, uri, play, digits, from_user=from_user, creds=creds,
                            wait=wait, ring_timeout=ring_timeout))
    _print_record(rec)
    raise typer.Exit(0 if rec.disposition == "answered" else 1)


async def _call(settings: Settings, uri: str, play: Path | None, digits: str, *, from_user: str,
                creds: Credentials | None, wait: float, ring_timeout: float) -> CallRecord:
    # a one-off engine: it must not send the serving engine's queued SMS nor touch its state
    engine = Engine(settings, router=lambda c: demo_app, send_sms=False)
    await engine.start()

    async def app(c: SipCall) -> None:
        if play is not None:
            await c.play(play)
        if digits and c.media.te_pt is not None:
            await c.send_digits(digits)
        elif digits:  # the callee offered no telephone-event: press the keys in-band instead
            c.trace.add("dtmf.inband", digits=digits)
            await c.play_pcm(dtmf_sequence(digits, on_s=0.1, off_s=0.1), f"dtmf:{digits}",
                             BargeIn.NONE)
        await engine.clock.sleep(wait)  # the injected clock, like every other wait
        await c.hangup()

    try:
        assert engine.controller is not None
        rec = await engine.controller.originate(uri, app, from_user=from_user, creds=creds,
                                                ring_timeout_s=ring_timeout)
        await engine.wait_idle()
    finally:
        await engine.stop(drain_s=1.0)
    return rec
