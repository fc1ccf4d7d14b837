"""The API's request and response models: one definition validates input and generates the
OpenAPI document. Inputs forbid unknown fields (a typo is a 422 naming it, not a silent no-op)."""

from __future__ import annotations

from datetime import datetime
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


# --- flows -------------------------------------------------------------------------------------


class ProblemOut(Out):
    node_id: str | None
    port: str | None
    code: str
    message: str


class DraftOut(Out):
    flow_id: str
    tenant: str
    revision: int
    document: dict[str, Any]
    updated_at: datetime
    updated_by: str
    problems: list[ProblemOut]


class FlowSummaryOut(Out):
    flow_id: str
    name: str
    draft_revision: int | None
    draft_updated_at: datetime | None
    latest_version: int | None
    versions: int
    routes: list[str]


class FlowList(Out):
    items: list[FlowSummaryOut]


class FlowOut(Out):
    summary: FlowSummaryOut
    draft: DraftOut | None


class FlowCreateIn(In):
    document: dict[str, Any] = Field(description="the flow JSON (its id names the flow)")


class DraftSaveIn(In):
    document: dict[str, Any]
    revision: int | None = Field(None, ge=1, le=MAX_ID,
                                 description="the revision you edited (If-Match works too); "
                                             "a stale one is a 409")


class RevisionQuery(TenantQuery):
    revision: int | None = Field(None, ge=1, le=MAX_ID)


class ValidateIn(In):
    document: dict[str, Any] | None = Field(None, description="default: the stored draft")


class ProblemsOut(Out):
    valid: bool
    problems: list[ProblemOut]


class PublishIn(In):
    revision: int | None = Field(None, ge=1, le=MAX_ID,
                                 description="publish only if the draft is still at this "
                                             "revision")


class VersionOut(Out):
    flow_id: str
    version: int
    content_hash: str
    published_at: datetime
    published_by: str = ""
    created: bool = Field(True, description="false: identical content was already published")


class VersionDocOut(VersionOut):
    document: dict[str, Any]


class VersionList(Out):
    items: list[VersionOut]


class DiffQuery(TenantQuery):
    from_: str = Field("latest", alias="from", pattern=r"^(draft|latest|[0-9]{1,9})$")
    to: str = Field("draft", pattern=r"^(draft|latest|[0-9]{1,9})$")


class NodeChangeOut(Out):
    id: str
    fields: list[str]


class DiffOut(Out):
    nodes_added: list[str]
    nodes_removed: list[str]
    nodes_changed: list[NodeChangeOut]
    edges_added: list[dict[str, str]]
    edges_removed: list[dict[str, str]]
    fields_changed: list[str]
    moved: list[str]
    empty: bool


class RollbackIn(In):
    version: int = Field(ge=1, le=MAX_ID)


class TestsOut(Out):
    flow_id: str
    revision: int
    document: dict[str, Any]
    updated_at: datetime
    updated_by: str


class TestsSaveIn(In):
    document: dict[str, Any] = Field(description="a test suite: {\"cases\": [...]}")
    revision: int | None = Field(None, ge=1, le=MAX_ID)


class TestRunIn(In):
    target: str = Field("draft", pattern=r"^(draft|latest|[0-9]{1,9})$")
    document: dict[str, Any] | None = Field(None, description="default: the stored cases")


class StepOut(Out):
    index: int
    action: str
    ok: bool
    message: str


class CaseOut(Out):
    name: str
    passed: bool
    steps: list[StepOut]
    transcript: list[str]


class TestRunOut(Out):
    passed: int
    failed: int
    results: list[CaseOut]


class RouteIn(In):
    flow_id: str = Field(pattern=FLOW_ID_PATTERN)


class RouteOut(Out):
    number: str
    flow_id: str


class RouteList(Out):
    items: list[RouteOut]


# --- simulator and test calls ------------------------------------------------------------------


class SimStartIn(In):
    flow_id: str = Field(pattern=FLOW_ID_PATTERN)
    target: str = Field("draft", pattern=r"^(draft|latest|[0-9]{1,9})$")
    caller: str = Field("+15550100", max_length=64)
    callee: str = Field("+15550199", max_length=64)
    variables: dict[str, Any] = Field(default_factory=dict)
    mocks: dict[str, Any] = Field(default_factory=dict,
                                  description="the 'mocks' object of a test case")


class SimInputIn(In):
    kind: Literal["digits", "text", "silence", "hangup"]
    value: str = Field("", max_length=500)


class SimQuery(TenantQuery):
    after: int = Field(0, ge=0, le=MAX_ID, description="only outputs with seq greater than this")


class SimOutputOut(Out):
    seq: int
    kind: str = Field(description="say, play, transfer, hangup, record, or a flow event")
    text: str | None = None
    node_id: str | None = None
    outcome: str | None = None
    status: str | None = None
    reason: str | None = None


class SimOut(Out):
    id: str
    flow_id: str
    target: str
    status: Literal["running", "ended"]
    waiting_for: str | None
    current_node: str | None
    outputs: list[SimOutputOut]
    result: dict[str, Any] | None


class TestCallIn(In):
    flow_id: str = Field(pattern=FLOW_ID_PATTERN)
    to: str = Field(min_length=1, max_length=256, description="sip: URI, or a number")
    target: str = Field("latest", pattern=r"^(draft|latest|[0-9]{1,9})$")


class TestCallOut(Out):
    call_id: str
    flow_id: str
    flow_version: int | None
    to: str
    status: str
    placed_by: str
    placed_at: float
    events_url: str
    record: dict[str, Any]


class TestCallList(Out):
    items: list[TestCallOut]


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


# --- words, lists, voiceprints -----------------------------------------------------------------


class WordScopeQuery(TenantQuery):
    global_: bool = Field(False, alias="global", description="the operator's global list")


class WordQuery(WordScopeQuery):
    q: str | None = Field(None, max_length=256)
    cursor: str | None = Field(None, max_length=500)
    limit: int = Field(50, ge=1, le=200)


PinyinChoice = Literal["off", "auto", "spelled", "homophone"]


class WordOut(Out):
    id: int | None = None
    term: str
    category: str
    severity: int
    action: str
    tenant: str | None
    pinyin: PinyinChoice | None = Field(description="how pinyin spellings match; null: the "
                                        "category's mode")
    allow: bool
    initials: bool = False


class WordPageOut(Out):
    items: list[WordOut]
    next_cursor: str | None


WordCategory = Literal["politics", "porn", "violence", "fraud", "abuse", "competitor", "custom"]


class WordIn(In):
    term: str = Field(min_length=1, max_length=256)
    category: WordCategory = "custom"
    severity: int = Field(3, ge=1, le=5)
    action: Literal["block", "mask", "flag"] = "block"
    pinyin: PinyinChoice | None = Field(None, description="null: the category's mode")
    allow: bool = False
    initials: bool = Field(False, description="also match the first letters (sb for 傻逼)")
    global_: bool = Field(False, alias="global")


class WordRemoveQuery(WordScopeQuery):
    term: str = Field(min_length=1, max_length=256)


class TableQuery(In):
    encoding: str | None = Field(None, max_length=32, description="the file's encoding (else "
                                 "detected: BOM, UTF-8, GB18030, Big5, cp1252)")
    sheet: str | None = Field(None, max_length=128, description=".xlsx: the sheet to read")


class WordImportQuery(WordScopeQuery, TableQuery):
    format: Literal["auto", "csv", "txt"] = "auto"
    category: WordCategory = "custom"
    severity: int = Field(3, ge=1, le=5)
    action: Literal["block", "mask", "flag"] = "block"
    pinyin: PinyinChoice | None = None


class RowErrorOut(Out):
    line: int = Field(description="line in the file (0: not known)")
    column: str = Field("", description="the column as the file names it")
    value: str = ""
    message: str


class ImportOut(Out):
    imported: int
    rows: int = Field(0, description="data rows read")
    error_count: int = Field(0, description="every bad row (errors lists the first ones)")
    errors: list[RowErrorOut]


class WordTestIn(In):
    text: str = Field(min_length=1, max_length=10_000)


class HitOut(Out):
    start: int
    end: int
    term: str
    matched: str
    category: str
    severity: int
    action: str
    via_pinyin: bool


class WordTestOut(Out):
    blocked: bool
    masked_text: str
    hits: list[HitOut]


class ListScopeQuery(TenantQuery):
    global_: bool = Field(False, alias="global")
    campaign: str | None = Field(None, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


class ListQueryIn(ListScopeQuery):
    kind: Literal["black", "white"] | None = None
    q: str | None = Field(None, max_length=32)
    cursor: str | None = Field(None, max_length=500)
    limit: int = Field(50, ge=1, le=200)


class ListEntryOut(Out):
    id: int | None = None
    kind: str
    number: str = Field(description="+E.164, or '+86168*' for a prefix")
    is_prefix: bool
    scope: str
    tenant: str | None
    campaign: str | None
    reason: str
    source: str
    expires: datetime | None


class ListPageOut(Out):
    items: list[ListEntryOut]
    next_cursor: str | None


class ListAddIn(In):
    number: str = Field(min_length=1, max_length=64,
                        description="a number, '+86168*' prefix or 'LOW..HIGH' range")
    kind: Literal["black", "white"] = "black"
    global_: bool = Field(False, alias="global")
    campaign: str | None = Field(None, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
    reason: Literal["complaint", "opt-out", "regulator", "test", "vip", "premium",
                    "other"] = "other"
    source: str = Field("console", max_length=128)
    expires: datetime | None = None


class ListEntriesOut(Out):
    items: list[ListEntryOut]


class ListRemoveQuery(ListScopeQuery):
    number: str = Field(min_length=1, max_length=64)
    kind: Literal["black", "white"] = "black"


class RemovedOut(Out):
    removed: int


class ListImportQuery(ListScopeQuery, TableQuery):
    kind: Literal["black", "white"] = "black"
    reason: Literal["complaint", "opt-out", "regulator", "test", "vip", "premium",
                    "other"] = "other"
    source: str = Field("console-import", max_length=128)


class CheckIn(In):
    number: str = Field(min_length=1, max_length=64)
    purpose: str = Field("marketing", min_length=1, max_length=32)
    campaign: str | None = Field(None, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
    at: datetime | None = Field(None, description="ISO time with offset; default now")


class ReasonOut(Out):
    code: str
    message: str


class DecisionOut(Out):
    allowed: bool
    number: str | None
    vip: bool
    retry_at: datetime | None
    reasons: list[ReasonOut]


class VoiceprintQuery(TenantQuery):
    q: str | None = Field(None, max_length=128)
    after: str = Field("", max_length=128, description="the last person_id of the last page")
    limit: int = Field(100, ge=1, le=500)


class VoiceprintOut(Out):
    person_id: str
    backend: str
    n_utterances: int
    speech_s: float
    created_at: float
    updated_at: float
    consent_given_at: float | None


class VoiceprintList(Out):
    items: list[VoiceprintOut]


class VoiceprintAccessOut(Out):
    person_id: str
    action: str
    actor: str
    outcome: str
    at: float


class VoiceprintAccessList(Out):
    items: list[VoiceprintAccessOut]
