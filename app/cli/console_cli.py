"""``ivr console``, ``ivr users ...``, ``ivr tenants ...``, ``ivr audit`` and ``ivr db ...``.

The user and tenant commands call the same services as the console's admin API (and are audited
the same way, as ``<unix user> (cli)``); ``ivr console`` serves the console without an engine,
for a box that only configures.
"""

from __future__ import annotations

import asyncio
import getpass
import json
import os
import secrets
import signal
import sys
import time
from dataclasses import asdict
from datetime import datetime
from typing import Annotated, Any

import typer

from app.cli.context import settings_of
from app.config import Settings
from console.roles import PERMISSIONS, Principal, Role
from console.services.base import Actor
from storage.tenancy import Tenants

users_app = typer.Typer(help="Console users and their API tokens.", no_args_is_help=True)
tenants_app = typer.Typer(help="Tenants (enterprise clients).", no_args_is_help=True)
db_app = typer.Typer(help="The database schema (Alembic migrations).", no_args_is_help=True)
JsonOpt = Annotated[bool, typer.Option("--json", help="machine-readable output")]


def register(app: typer.Typer) -> None:
    app.command("console")(console)
    app.command("audit")(audit)
    app.add_typer(users_app, name="users")
    app.add_typer(tenants_app, name="tenants")
    app.add_typer(db_app, name="db")


def cli_actor() -> Actor:
    """The operator at the shell, named for the audit log."""
    name = os.environ.get("SUDO_USER") or getpass.getuser()
    return Actor(Principal.cli(name), "")


def _ops(ctx: typer.Context) -> Any:
    from console.audit import AuditLog  # noqa: PLC0415
    from console.identity import Identity  # noqa: PLC0415
    from console.services.users import UserOps  # noqa: PLC0415
    from storage.db import open_database  # noqa: PLC0415

    s = settings_of(ctx)
    db = open_database(s.storage.url)
    identity = Identity(db, idle_s=s.console.session_idle_s, max_s=s.console.session_max_s)
    return UserOps(identity, AuditLog(db))


def _fail(message: str, code: int = 2) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(code)


def _password(given_stdin: bool, *, confirm: bool = True) -> tuple[str, bool]:
    """(password, generated): from stdin, a prompt on a terminal, else a generated one."""
    if given_stdin:
        return sys.stdin.readline().rstrip("\n"), False
    if sys.stdin.isatty():
        return typer.prompt("password", hide_input=True, confirmation_prompt=confirm), False
    return secrets.token_urlsafe(12), True


def _user(ops: Any, username: str) -> Any:
    from console.identity import NotFound  # noqa: PLC0415

    try:
        return ops.identity.user_by_name(username, tenants=Tenants.every())
    except NotFound as e:
        raise _fail(f"no user {username!r}") from e


@users_app.command("add")
def users_add(
    ctx: typer.Context,
    username: str,
    role: Annotated[Role, typer.Option(help="admin, ops, designer, qa or client")],
    tenant: Annotated[str, typer.Option(help="the user's tenant (clients see only it)")]
    = "default",
    display_name: Annotated[str, typer.Option(help="shown in the console")] = "",
    password_stdin: Annotated[bool, typer.Option(help="read the password from stdin")] = False,
) -> None:
    """Create a console user (a password is generated and shown once if none is given)."""
    from console.identity import IdentityError  # noqa: PLC0415

    ops = _ops(ctx)
    password, generated = _password(password_stdin)
    try:
        user = ops.create_user(cli_actor(), username, password, role, tenant=tenant,
                               display_name=display_name, must_change_password=generated)
    except IdentityError as e:
        raise _fail(str(e)) from e
    typer.echo(f"created {user.username} ({user.role}, tenant {user.tenant})")
    if generated:
        typer.echo(f"password: {password}   (shown once; to be changed at first login)")


@users_app.command("list")
def users_list(ctx: typer.Context, as_json: JsonOpt = False) -> None:
    """Every user: role, tenant, state."""
    users = _ops(ctx).identity.users(tenants=Tenants.every())
    if as_json:
        typer.echo(json.dumps([u.public() for u in users], indent=2))
        return
    typer.echo(f"{'id':>4}  {'username':20} {'role':9} {'tenant':16} state")
    for u in users:
        state = "disabled" if u.disabled else ("must change password"
                                               if u.must_change_password else "active")
        typer.echo(f"{u.id:>4}  {u.username:20} {u.role:9} {u.tenant:16} {state}")


@users_app.command("passwd")
def users_passwd(ctx: typer.Context, username: str,
                 password_stdin: Annotated[bool, typer.Option(help="read it from stdin")]
                 = False) -> None:
    """Set a user's password (ends the user's sessions)."""
    from console.identity import IdentityError  # noqa: PLC0415

    ops = _ops(ctx)
    user = _user(ops, username)
    password, generated = _password(password_stdin)
    try:
        ops.set_password(cli_actor(), user.id, password, tenants=Tenants.every(),
                         must_change=generated)
    except IdentityError as e:
        raise _fail(str(e)) from e
    typer.echo(f"password of {username} changed")
    if generated:
        typer.echo(f"password: {password}   (shown once; to be changed at first login)")


@users_app.command("disable")
def users_disable(ctx: typer.Context, username: str,
                  enable: Annotated[bool, typer.Option("--enable", help="enable instead")]
                  = False) -> None:
    """Disable (or --enable) a user; a disabled user's sessions and tokens stop working."""
    ops = _ops(ctx)
    user = _user(ops, username)
    ops.update_user(cli_actor(), user.id, tenants=Tenants.every(), disabled=not enable)
    typer.echo(f"{username} {'enabled' if enable else 'disabled'}")


@users_app.command("token")
def users_token(
    ctx: typer.Context,
    username: str,
    name: Annotated[str, typer.Option(help="what the token is for")] = "cli",
    scope: Annotated[list[str] | None, typer.Option(
        "--scope", help=f"a permission (repeatable; default: all of the role's): "
                        f"{', '.join(sorted(PERMISSIONS))}")] = None,
    expires_days: Annotated[float | None, typer.Option(help="days until it expires")] = None,
    revoke: Annotated[str | None, typer.Option(help="revoke the token with this id instead")]
    = None,
    list_: Annotated[bool, typer.Option("--list", help="list the user's tokens")] = False,
) -> None:
    """Create an API token for USERNAME (printed once; only its hash is stored), --list them,
    or --revoke one."""
    from console.identity import IdentityError, NotFound  # noqa: PLC0415

    ops = _ops(ctx)
    user = _user(ops, username)
    if list_:
        for t in ops.identity.tokens(tenants=Tenants.every(), user_id=user.id):
            state = "revoked" if t.revoked_at else "active"
            typer.echo(f"{t.id}  {t.name:20} {state:8} scopes: {', '.join(t.scopes)}")
        return
    if revoke:
        try:
            ops.revoke_token(cli_actor(), revoke, tenants=Tenants.every(), user_id=user.id)
        except NotFound as e:
            raise _fail(str(e)) from e
        typer.echo(f"token {revoke} revoked")
        return
    try:
        token, info = ops.create_token(cli_actor(), user.id, name, scope,
                                       tenants=Tenants.every(),
                                       expires_in_s=expires_days * 86400 if expires_days
                                       else None)
    except IdentityError as e:
        raise _fail(str(e)) from e
    typer.echo(f"token {info.id} for {username}, scopes: {', '.join(info.scopes)}")
    typer.echo(token)


@tenants_app.command("add")
def tenants_add(ctx: typer.Context, tenant_id: str, name: str) -> None:
    """Create a tenant."""
    from console.identity import IdentityError  # noqa: PLC0415
    from storage.tenancy import TenantError  # noqa: PLC0415

    try:
        t = _ops(ctx).create_tenant(cli_actor(), tenant_id, name)
    except (IdentityError, TenantError) as e:
        raise _fail(str(e)) from e
    typer.echo(f"created tenant {t.id} ({t.name})")


@tenants_app.command("list")
def tenants_list(ctx: typer.Context) -> None:
    """Every tenant."""
    for t in _ops(ctx).identity.tenants(tenants=Tenants.every()):
        typer.echo(f"{t.id:24} {t.name}")


def _epoch(value: str | None, what: str) -> float | None:
    if value is None:
        return None
    try:
        dt = datetime.fromisoformat(value)
    except ValueError as e:
        raise _fail(f"--{what}: {value!r} is not an ISO date/time") from e
    return dt.timestamp()


def audit(
    ctx: typer.Context,
    tenant: Annotated[str, typer.Option(help="a tenant, or * for all")] = "*",
    actor: Annotated[str | None, typer.Option(help="who (exact)")] = None,
    action: Annotated[str | None, typer.Option(help="e.g. flow.publish, or a prefix 'flow.'")]
    = None,
    since: Annotated[str | None, typer.Option(help="ISO date/time")] = None,
    until: Annotated[str | None, typer.Option(help="ISO date/time")] = None,
    limit: Annotated[int, typer.Option(help="how many, newest first")] = 50,
    as_json: JsonOpt = False,
) -> None:
    """The audit log of configuration changes: who, when, tenant, what, before/after digest."""
    from console.audit import AuditLog, AuditQuery  # noqa: PLC0415
    from storage.db import open_database  # noqa: PLC0415

    log = AuditLog(open_database(settings_of(ctx).storage.url))
    tenants = Tenants.every() if tenant == "*" else Tenants.one(tenant)
    page = log.search(AuditQuery(actor=actor, action=action, since=_epoch(since, "since"),
                                 until=_epoch(until, "until")),
                      tenants=tenants, include_global=True, limit=limit)
    if as_json:
        typer.echo(json.dumps([asdict(e) for e in page.entries], indent=2,
                              ensure_ascii=False))
        return
    for e in page.entries:
        when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(e.at))
        digests = f"{(e.before_digest or '-')[:12]} -> {(e.after_digest or '-')[:12]}"
        typer.echo(f"{when}  {e.tenant or '(global)':12} {e.actor:24} {e.action:20} "
                   f"{e.resource:32} {digests}")


def console(
    ctx: typer.Context,
    listen: Annotated[str | None, typer.Option(help="HOST:PORT (default [console] listen)")]
    = None,
) -> None:
    """Serve the console alone (no engine: no live events or test calls) until Ctrl-C."""
    settings = settings_of(ctx)
    if listen:
        settings.console.listen = listen
    if not settings.console.listen:
        raise _fail("[console] listen is off; pass --listen HOST:PORT")
    asyncio.run(_serve_console(settings))


async def _serve_console(settings: Settings) -> None:
    from app.console_setup import build_console, start_console  # noqa: PLC0415
    from storage.db import open_database  # noqa: PLC0415

    loop = asyncio.get_running_loop()
    db = await loop.run_in_executor(None, open_database, settings.storage.url)
    svc = await loop.run_in_executor(None, build_console, settings, db)
    server, url, password = await start_console(settings, svc)
    print_console(url, settings.console.bootstrap_admin, password, engine=False)
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await server.stop()


def print_console(url: str, admin: str, password: str | None, *, engine: bool) -> None:
    """How to reach and log in to the console (``make run`` shows this)."""
    what = "" if engine else " (no engine here: no live events or test calls)"
    typer.echo(f"console: {url}{what}  (API: {url}api/openapi.json)")
    if password is not None:
        typer.echo(f"console: first start: created user '{admin}' with password {password} "
                   "(shown once; you must change it at first login)")
    else:
        typer.echo("console: log in with your console user (`ivr users add NAME --role admin` "
                   "makes one, `ivr users passwd NAME` resets a password)")


@db_app.command("upgrade")
def db_upgrade(ctx: typer.Context) -> None:
    """Apply every pending migration (every command also does this when it opens the
    database)."""
    from storage.db import open_database  # noqa: PLC0415
    from storage.migrate import current_revision  # noqa: PLC0415

    db = open_database(settings_of(ctx).storage.url)
    with db.engine.connect() as conn:
        typer.echo(f"schema at revision {current_revision(conn)}")


@db_app.command("sql")
def db_sql(url: Annotated[str, typer.Option(help="dialect to render for")]
           = "postgresql://ivr@localhost/ivr") -> None:
    """Print the SQL the migrations run (e.g. for a DBA to review on PostgreSQL)."""
    from storage.migrate import offline_sql  # noqa: PLC0415

    typer.echo(offline_sql(url))


@db_app.command("revision")
def db_revision(ctx: typer.Context, message: Annotated[str, typer.Option("-m")]) -> None:
    """Write a new migration from the difference between the models and the database (run it
    against a database at head; review the script before committing it)."""
    from app.db_models import metadata  # noqa: PLC0415
    from storage.db import open_database  # noqa: PLC0415
    from storage.migrate import revision  # noqa: PLC0415

    url = settings_of(ctx).storage.url
    open_database(url)
    script = revision(url, message, metadata)
    typer.echo(f"wrote {getattr(script, 'path', script)}")
