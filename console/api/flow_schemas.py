"""Request and response models of the flow API (:mod:`console.api.flows`): drafts, versions,
tests, routes, the simulator and test calls."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import Field

from console.api.schemas import FLOW_ID_PATTERN, MAX_ID, In, Out, TenantQuery


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
