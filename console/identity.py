"""Users, tenants, browser sessions and API tokens.

* Passwords: Argon2id (argon2-cffi), re-hashed on login when the parameters are raised. A login
  for an unknown user still spends one hash, so timing does not tell which usernames exist.
* Sessions: a random 256-bit token in an HttpOnly cookie; the database keeps only its SHA-256.
  A session ends after ``idle_s`` without use or ``max_s`` after login, on logout, and when the
  user's password changes or the user is disabled. The CSRF token is an HMAC of the session
  token, so it needs no storage and dies with the session.
* API tokens: ``ivr_<id>_<secret>``, shown once; the database keeps the SHA-256 of the secret
  (256 random bits need no slow hash), the scopes (a subset of the owner's role's permissions),
  an optional expiry, the last use, and the revocation time.

Time comes from the injected clock, so expiry is tested without waiting.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import JSON, Boolean, Float, ForeignKey, Integer, String, select
from sqlalchemy.orm import Mapped, mapped_column

from console.roles import Principal, Role, role_permissions
from core.clock import Clock, SystemClock
from storage.db import Base, Database
from storage.tenancy import DEFAULT_TENANT, Tenants, check_tenant_id

USERNAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@-]{1,63}$")
MIN_PASSWORD_CHARS = 10
TOKEN_PREFIX = "ivr_"
SESSION_TOUCH_S = 60.0  # write last_seen at most this often per session (not on every request)


class IdentityError(ValueError):
    """Bad input to an identity operation; ``field`` names what was wrong."""

    def __init__(self, message: str, field: str | None = None, code: str = "invalid") -> None:
        super().__init__(message)
        self.field = field
        self.code = code


class NotFound(LookupError):
    pass


class AuthError(Exception):
    """Not authenticated: ``code`` is unauthenticated, session_expired, bad_credentials, ..."""

    def __init__(self, message: str, code: str = "unauthenticated") -> None:
        super().__init__(message)
        self.code = code


class TenantRow(Base):
    __tablename__ = "tenants"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[float] = mapped_column(Float)


class UserRow(Base):
    __tablename__ = "users"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    role: Mapped[str] = mapped_column(String(16))
    tenant: Mapped[str] = mapped_column(String(64), index=True)
    display_name: Mapped[str] = mapped_column(String(200), default="")
    disabled: Mapped[bool] = mapped_column(Boolean, default=False)
    must_change_password: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[float] = mapped_column(Float)
    password_changed_at: Mapped[float] = mapped_column(Float)


class SessionRow(Base):
    __tablename__ = "user_sessions"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)  # sha256 of the cookie value
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[float] = mapped_column(Float)
    last_seen_at: Mapped[float] = mapped_column(Float)
    expires_at: Mapped[float] = mapped_column(Float)
    ip: Mapped[str] = mapped_column(String(64), default="")
    user_agent: Mapped[str] = mapped_column(String(200), default="")


class TokenRow(Base):
    __tablename__ = "api_tokens"
    id: Mapped[str] = mapped_column(String(16), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(100))
    secret_hash: Mapped[str] = mapped_column(String(64))
    scopes: Mapped[Any] = mapped_column(JSON)
    created_at: Mapped[float] = mapped_column(Float)
    expires_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    last_used_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    revoked_at: Mapped[float | None] = mapped_column(Float, nullable=True)


@dataclass(frozen=True, slots=True)
class User:
    id: int
    username: str
    role: Role
    tenant: str
    display_name: str
    disabled: bool
    must_change_password: bool
    created_at: float

    def principal(self, via: str = "session", scopes: frozenset[str] | None = None,
                  token_id: str | None = None) -> Principal:
        # A generated password must be changed before its sessions do anything; a token was
        # minted on purpose (by the user or the operator) and is not held back by it.
        return Principal(self.id, self.username, self.role, self.tenant, via, scopes, token_id,
                         self.must_change_password and via == "session")

    def public(self) -> dict[str, Any]:
        """What audit digests are computed over (never the password hash)."""
        return {"id": self.id, "username": self.username, "role": self.role.value,
                "tenant": self.tenant, "display_name": self.display_name,
                "disabled": self.disabled}


@dataclass(frozen=True, slots=True)
class Tenant:
    id: str
    name: str
    created_at: float


@dataclass(frozen=True, slots=True)
class TokenInfo:
    id: str
    user_id: int
    username: str
    name: str
    scopes: list[str]
    created_at: float
    expires_at: float | None
    last_used_at: float | None
    revoked_at: float | None


@dataclass(frozen=True, slots=True)
class NewSession:
    token: str  # the cookie value (shown to the browser once, never stored)
    csrf: str
    expires_at: float
    user: User


def _user(r: UserRow) -> User:
    return User(r.id, r.username, Role(r.role), r.tenant, r.display_name, r.disabled,
                r.must_change_password, r.created_at)


def _sha256(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def csrf_for(session_token: str) -> str:
    mac = hmac.new(session_token.encode(), b"ivr-csrf", hashlib.sha256).digest()
    return base64.urlsafe_b64encode(mac).decode().rstrip("=")


def check_password_strength(password: str) -> None:
    if len(password) < MIN_PASSWORD_CHARS:
        raise IdentityError(f"password: at least {MIN_PASSWORD_CHARS} characters", "password",
                            "weak_password")
    if len(password) > 1024:
        raise IdentityError("password: at most 1024 characters", "password", "weak_password")


class Identity:
    """The one service behind ``ivr users ...`` and the console's auth, users and tokens."""

    def __init__(self, db: Database, *, clock: Clock | None = None,
                 hasher: PasswordHasher | None = None, idle_s: float = 8 * 3600,
                 max_s: float = 7 * 86400) -> None:
        self.db = db
        self.clock = clock or SystemClock()
        self.hasher = hasher or PasswordHasher()
        self.idle_s = idle_s
        self.max_s = max_s
        self._dummy_hash = self.hasher.hash(secrets.token_urlsafe(16))

    # --- tenants -------------------------------------------------------------------------------

    def ensure_tenant(self, tenant_id: str, name: str | None = None) -> Tenant:
        check_tenant_id(tenant_id)
        with self.db.session() as s:
            row = s.get(TenantRow, tenant_id)
            if row is None:
                row = TenantRow(id=tenant_id, name=name or tenant_id, created_at=self.clock.wall())
                s.add(row)
            return Tenant(row.id, row.name, row.created_at)

    def create_tenant(self, tenant_id: str, name: str) -> Tenant:
        check_tenant_id(tenant_id)
        with self.db.session() as s:
            if s.get(TenantRow, tenant_id) is not None:
                raise IdentityError(f"tenant {tenant_id!r} exists", "id", "conflict")
            s.add(TenantRow(id=tenant_id, name=name, created_at=self.clock.wall()))
        return Tenant(tenant_id, name, self.clock.wall())

    def tenants(self, *, tenants: Tenants) -> list[Tenant]:
        with self.db.session() as s:
            rows = s.scalars(select(TenantRow).where(tenants.where(TenantRow.id))
                             .order_by(TenantRow.id))
            return [Tenant(r.id, r.name, r.created_at) for r in rows]

    def tenant_exists(self, tenant_id: str) -> bool:
        with self.db.session() as s:
            return s.get(TenantRow, tenant_id) is not None

    # --- users ---------------------------------------------------------------------------------

    def create_user(self, username: str, password: str, role: Role | str, *,
                    tenant: str = DEFAULT_TENANT, display_name: str = "",
                    must_change_password: bool = False) -> User:
        if not USERNAME_RE.match(username or ""):
            raise IdentityError("username: 2-64 letters, digits, '_', '.', '@', '-'", "username")
        try:
            role = Role(role)
        except ValueError as e:
            raise IdentityError(f"role: {role!r} is not one of "
                                f"{', '.join(r.value for r in Role)}", "role") from e
        check_tenant_id(tenant)
        check_password_strength(password)
        if not self.tenant_exists(tenant):
            raise IdentityError(f"tenant: {tenant!r} does not exist (create it first)", "tenant")
        now = self.clock.wall()
        row = UserRow(username=username, password_hash=self.hasher.hash(password),
                      role=role.value, tenant=tenant, display_name=display_name,
                      disabled=False, must_change_password=must_change_password,
                      created_at=now, password_changed_at=now)
        with self.db.session() as s:
            if s.scalar(select(UserRow.id).where(UserRow.username == username)) is not None:
                raise IdentityError(f"username: {username!r} is taken", "username", "conflict")
            s.add(row)
            s.flush()
            return _user(row)

    def users(self, *, tenants: Tenants) -> list[User]:
        with self.db.session() as s:
            rows = s.scalars(select(UserRow).where(tenants.where(UserRow.tenant))
                             .order_by(UserRow.username))
            return [_user(r) for r in rows]

    def has_users(self) -> bool:
        with self.db.session() as s:
            return s.scalar(select(UserRow.id).limit(1)) is not None

    def user(self, user_id: int, *, tenants: Tenants) -> User:
        with self.db.session() as s:
            row = s.scalar(select(UserRow).where(UserRow.id == user_id,
                                                 tenants.where(UserRow.tenant)))
            if row is None:
                raise NotFound(f"no user {user_id}")
            return _user(row)

    def user_by_name(self, username: str, *, tenants: Tenants) -> User:
        with self.db.session() as s:
            row = s.scalar(select(UserRow).where(UserRow.username == username,
                                                 tenants.where(UserRow.tenant)))
            if row is None:
                raise NotFound(f"no user {username!r}")
            return _user(row)

    def update_user(self, user_id: int, *, tenants: Tenants, role: Role | str | None = None,
                    tenant: str | None = None, display_name: str | None = None,
                    disabled: bool | None = None) -> tuple[User, User]:
        """(before, after). Disabling a user or moving it ends its sessions."""
        with self.db.session() as s:
            row = s.scalar(select(UserRow).where(UserRow.id == user_id,
                                                 tenants.where(UserRow.tenant)))
            if row is None:
                raise NotFound(f"no user {user_id}")
            before = _user(row)
            if role is not None:
                try:
                    row.role = Role(role).value
                except ValueError as e:
                    raise IdentityError(f"role: {role!r} is not a role", "role") from e
            if tenant is not None:
                check_tenant_id(tenant)
                if s.get(TenantRow, tenant) is None:
                    raise IdentityError(f"tenant: {tenant!r} does not exist", "tenant")
                row.tenant = tenant
            if display_name is not None:
                row.display_name = display_name
            if disabled is not None:
                row.disabled = disabled
            after = _user(row)
            if after.disabled or after.tenant != before.tenant or after.role != before.role:
                self._end_sessions(s, user_id)
            return before, after

    def set_password(self, user_id: int, password: str, *, tenants: Tenants,
                     must_change: bool = False) -> User:
        """New password; every session of the user ends (tokens stay: revoke them apart)."""
        check_password_strength(password)
        with self.db.session() as s:
            row = s.scalar(select(UserRow).where(UserRow.id == user_id,
                                                 tenants.where(UserRow.tenant)))
            if row is None:
                raise NotFound(f"no user {user_id}")
            row.password_hash = self.hasher.hash(password)
            row.password_changed_at = self.clock.wall()
            row.must_change_password = must_change
            self._end_sessions(s, user_id)
            return _user(row)

    @staticmethod
    def _end_sessions(s: Any, user_id: int) -> None:
        for sess in s.scalars(select(SessionRow).where(SessionRow.user_id == user_id)):
            s.delete(sess)

    def check_password(self, username: str, password: str) -> User:
        """The user if the password is right and the user enabled; else AuthError (the same
        for a wrong password and an unknown user)."""
        with self.db.session() as s:
            row = s.scalar(select(UserRow).where(UserRow.username == username))
            stored = row.password_hash if row is not None else self._dummy_hash
            try:
                self.hasher.verify(stored, password)
                ok = row is not None
            except (VerificationError, InvalidHashError):
                ok = False
            if not ok or row is None:
                raise AuthError("wrong username or password", "bad_credentials")
            if row.disabled:
                raise AuthError("this user is disabled", "user_disabled")
            if self.hasher.check_needs_rehash(row.password_hash):
                row.password_hash = self.hasher.hash(password)
            return _user(row)

    # --- sessions ------------------------------------------------------------------------------

    def login(self, username: str, password: str, *, ip: str = "",
              user_agent: str = "") -> NewSession:
        user = self.check_password(username, password)
        token = secrets.token_urlsafe(32)
        now = self.clock.wall()
        expires = now + self.max_s
        with self.db.session() as s:
            s.add(SessionRow(id=_sha256(token), user_id=user.id, created_at=now,
                             last_seen_at=now, expires_at=expires, ip=ip[:64],
                             user_agent=user_agent[:200]))
        return NewSession(token, csrf_for(token), expires, user)

    def session_principal(self, token: str) -> Principal:
        """The principal of a session cookie, or AuthError (expired sessions are deleted)."""
        now = self.clock.wall()
        with self.db.session() as s:
            sess = s.get(SessionRow, _sha256(token))
            if sess is None:
                raise AuthError("not logged in (or the session ended)", "unauthenticated")
            if now >= sess.expires_at or now - sess.last_seen_at >= self.idle_s:
                s.delete(sess)
                raise AuthError("the session expired: log in again", "session_expired")
            row = s.get(UserRow, sess.user_id)
            if row is None or row.disabled:
                s.delete(sess)
                raise AuthError("this user is disabled", "user_disabled")
            if now - sess.last_seen_at >= SESSION_TOUCH_S:
                sess.last_seen_at = now
            return _user(row).principal("session")

    def logout(self, token: str) -> None:
        with self.db.session() as s:
            sess = s.get(SessionRow, _sha256(token))
            if sess is not None:
                s.delete(sess)

    # --- API tokens ----------------------------------------------------------------------------

    def create_token(self, user_id: int, name: str, scopes: list[str] | None = None, *,
                     tenants: Tenants, expires_in_s: float | None = None) -> tuple[str, TokenInfo]:
        """(the token, shown once; its record). Scopes default to everything the owner's role
        allows and can never exceed it."""
        owner = self.user(user_id, tenants=tenants)
        allowed = role_permissions(owner.role)
        wanted = set(scopes) if scopes is not None else set(allowed)
        beyond = sorted(wanted - allowed)
        if beyond:
            raise IdentityError(f"scopes: {', '.join(beyond)} not allowed for the {owner.role} "
                                "role", "scopes")
        if not name.strip() or len(name) > 100:
            raise IdentityError("name: 1-100 characters", "name")
        if expires_in_s is not None and expires_in_s <= 0:
            raise IdentityError("expires_in_s: must be positive", "expires_in_s")
        token_id = secrets.token_hex(6)
        secret = secrets.token_urlsafe(32)
        now = self.clock.wall()
        row = TokenRow(id=token_id, user_id=user_id, name=name.strip(),
                       secret_hash=_sha256(secret), scopes=sorted(wanted), created_at=now,
                       expires_at=now + expires_in_s if expires_in_s else None)
        with self.db.session() as s:
            s.add(row)
        return f"{TOKEN_PREFIX}{token_id}_{secret}", self._token_info(row, owner.username)

    @staticmethod
    def _token_info(row: TokenRow, username: str) -> TokenInfo:
        return TokenInfo(row.id, row.user_id, username, row.name, list(row.scopes),
                         row.created_at, row.expires_at, row.last_used_at, row.revoked_at)

    def tokens(self, *, tenants: Tenants, user_id: int | None = None) -> list[TokenInfo]:
        with self.db.session() as s:
            q = (select(TokenRow, UserRow.username).join(UserRow, UserRow.id == TokenRow.user_id)
                 .where(tenants.where(UserRow.tenant)).order_by(TokenRow.created_at))
            if user_id is not None:
                q = q.where(TokenRow.user_id == user_id)
            return [self._token_info(t, name) for t, name in s.execute(q).all()]

    def revoke_token(self, token_id: str, *, tenants: Tenants,
                     user_id: int | None = None) -> TokenInfo:
        with self.db.session() as s:
            q = (select(TokenRow, UserRow.username).join(UserRow, UserRow.id == TokenRow.user_id)
                 .where(TokenRow.id == token_id, tenants.where(UserRow.tenant)))
            if user_id is not None:
                q = q.where(TokenRow.user_id == user_id)
            found = s.execute(q).first()
            if found is None:
                raise NotFound(f"no token {token_id}")
            row, name = found
            if row.revoked_at is None:
                row.revoked_at = self.clock.wall()
            return self._token_info(row, name)

    def token_principal(self, token: str) -> Principal:
        if not token.startswith(TOKEN_PREFIX) or token.count("_") < 2:
            raise AuthError("not an API token", "unauthenticated")
        token_id, _, secret = token[len(TOKEN_PREFIX):].partition("_")
        now = self.clock.wall()
        with self.db.session() as s:
            row = s.get(TokenRow, token_id)
            if row is None or not hmac.compare_digest(row.secret_hash, _sha256(secret)):
                raise AuthError("unknown API token", "unauthenticated")
            if row.revoked_at is not None:
                raise AuthError("this API token was revoked", "token_revoked")
            if row.expires_at is not None and now >= row.expires_at:
                raise AuthError("this API token expired", "token_expired")
            user = s.get(UserRow, row.user_id)
            if user is None or user.disabled:
                raise AuthError("the token's user is disabled", "user_disabled")
            if row.last_used_at is None or now - row.last_used_at >= SESSION_TOUCH_S:
                row.last_used_at = now
            return _user(user).principal("token", frozenset(row.scopes), row.id)

    # --- first start ---------------------------------------------------------------------------

    def bootstrap_admin(self, username: str = "admin") -> str | None:
        """On a database without users: create ``username`` (admin, tenant default) with a
        generated password it must change, and return the password (shown once). None when
        users exist."""
        self.ensure_tenant(DEFAULT_TENANT, "Default")
        if self.has_users():
            return None
        password = secrets.token_urlsafe(12)
        self.create_user(username, password, Role.ADMIN, tenant=DEFAULT_TENANT,
                         display_name="Administrator", must_change_password=True)
        return password
