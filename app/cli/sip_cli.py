"""``ivr sip options URI``: the first thing ops try against a new trunk."""

from __future__ import annotations

import asyncio
import time
from typing import Annotated

import typer

from app.config import Settings
from engine.sip.message import SipParseError, SipUri
from engine.sip.security import InboundPolicy
from engine.sip.ua import Credentials, UserAgent

sip_app = typer.Typer(help="SIP tools for trunks and peers.", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    app.add_typer(sip_app, name="sip")


@sip_app.command("options")
def options(
    ctx: typer.Context,
    uri: Annotated[str, typer.Argument(help="e.g. sip:trunk.example.com:5060;transport=tcp")],
    username: Annotated[str | None, typer.Option(help="digest user if the peer challenges")] = None,
    password: Annotated[str | None, typer.Option(envvar="IVR_SIP_PASSWORD")] = None,
    timeout: Annotated[float, typer.Option(help="seconds to wait for an answer")] = 5.0,
) -> None:
    """Send OPTIONS to URI and print the answer (status, round trip, what the peer supports)."""
    settings: Settings = ctx.obj
    try:
        target = SipUri.parse(uri)
    except SipParseError as e:
        typer.echo(f"error: bad URI {uri!r}: {e}", err=True)
        raise typer.Exit(2) from e
    creds = Credentials(username, password or "") if username else None
    code = asyncio.run(_options(settings, target, creds, timeout))
    raise typer.Exit(code)


async def _options(settings: Settings, target: SipUri, creds: Credentials | None,
                   wait_s: float) -> int:
    ua = UserAgent(policy=InboundPolicy.from_config([], {}, settings.sip.realm),
                   user_agent=settings.sip.user_agent)
    transport = (target.params.get("transport") or "udp").lower()
    await ua.start("0.0.0.0", 0, [transport if transport in ("udp", "tcp") else "udp"])
    started = time.perf_counter()
    try:
        resp = await asyncio.wait_for(ua.options(target, creds), wait_s)
    except TimeoutError:
        typer.echo(f"no answer from {target} within {wait_s:g} s", err=True)
        return 1
    except OSError as e:
        typer.echo(f"cannot reach {target}: {e}", err=True)
        return 1
    finally:
        await ua.stop(drain_s=0.5)
    rtt_ms = (time.perf_counter() - started) * 1000
    typer.echo(f"{resp.status} {resp.reason}  ({rtt_ms:.1f} ms)")
    for name in ("Server", "User-Agent", "Allow", "Accept", "Supported"):
        value = resp.headers.get(name)
        if value:
            typer.echo(f"  {name}: {value}")
    return 0 if 200 <= resp.status < 300 else 1
