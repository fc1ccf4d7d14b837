"""Health, login and sessions, users, API tokens, tenants and the audit log."""

from __future__ import annotations

import asyncio

from aiohttp import web

from console.api import schemas as s
from console.api.context import (
    THROTTLE,
    VERSION,
    clear_session_cookies,
    client_ip,
    services,
    set_session_cookies,
)
from console.api.errors import ApiError
from console.api.routing import Api, ApiRequest, PathParam, json_response
from console.audit import AuditEntry, AuditQuery
from console.identity import AuthError, TokenInfo, User, csrf_for
from console.roles import role_permissions
from console.services.base import Actor
from storage.tenancy import Tenants

USER_ID = {"user_id": PathParam(int)}
TOKEN_ID = {"token_id": PathParam(str, r"^[0-9a-f]{1,16}$", 16)}


def user_out(u: User) -> s.UserOut:
    return s.UserOut(id=u.id, username=u.username, role=u.role, tenant=u.tenant,
                     display_name=u.display_name, disabled=u.disabled,
                     must_change_password=u.must_change_password, created_at=u.created_at)


def token_out(t: TokenInfo) -> s.TokenOut:
    return s.TokenOut(id=t.id, user_id=t.user_id, username=t.username, name=t.name,
                      scopes=t.scopes, created_at=t.created_at, expires_at=t.expires_at,
                      last_used_at=t.last_used_at, revoked_at=t.revoked_at)


def audit_out(e: AuditEntry) -> s.AuditOut:
    return s.AuditOut(id=e.id, at=e.at, actor=e.actor, actor_kind=e.actor_kind,
                      tenant=e.tenant, action=e.action, resource=e.resource,
                      before_digest=e.before_digest, after_digest=e.after_digest,
                      detail=e.detail, ip=e.ip)


def actor(req: ApiRequest) -> Actor:
    return Actor(req.who, client_ip(req.request))


def _throttled(req: ApiRequest, username: str) -> None:
    """Too many failed logins for this name or from this address: 429 until they age out."""
    svc = services(req)
    table: dict[str, list[float]] = req.request.app[THROTTLE]
    now = svc.clock.now()
    window, limit = svc.options.login_window_s, svc.options.login_attempts
    for key in (f"u:{username.lower()}", f"ip:{client_ip(req.request)}"):
        recent = [t for t in table.get(key, []) if now - t < window]
        table[key] = recent
        if len(recent) >= limit:
            retry = int(window - (now - recent[0])) + 1
            raise ApiError(429, "too_many_attempts", f"too many failed logins; try again in "
                                                     f"{retry} s", "username",
                           headers={"Retry-After": str(retry)})


def _failed(req: ApiRequest, username: str) -> None:
    now = services(req).clock.now()
    table: dict[str, list[float]] = req.request.app[THROTTLE]
    for key in (f"u:{username.lower()}", f"ip:{client_ip(req.request)}"):
        table.setdefault(key, []).append(now)
    if len(table) > 100_000:  # an address spray: forget the oldest keys
        for key in list(table)[:50_000]:
            table.pop(key, None)


def register(api: Api) -> None:
    @api.op("GET", "/api/health", summary="Is the console up (and is an engine attached)?",
            tag="meta", permission=None, response=s.HealthOut)
    async def health(req: ApiRequest) -> s.HealthOut:
        return s.HealthOut(status="ok", engine=services(req).testcalls.placer is not None,
                           version=VERSION)

    # --- auth ----------------------------------------------------------------------------------

    @api.op("POST", "/api/auth/login", summary="Log in: sets the session and CSRF cookies",
            tag="auth", permission=None, body=s.LoginIn, response=s.SessionOut)
    async def login(req: ApiRequest) -> web.Response:
        body: s.LoginIn = req.body
        svc = services(req)
        _throttled(req, body.username)
        try:
            new = await asyncio.to_thread(
                svc.identity.login, body.username, body.password, ip=client_ip(req.request),
                user_agent=req.request.headers.get("User-Agent", ""))
        except AuthError:
            _failed(req, body.username)
            raise
        out = s.SessionOut(user=user_out(new.user), csrf_token=new.csrf,
                           expires_at=new.expires_at)
        response = json_response(out)
        set_session_cookies(response, new.token, new.csrf, int(svc.identity.max_s),
                            svc.options.cookie_secure)
        return response

    @api.op("POST", "/api/auth/logout", summary="End this session", tag="auth",
            permission="tokens.own", status=204)
    async def logout(req: ApiRequest) -> web.Response:
        cookie = req.request.cookies.get("ivr_session")
        if cookie:
            await asyncio.to_thread(services(req).identity.logout, cookie)
        response = web.Response(status=204)
        clear_session_cookies(response)
        return response

    @api.op("GET", "/api/auth/me", summary="Who am I, and what may I do", tag="auth",
            permission="tokens.own", response=s.MeOut)
    async def me(req: ApiRequest) -> s.MeOut:
        p = req.who
        user = await asyncio.to_thread(services(req).identity.user_by_name, p.username,
                                       tenants=Tenants.every())
        cookie = req.request.cookies.get("ivr_session")
        perms = sorted(role_permissions(p.role) & (p.scopes or role_permissions(p.role)))
        return s.MeOut(user=user_out(user), via=p.via, permissions=perms,
                       csrf_token=csrf_for(cookie) if cookie and p.via == "session" else None)

    @api.op("POST", "/api/auth/password", summary="Change my password (ends my other "
            "sessions: log in again)", tag="auth", permission="tokens.own",
            body=s.PasswordChangeIn, status=204)
    async def change_password(req: ApiRequest) -> web.Response:
        body: s.PasswordChangeIn = req.body
        svc = services(req)
        try:
            await asyncio.to_thread(svc.identity.check_password, req.who.username,
                                    body.current_password)
        except AuthError as e:
            raise ApiError(422, "bad_credentials", "current_password is wrong",
                           "current_password") from e
        assert req.who.user_id is not None
        await asyncio.to_thread(svc.users.set_password, actor(req), req.who.user_id,
                                body.new_password, tenants=Tenants.every())
        response = web.Response(status=204)
        clear_session_cookies(response)
        return response

    # --- users ---------------------------------------------------------------------------------

    @api.op("GET", "/api/users", summary="Users", tag="users", permission="users.manage",
            response=s.UserList)
    async def list_users(req: ApiRequest) -> s.UserList:
        users = await asyncio.to_thread(services(req).identity.users, tenants=Tenants.every())
        return s.UserList(items=[user_out(u) for u in users])

    @api.op("POST", "/api/users", summary="Create a user", tag="users",
            permission="users.manage", body=s.UserCreateIn, response=s.UserOut, status=201)
    async def create_user(req: ApiRequest) -> s.UserOut:
        b: s.UserCreateIn = req.body
        user = await asyncio.to_thread(services(req).users.create_user, actor(req), b.username,
                                       b.password, b.role, tenant=b.tenant,
                                       display_name=b.display_name)
        return user_out(user)

    @api.op("GET", "/api/users/{user_id}", summary="One user", tag="users",
            permission="users.manage", response=s.UserOut, params=USER_ID)
    async def get_user(req: ApiRequest) -> s.UserOut:
        return user_out(await asyncio.to_thread(services(req).identity.user,
                                                req.path["user_id"], tenants=Tenants.every()))

    @api.op("PATCH", "/api/users/{user_id}", summary="Change role, tenant, name; disable",
            tag="users", permission="users.manage", body=s.UserPatchIn, response=s.UserOut,
            params=USER_ID)
    async def update_user(req: ApiRequest) -> s.UserOut:
        b: s.UserPatchIn = req.body
        if req.path["user_id"] == req.who.user_id and (b.disabled or (b.role and
                                                                      b.role != req.who.role)):
            raise ApiError(422, "invalid", "you cannot disable or demote yourself", "role")
        user = await asyncio.to_thread(
            services(req).users.update_user, actor(req), req.path["user_id"],
            tenants=Tenants.every(), role=b.role, tenant=b.tenant,
            display_name=b.display_name, disabled=b.disabled)
        return user_out(user)

    @api.op("PUT", "/api/users/{user_id}/password", summary="Set a user's password (ends "
            "their sessions)", tag="users", permission="users.manage", body=s.PasswordSetIn,
            status=204, params=USER_ID)
    async def set_password(req: ApiRequest) -> None:
        b: s.PasswordSetIn = req.body
        await asyncio.to_thread(services(req).users.set_password, actor(req),
                                req.path["user_id"], b.password, tenants=Tenants.every(),
                                must_change=b.must_change)

    # --- tokens --------------------------------------------------------------------------------

    def token_owner(req: ApiRequest, user_id: int | None) -> int | None:
        """Admins may act on anyone's tokens; everyone else on their own."""
        if user_id is not None and user_id != req.who.user_id:
            if not req.who.can("users.manage"):
                raise ApiError(403, "forbidden", "only admins manage other users' tokens",
                               "user_id")
            return user_id
        return req.who.user_id

    @api.op("GET", "/api/tokens", summary="API tokens (yours; admins: anyone's with user_id)",
            tag="tokens", permission="tokens.own", query=s.TokenQuery, response=s.TokenList)
    async def list_tokens(req: ApiRequest) -> s.TokenList:
        owner = token_owner(req, req.query.user_id)
        tokens = await asyncio.to_thread(services(req).identity.tokens, tenants=Tenants.every(),
                                         user_id=owner)
        return s.TokenList(items=[token_out(t) for t in tokens])

    @api.op("POST", "/api/tokens", summary="Create an API token (shown once)", tag="tokens",
            permission="tokens.own", body=s.TokenCreateIn, response=s.TokenCreated, status=201)
    async def create_token(req: ApiRequest) -> s.TokenCreated:
        b: s.TokenCreateIn = req.body
        owner = token_owner(req, b.user_id)
        if owner is None:
            raise ApiError(422, "invalid", "the command line has no user: pass user_id",
                           "user_id")
        if req.who.via == "token" and b.scopes is None:
            b = b.model_copy(update={"scopes": sorted(req.who.scopes or [])})
        if req.who.via == "token" and not set(b.scopes or []) <= set(req.who.scopes or []):
            raise ApiError(403, "forbidden", "a token cannot create a token with more scopes",
                           "scopes")
        token, info = await asyncio.to_thread(
            services(req).users.create_token, actor(req), owner, b.name, b.scopes,
            tenants=Tenants.every(), expires_in_s=b.expires_in_s)
        return s.TokenCreated(token=token, info=token_out(info))

    @api.op("DELETE", "/api/tokens/{token_id}", summary="Revoke an API token", tag="tokens",
            permission="tokens.own", response=s.TokenOut, params=TOKEN_ID)
    async def revoke_token(req: ApiRequest) -> s.TokenOut:
        owner = None if req.who.can("users.manage") else req.who.user_id
        info = await asyncio.to_thread(services(req).users.revoke_token, actor(req),
                                       req.path["token_id"], tenants=Tenants.every(),
                                       user_id=owner)
        return token_out(info)

    # --- tenants -------------------------------------------------------------------------------

    @api.op("GET", "/api/tenants", summary="Tenants", tag="tenants", permission="tenants.read",
            response=s.TenantList)
    async def list_tenants(req: ApiRequest) -> s.TenantList:
        rows = await asyncio.to_thread(services(req).identity.tenants, tenants=Tenants.every())
        return s.TenantList(items=[s.TenantOut(id=t.id, name=t.name, created_at=t.created_at)
                                   for t in rows])

    @api.op("POST", "/api/tenants", summary="Create a tenant", tag="tenants",
            permission="tenants.manage", body=s.TenantCreateIn, response=s.TenantOut,
            status=201)
    async def create_tenant(req: ApiRequest) -> s.TenantOut:
        b: s.TenantCreateIn = req.body
        t = await asyncio.to_thread(services(req).users.create_tenant, actor(req), b.id, b.name)
        return s.TenantOut(id=t.id, name=t.name, created_at=t.created_at)

    # --- audit ---------------------------------------------------------------------------------

    @api.op("GET", "/api/audit", summary="The audit log, newest first", tag="audit",
            permission="audit.read", query=s.AuditQueryIn, response=s.AuditPageOut,
            description="Staff see every tenant with tenant=* and the operator-wide changes "
                        "(users, tenants, global lists); a client sees its own tenant's.")
    async def audit_log(req: ApiRequest) -> s.AuditPageOut:
        q: s.AuditQueryIn = req.query
        tenants = req.who.tenants_for(q.tenant, allow_every=True)
        query = AuditQuery(actor=q.actor, action=q.action, resource=q.resource, since=q.since,
                           until=q.until)
        page = await asyncio.to_thread(
            services(req).audit.search, query, tenants=tenants,
            include_global=req.who.is_operator, limit=q.limit, cursor=q.cursor)
        return s.AuditPageOut(items=[audit_out(e) for e in page.entries],
                              next_cursor=page.next_cursor)
