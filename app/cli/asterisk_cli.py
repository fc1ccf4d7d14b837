"""``ivr asterisk check|dialplan``: the Asterisk backend from the command line."""

from __future__ import annotations

import asyncio
from typing import Annotated

import typer

from app.config import AsteriskConfig, Settings, parse_hostport
from core.clock import SystemClock
from engine.ami.client import AmiError, AmiSettings, check_login
from engine.ami.dialplan import dialplan_snippet, manager_snippet

asterisk_app = typer.Typer(help="The Asterisk backend (AMI + AudioSocket).", no_args_is_help=True)
CHECK_TIMEOUT_S = 3.0


def register(app: typer.Typer) -> None:
    app.add_typer(asterisk_app, name="asterisk")


def ami_settings(a: AsteriskConfig, timeout_s: float = CHECK_TIMEOUT_S) -> AmiSettings:
    return AmiSettings(host=a.ami_host, port=a.ami_port, username=a.username, secret=a.secret,
                       auth=a.auth, events="off", filters=(), connect_timeout_s=timeout_s)


def login_check(a: AsteriskConfig, timeout_s: float = CHECK_TIMEOUT_S) -> tuple[bool, str]:
    """(ok, what Asterisk said or why the login failed), for ``doctor`` and ``check``."""
    try:
        return True, asyncio.run(check_login(ami_settings(a, timeout_s), SystemClock()))
    except (AmiError, OSError, TimeoutError) as e:
        what = str(e) or type(e).__name__
        return False, f"{a.ami_host}:{a.ami_port}: {what}"


@asterisk_app.command("check")
def check(ctx: typer.Context) -> None:
    """Log in to AMI with [asterisk] settings and log off; exit 1 when that fails."""
    settings: Settings = ctx.obj
    ok, detail = login_check(settings.asterisk)
    typer.echo(f"{'ok' if ok else 'error'}: AMI login as {settings.asterisk.username!r}: {detail}",
               err=not ok)
    raise typer.Exit(0 if ok else 1)


@asterisk_app.command("dialplan")
def dialplan(
    ctx: typer.Context,
    manager: Annotated[bool, typer.Option(help="also print the manager.conf user")] = True,
) -> None:
    """Print the extensions.conf (and manager.conf) lines that hand calls to this engine."""
    a = ctx.obj.asterisk
    audiosocket = a.audiosocket_advertise or a.audiosocket_listen
    typer.echo(dialplan_snippet(audiosocket=audiosocket, inbound_context=a.inbound_context,
                                transfer_context=a.transfer_context,
                                outbound_context=a.outbound_context), nl=False)
    if manager:
        engine_host = parse_hostport(audiosocket, 9092)[0]
        typer.echo("\n" + manager_snippet(username=a.username, ami_host=a.ami_host,
                                          ami_port=a.ami_port, engine_host=engine_host),
                   nl=False)
