"""A real console server on a free loopback port, and an HTTP client that logs in like a browser
(cookies, the CSRF header) or uses an API token like a script.

Passwords are hashed with real Argon2id at small cost parameters (the production defaults take
~50 ms each, and the suite logs in hundreds of times); everything else is as deployed.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
from argon2 import PasswordHasher

from app.config import Settings, load_settings
from app.console_setup import build_console, start_console
from console.api.app import ConsoleServer
from console.api.context import ConsoleServices
from console.identity import Identity, User
from console.roles import Role
from console.services.base import Actor
from console.services.testcalls import CallPlacer
from core.bus import EventBus
from core.clock import Clock, SystemClock
from storage.db import open_database
from storage.tenancy import Tenants

FAST_HASHER = PasswordHasher(time_cost=1, memory_cost=8192, parallelism=1)
PASSWORD = "correct horse battery"


@dataclass
class Console:
    url: str
    services: ConsoleServices
    server: ConsoleServer
    settings: Settings
    admin_password: str | None

    def add_user(self, username: str, role: Role | str, tenant: str = "default",
                 password: str = PASSWORD) -> User:
        ids = self.services.identity
        ids.ensure_tenant(tenant)
        return self.services.users.create_user(Actor(_cli()), username, password, role,
                                               tenant=tenant)

    def token(self, username: str, scopes: list[str] | None = None) -> str:
        ids = self.services.identity
        user = ids.user_by_name(username, tenants=Tenants.every())
        token, _ = ids.create_token(user.id, "test", scopes, tenants=Tenants.every())
        return token

    async def client(self, username: str | None = None, password: str = PASSWORD) -> Client:
        c = Client(self.url)
        if username is not None:
            status, body = await c.login(username, password)
            assert status == 200, body
        return c


def _cli() -> Any:
    from console.roles import Principal

    return Principal.cli("test")


def console_settings(tmp_path: Path, **env: str) -> Settings:
    base = {
        "IVR_STORAGE__URL": f"sqlite:///{tmp_path}/ivr.sqlite",
        "IVR_STORAGE__RECORDINGS_DIR": str(tmp_path / "recordings"),
        "IVR_STORAGE__PROMPT_CACHE_DIR": str(tmp_path / "prompts"),
        "IVR_CONSOLE__LISTEN": "127.0.0.1:0",
        "IVR_METRICS__LISTEN": "",
    }
    base.update(env)
    return load_settings(environ=base)


@asynccontextmanager
async def running_console(tmp_path: Path, *, clock: Clock | None = None,
                          bus: EventBus | None = None, placer: CallPlacer | None = None,
                          settings: Settings | None = None, **env: str) -> AsyncIterator[Console]:
    settings = settings or console_settings(tmp_path, **env)
    clock = clock or SystemClock()
    db = open_database(settings.storage.url)
    identity = Identity(db, clock=clock, hasher=FAST_HASHER,
                        idle_s=settings.console.session_idle_s,
                        max_s=settings.console.session_max_s)
    svc = build_console(settings, db, clock=clock, bus=bus, placer=placer, identity=identity)
    server, url, password = await start_console(settings, svc)
    try:
        yield Console(url.rstrip("/"), svc, server, settings, password)
    finally:
        await server.stop()


class Client:
    """Talks to the console like a browser (session cookie + CSRF header) or, after
    :meth:`use_token`, like a script (bearer token, no cookies)."""

    def __init__(self, base: str) -> None:
        self.base = base
        # unsafe: accept cookies from an IP address host (the server is on 127.0.0.1)
        self.jar = aiohttp.CookieJar(unsafe=True, treat_as_secure_origin=[base])
        self.session = aiohttp.ClientSession(cookie_jar=self.jar)
        self.csrf: str | None = None
        self.token: str | None = None

    async def close(self) -> None:
        await self.session.close()

    async def __aenter__(self) -> Client:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def use_token(self, token: str) -> Client:
        self.token = token
        self.jar.clear()
        return self

    async def login(self, username: str, password: str = PASSWORD) -> tuple[int, Any]:
        status, body = await self.call("POST", "/api/auth/login",
                                       json_body={"username": username, "password": password})
        if status == 200:
            self.csrf = body["csrf_token"]
        return status, body

    async def call(self, method: str, path: str, *, json_body: Any = None, data: Any = None,
                   headers: dict[str, str] | None = None, csrf: bool = True,
                   params: Any = None) -> tuple[int, Any]:
        h = dict(headers or {})
        if self.token is not None:
            h.setdefault("Authorization", f"Bearer {self.token}")
        elif csrf and self.csrf and method not in ("GET", "HEAD"):
            h.setdefault("X-CSRF-Token", self.csrf)
        if json_body is not None:
            data = json.dumps(json_body)
            h.setdefault("Content-Type", "application/json")
        async with self.session.request(method, self.base + path, data=data, headers=h,
                                        params=params) as resp:
            raw = await resp.read()
            try:
                body = json.loads(raw) if raw else None
            except (json.JSONDecodeError, UnicodeDecodeError):  # audio, CSV...: the bytes
                body = raw
            return resp.status, body


async def read_events(client: Client, path: str, *, count: int, timeout_s: float = 10.0,
                      until: str | None = None) -> list[dict[str, Any]]:
    """The first ``count`` Server-Sent Events from ``path`` (or every one up to and including
    the first whose event name is ``until``), each as {"event", "id", "data"}."""
    import asyncio

    out: list[dict[str, Any]] = []
    headers = {"Authorization": f"Bearer {client.token}"} if client.token else {}

    async def read() -> None:
        async with client.session.get(client.base + path, headers=headers) as resp:
            assert resp.status == 200, await resp.text()
            event: dict[str, Any] = {}
            async for raw in resp.content:
                line = raw.decode().rstrip("\n")
                if not line:
                    if "data" in event:
                        event["data"] = json.loads(event["data"])
                        out.append(event)
                        if len(out) >= count or event.get("event") == until:
                            return
                    event = {}
                elif line.startswith(":"):
                    continue
                else:
                    key, _, value = line.partition(": ")
                    event[key] = value

    await asyncio.wait_for(read(), timeout_s)
    return out
