"""The API's request and response models: one definition validates input and generates the
OpenAPI document. Inputs forbid unknown fields (a typo is a 422 naming it, not a silent no-op)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from console.roles import Role

TENANT_PATTERN = r"^(\*|[A-Za-z0-9][A-Za-z0-9_.-]{0,63})$"
FLOW_ID_PATTERN = r"^[A-Za-z_][A-Za-z0-9_\-]{0,63}$"
NUMBER_PATTERN = r"^[+0-9*#A-Za-z_.\-]{1,64}$"
MAX_ID = 2**31 - 1  # ids, revisions and versions fit a 32-bit SQL integer everywhere


class In(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Out(BaseModel):
    pass


# --- errors and common -------------------------------------------------------------------------


class ErrorBody(Out):
    code: str = Field(description="machine-readable: invalid, not_found, conflict, ...")
    message: str
    field: str | None = Field(description="the input field at fault, e.g. body.document.id")
    details: list[dict[str, Any]] | None = None


class ErrorEnvelope(Out):
    error: ErrorBody


class TenantQuery(In):
    tenant: str | None = Field(None, pattern=TENANT_PATTERN,
                               description="the tenant to act on (staff only; clients: theirs)")


class PageQuery(TenantQuery):
    cursor: str | None = Field(None, max_length=500, description="next_cursor of the last page")
    limit: int = Field(50, ge=1, le=200)


# --- auth, users, tokens, tenants --------------------------------------------------------------


class LoginIn(In):
    username: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=1024)


class UserOut(Out):
    id: int
    username: str
    role: Role
    tenant: str
    display_name: str
    disabled: bool
    must_change_password: bool
    created_at: float


class SessionOut(Out):
    user: UserOut
    csrf_token: str = Field(description="send as X-CSRF-Token on state-changing requests")
    expires_at: float


class MeOut(Out):
    user: UserOut
    via: str
    permissions: list[str]
    csrf_token: str | None


class PasswordChangeIn(In):
    current_password: str = Field(min_length=1, max_length=1024)
    new_password: str = Field(min_length=1, max_length=1024)


class UserCreateIn(In):
    username: str = Field(min_length=2, max_length=64)
    password: str = Field(min_length=1, max_length=1024)
    role: Role
    tenant: str = Field("default", pattern=TENANT_PATTERN)
    display_name: str = Field("", max_length=200)


class UserPatchIn(In):
    role: Role | None = None
    tenant: str | None = Field(None, pattern=TENANT_PATTERN)
    display_name: str | None = Field(None, max_length=200)
    disabled: bool | None = None


class PasswordSetIn(In):
    password: str = Field(min_length=1, max_length=1024)
    must_change: bool = True


class UserList(Out):
    items: list[UserOut]


class TokenOut(Out):
    id: str
    user_id: int
    username: str
    name: str
    scopes: list[str]
    created_at: float
    expires_at: float | None
    last_used_at: float | None
    revoked_at: float | None


class TokenCreateIn(In):
    name: str = Field(min_length=1, max_length=100)
    scopes: list[str] | None = Field(None, max_length=50,
                                     description="permissions; default: all of your role's")
    expires_in_s: float | None = Field(None, gt=0, le=10 * 365 * 86400)
    user_id: int | None = Field(None, ge=1, le=MAX_ID,
                                description="admins: a token for another user")


class TokenCreated(Out):
    token: str = Field(description="shown once: store it now")
    info: TokenOut


class TokenList(Out):
    items: list[TokenOut]


class TokenQuery(In):
    user_id: int | None = Field(None, ge=1, le=MAX_ID)


class TenantOut(Out):
    id: str
    name: str
    created_at: float


class TenantCreateIn(In):
    id: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
    name: str = Field(min_length=1, max_length=200)


class TenantList(Out):
    items: list[TenantOut]


# --- calls, audit ------------------------------------------------------------------------------


class CallQueryIn(PageQuery):
    since: float | None = Field(None, description="epoch seconds, inclusive")
    until: float | None = Field(None, description="epoch seconds, exclusive")
    number: str | None = Field(None, max_length=64, description="caller or callee; '*' suffix: "
                                                                "prefix")
    flow_id: str | None = Field(None, max_length=64)
    disposition: str | None = Field(None, max_length=32)
    direction: Literal["inbound", "outbound"] | None = None
    campaign_id: str | None = Field(None, max_length=64)


class CallOut(Out):
    id: str
    tenant: str
    sip_call_id: str
    direction: str
    from_number: str
    to_number: str
    invite_at: float
    answer_at: float | None
    end_at: float | None
    duration_s: float
    disposition: str
    hangup_cause: str
    hangup_side: str
    sip_status: int | None
    digits: str
    codec: str
    flow_id: str | None
    flow_version: int | None
    campaign_id: str | None = Field(description="the outbound campaign that placed the call")
    flow_result: dict[str, Any]
    has_recording: bool


class CallPageOut(Out):
    items: list[CallOut]
    next_cursor: str | None


class CallDetailOut(CallOut):
    trace: list[dict[str, Any]]
    media: dict[str, Any]
    latency: list[dict[str, Any]] = Field(description="each caller turn's ledger")
    recording_url: str | None
    transcript: list[dict[str, Any]] | None = Field(description="when call inspection exists")


class AuditQueryIn(PageQuery):
    actor: str | None = Field(None, max_length=200)
    action: str | None = Field(None, max_length=64, description="exact, or a prefix ending '.'")
    resource: str | None = Field(None, max_length=300)
    since: float | None = None
    until: float | None = None


class AuditOut(Out):
    id: int
    at: float
    actor: str
    actor_kind: str
    tenant: str
    action: str
    resource: str
    before_digest: str | None
    after_digest: str | None
    detail: dict[str, Any]
    ip: str


class AuditPageOut(Out):
    items: list[AuditOut]
    next_cursor: str | None


class EventsQuery(TenantQuery):
    topics: list[str] | None = Field(None, max_length=20,
                                     description="topic prefixes, e.g. call. flow.node")
    call_id: str | None = Field(None, max_length=64)


class HealthOut(Out):
    status: str
    engine: bool
    version: str
