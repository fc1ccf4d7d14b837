"""The console's aiohttp application: typed app keys, authentication, CSRF, security headers,
the OpenAPI document, static files, and the server that runs it (``AppRunner``).

Authentication, per operation: an ``Authorization: Bearer ivr_...`` API token, else the
``ivr_session`` cookie; a cookie-authenticated request that changes state must also carry
``X-CSRF-Token`` (the HMAC of its session, also given as the readable ``ivr_csrf`` cookie), so
another site cannot make a logged-in browser act. Cookies are HttpOnly (the session), SameSite
Strict and Secure unless ``[console] cookie_secure`` is off.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import ssl
from typing import Any

from aiohttp import web

from console.api.context import (
    CSRF_COOKIE,
    CSRF_HEADER,
    PASSWORD_CHANGE_OK,
    SERVICES,
    SESSION_COOKIE,
    STATIC_DIR,
    THROTTLE,
    VERSION,
    ConsoleServices,
)
from console.api.errors import ApiError, error_middleware
from console.api.routing import Api, Operation
from console.identity import csrf_for
from console.roles import Principal

log = logging.getLogger("ivr.console")

async def authenticate(request: web.Request, op: Operation) -> Principal | None:
    if op.permission is None:
        return None
    svc = request.app[SERVICES]
    auth = request.headers.get("Authorization", "")
    if auth:
        scheme, _, token = auth.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise ApiError(401, "unauthenticated", "Authorization: use 'Bearer <API token>'")
        principal = await asyncio.to_thread(svc.identity.token_principal, token.strip())
    else:
        cookie = request.cookies.get(SESSION_COOKIE)
        if not cookie:
            raise ApiError(401, "unauthenticated", "log in (POST /api/auth/login) or send an "
                                                   "API token")
        principal = await asyncio.to_thread(svc.identity.session_principal, cookie)
        if request.method not in ("GET", "HEAD", "OPTIONS"):
            sent = request.headers.get(CSRF_HEADER, "")
            if not sent or not hmac.compare_digest(sent, csrf_for(cookie)):
                raise ApiError(403, "csrf", f"missing or wrong {CSRF_HEADER} header (it is in "
                                            f"the login response and the {CSRF_COOKIE} cookie)",
                               CSRF_HEADER)
    if principal.must_change_password and op.operation_id not in PASSWORD_CHANGE_OK:
        raise ApiError(403, "password_change_required",
                       "change your password first (POST /api/auth/password)")
    return principal


@web.middleware
async def security_headers(request: web.Request, handler: Any) -> web.StreamResponse:
    response: web.StreamResponse = await handler(request)
    h = response.headers
    h.setdefault("X-Content-Type-Options", "nosniff")
    h.setdefault("X-Frame-Options", "DENY")
    h.setdefault("Referrer-Policy", "no-referrer")
    if request.path.startswith("/api/"):
        h.setdefault("Cache-Control", "no-store")
    else:
        # media-src blob:: the call review plays the recording it already fetched (once) for
        # the waveform from a blob: URL instead of downloading it a second time
        h.setdefault("Content-Security-Policy",
                     "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'"
                     "; media-src 'self' blob:; frame-ancestors 'none'")
    return response


def build_api() -> Api:
    from console.api import (  # noqa: PLC0415 - they use this
        admin,
        calls,
        campaigns,
        compliance,
        flows,
        inspection,
        stats,
    )

    api = Api()
    for module in (admin, flows, calls, compliance, campaigns, inspection, stats):
        module.register(api)
    return api


def create_app(svc: ConsoleServices) -> web.Application:
    app = web.Application(middlewares=[error_middleware, security_headers],
                          client_max_size=svc.options.max_body_bytes)
    api = build_api()
    app[SERVICES] = svc
    app[THROTTLE] = {}
    api.add_routes(app, authenticate, svc.options.max_upload_bytes)
    document = api.openapi(title="IVR Engine console API", version=VERSION)

    async def openapi(_request: web.Request) -> web.Response:
        return web.json_response(document)

    async def index(_request: web.Request) -> web.FileResponse:
        return web.FileResponse(STATIC_DIR / "index.html")

    app.router.add_get("/api/openapi.json", openapi, name="openapi")
    app.router.add_get("/", index, name="index")
    app.router.add_static("/static/", STATIC_DIR, name="static", follow_symlinks=False)
    return app


class ConsoleServer:
    """The console on its own ``AppRunner``: started by ``ivr run`` next to the engine, or
    alone by ``ivr console``."""

    def __init__(self, svc: ConsoleServices) -> None:
        self.services = svc
        self.app = create_app(svc)
        self._runner: web.AppRunner | None = None
        self.address: tuple[str, int] | None = None

    async def start(self, host: str, port: int, tls: ssl.SSLContext | None = None
                    ) -> tuple[str, int]:
        if self.services.hub is not None:
            self.services.hub.start()
        self._runner = web.AppRunner(self.app, access_log=None, handler_cancellation=True,
                                     shutdown_timeout=2.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, host, port, ssl_context=tls)
        await site.start()
        bound = self._runner.addresses[0]
        self.address = (str(bound[0]), int(bound[1]))
        return self.address

    async def stop(self) -> None:
        if self.services.hub is not None:
            await self.services.hub.stop()
        await self.services.simulator.close()
        await self.services.testcalls.close()
        if self._runner is not None:
            await self._runner.cleanup()
