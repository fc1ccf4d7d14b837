"""Nodes that call injected services: http, check_list, verify/enroll speaker, send_sms, subflow.

Every failure of the outside world (a webhook that hangs or answers garbage, a list service that
raises, a verifier error) becomes the node's ``error`` port through :class:`NodeError`; the
interpreter decides what happens when that port is not connected. Nothing here waits without a
clock deadline.
"""

from __future__ import annotations

import asyncio
import json
import re
from functools import partial
from typing import Any, Literal

from pydantic import Field, model_validator

from audio.pcm import Pcm
from core.call import CallHungUp, ListenSpec
from flows.context import NodeError, RunContext
from flows.jsondoc import JsonError, parse_json
from flows.model import ID_PATTERN, Strict
from flows.nodes.base import NodeType, Prompt, play_prompt, register
from flows.nodes.inputs import VAR_PATTERN
from flows.services import call_service
from flows.timeouts import ClockTimeout, run_with_timeout

INLINE_PARSE_BYTES = 65_536  # larger webhook replies are parsed in a worker thread
_PATH_RE = re.compile(r"\.?([A-Za-z_][A-Za-z0-9_\-]*)|\[(\d+)\]")


def json_path(doc: Any, path: str) -> Any:
    """``$.a.b[0].c`` (or ``a.b[0].c``) into parsed JSON; KeyError naming the missing step."""
    rest = path[1:] if path.startswith("$") else path
    cur = doc
    pos = 0
    while pos < len(rest):
        m = _PATH_RE.match(rest, pos)
        if m is None:
            raise KeyError(f"bad JSON path {path!r} at {pos}")
        if m.group(1) is not None:
            if not isinstance(cur, dict) or m.group(1) not in cur:
                raise KeyError(f"{path!r}: no field {m.group(1)!r}")
            cur = cur[m.group(1)]
        else:
            idx = int(m.group(2))
            if not isinstance(cur, list) or idx >= len(cur):
                raise KeyError(f"{path!r}: no item [{idx}]")
            cur = cur[idx]
        pos = m.end()
    return cur


class HttpParams(Strict):
    method: Literal["GET", "POST", "PUT", "DELETE"] = "GET"
    url: str = Field(min_length=1, description="http(s) URL; may contain {{ var }}.")
    headers: dict[str, str] = Field(default_factory=dict, description="Values are templates.")
    json_body: dict[str, str] | None = Field(
        default=None, description="key -> expression, sent as a JSON object."
    )
    timeout_s: float = Field(default=3.0, gt=0, le=30)
    retries: int = Field(default=1, ge=0, le=5, description="Extra tries on timeout/5xx.")
    retry_backoff_s: float = Field(default=0.2, ge=0, le=10)
    map: dict[str, str] = Field(
        default_factory=dict, description="variable -> JSON path into the response ($.a.b[0])."
    )
    status_variable: str | None = Field(default=None, pattern=VAR_PATTERN)

    @model_validator(mode="after")
    def _check(self) -> HttpParams:
        if not self.url.startswith(("http://", "https://", "{{")):
            raise ValueError("url must start with http:// or https://")
        for var in self.map:
            if not re.match(VAR_PATTERN, var):
                raise ValueError(f"map: {var!r} is not a valid variable name")
        return self


@register
class HttpNode(NodeType):
    """Calls a webhook with a clock-driven timeout and retries; maps JSON into variables."""

    type_name = "http"
    Params = HttpParams
    params: HttpParams
    fixed_ports = ("ok",)

    def templates(self) -> list[tuple[str, str]]:
        return [
            ("url", self.params.url),
            *((f"headers.{k}", v) for k, v in self.params.headers.items()),
        ]

    def expressions(self) -> list[tuple[str, str]]:
        return [(f"json_body.{k}", v) for k, v in (self.params.json_body or {}).items()]

    def assigns(self) -> list[str]:
        out = list(self.params.map)
        if self.params.status_variable:
            out.append(self.params.status_variable)
        return out

    async def run(self, ctx: RunContext) -> str:
        p = self.params
        url = ctx.render(p.url, "url")
        headers = {k: ctx.render(v, f"headers.{k}") for k, v in p.headers.items()}
        body: bytes | None = None
        if p.json_body is not None:
            obj = {k: ctx.eval(v, f"json_body.{k}") for k, v in p.json_body.items()}
            body = json.dumps(obj).encode()
            headers.setdefault("Content-Type", "application/json")
        last_error = ""
        for attempt in range(p.retries + 1):
            if attempt:
                await ctx.clock.sleep(p.retry_backoff_s * attempt)
            try:
                resp = await run_with_timeout(
                    ctx.clock,
                    ctx.services.http.request(p.method, url, headers, body),
                    p.timeout_s,
                    f"flow:{ctx.call.call_id}:{self.id}:http",
                )
            except ClockTimeout:
                last_error = f"no answer within {p.timeout_s:g} s"
                continue
            except (OSError, ValueError) as e:
                last_error = f"{type(e).__name__}: {e}"
                continue
            except Exception as e:  # any service failure takes the error port
                last_error = f"{type(e).__name__}: {e}"
                continue
            if p.status_variable:
                ctx.set(p.status_variable, resp.status)
            if resp.status >= 500:
                last_error = f"HTTP {resp.status}"
                continue
            if resp.status >= 400:
                raise NodeError(f"webhook answered HTTP {resp.status}")
            await self._map(ctx, resp.body)
            return "ok"
        ctx.call.trace.add("flow.http_failed", node_id=self.id, error=last_error)
        raise NodeError(f"webhook failed after {p.retries + 1} tries: {last_error}")

    async def _map(self, ctx: RunContext, raw: bytes) -> None:
        if not self.params.map:
            return
        try:
            if len(raw) > INLINE_PARSE_BYTES:  # a big reply is parsed off the event loop
                doc = await asyncio.to_thread(parse_json, raw, unique_keys=False)
            else:
                doc = parse_json(raw, unique_keys=False)
        except JsonError as e:
            raise NodeError(f"webhook reply is not JSON: {e}") from e
        for var, path in self.params.map.items():
            try:
                value = json_path(doc, path)
            except KeyError as e:
                raise NodeError(f"webhook reply: {e.args[0]}") from e
            ctx.set(var, value, what=f"webhook reply {path}")


class CheckListParams(Strict):
    number: str = Field(default="caller", description="Expression for the number to check.")
    purpose: str = "inbound"
    campaign: str | None = Field(default=None, description="Expression for the campaign id.")
    variable: str | None = Field(default=None, pattern=VAR_PATTERN, description="Gets reasons.")


@register
class CheckListNode(NodeType):
    """Black/white list lookup through the injected :class:`ListChecker`."""

    type_name = "check_list"
    Params = CheckListParams
    params: CheckListParams
    fixed_ports = ("allowed", "blocked")

    def expressions(self) -> list[tuple[str, str]]:
        out = [("number", self.params.number)]
        if self.params.campaign:
            out.append(("campaign", self.params.campaign))
        return out

    def assigns(self) -> list[str]:
        return [self.params.variable] if self.params.variable else []

    async def run(self, ctx: RunContext) -> str:
        number = str(ctx.eval(self.params.number, "number"))
        campaign = str(ctx.eval(self.params.campaign, "campaign")) if self.params.campaign else None
        try:
            decision = await call_service(
                ctx.services.lists.check, number, self.params.purpose, ctx.tenant, campaign
            )
            allowed = bool(decision.allowed)
            # compliance reasons are objects with a code; plain strings are kept as they are
            reasons = [str(getattr(r, "code", r)) for r in decision.reasons]
        except Exception as e:  # any service failure takes the error port
            raise NodeError(f"list check failed: {type(e).__name__}: {e}") from e
        if self.params.variable:
            ctx.set(self.params.variable, reasons)
        return "allowed" if allowed else "blocked"


class SpeakerParams(Strict):
    person_id: str = Field(description="Expression: whose voiceprint (e.g. account number).")
    prompt: Prompt
    retry_prompt: Prompt | None = None
    max_attempts: int = Field(default=2, ge=1, le=5)
    no_input_timeout_s: float = Field(default=5.0, gt=0, le=60)
    score_variable: str | None = Field(default=None, pattern=VAR_PATTERN)


async def _utterance(ctx: RunContext, timeout_s: float, budget_ms: int | None) -> Pcm | None | bool:
    """Listen for one utterance; False on no input."""
    lr = await ctx.call.listen(
        ListenSpec(mode="free", no_input_timeout_s=timeout_s, allow_dtmf=False, budget_ms=budget_ms)
    )
    if lr.status == "hangup":
        raise CallHungUp("normal", "caller")
    if lr.status == "error":
        raise NodeError(f"recognizer error: {lr.error or 'unknown'}")
    if lr.status != "ok":
        return False
    ctx.mark_input()
    return lr.audio


@register
class VerifySpeakerNode(NodeType):
    type_name = "verify_speaker"
    Params = SpeakerParams
    params: SpeakerParams
    fixed_ports = ("match", "no_match", "not_enrolled", "insufficient_audio")
    takes_input = True

    def expressions(self) -> list[tuple[str, str]]:
        return [("person_id", self.params.person_id)]

    def assigns(self) -> list[str]:
        return [self.params.score_variable] if self.params.score_variable else []

    async def run(self, ctx: RunContext) -> str:
        p = self.params
        person = str(ctx.eval(p.person_id, "person_id"))
        outcome = "insufficient_audio"
        for attempt in range(p.max_attempts):
            await play_prompt(ctx, p.prompt if attempt == 0 else (p.retry_prompt or p.prompt))
            audio = await _utterance(ctx, p.no_input_timeout_s, self.spec.budget_ms)
            if audio is False:
                outcome = "insufficient_audio"
                continue
            try:
                result = await call_service(  # the voiceprint is looked up in the call's tenant
                    partial(ctx.services.speaker.verify, tenant_id=ctx.tenant), person, audio)
            except Exception as e:  # any service failure takes the error port
                raise NodeError(f"speaker verification failed: {type(e).__name__}: {e}") from e
            outcome = str(result.outcome)
            if p.score_variable:
                ctx.set(p.score_variable, float(result.score))
            ctx.call.trace.add("flow.verify", node_id=self.id, outcome=outcome, score=result.score)
            if outcome == "error":
                raise NodeError("speaker verifier returned error")
            if outcome not in ("no_match", "insufficient_audio"):
                return outcome
        return outcome


class EnrollParams(Strict):
    person_id: str = Field(description="Expression: whose voiceprint to create.")
    prompt: Prompt
    samples: int = Field(default=3, ge=1, le=10)
    no_input_timeout_s: float = Field(default=5.0, gt=0, le=60)


@register
class EnrollSpeakerNode(NodeType):
    type_name = "enroll_speaker"
    Params = EnrollParams
    params: EnrollParams
    fixed_ports = ("enrolled", "insufficient_audio")
    takes_input = True

    def expressions(self) -> list[tuple[str, str]]:
        return [("person_id", self.params.person_id)]

    async def run(self, ctx: RunContext) -> str:
        p = self.params
        person = str(ctx.eval(p.person_id, "person_id"))
        audios: list[Pcm | None] = []
        misses = 0
        while len(audios) < p.samples and misses <= p.samples:
            await play_prompt(ctx, p.prompt)
            audio = await _utterance(ctx, p.no_input_timeout_s, self.spec.budget_ms)
            if audio is False:
                misses += 1
                continue
            audios.append(audio if not isinstance(audio, bool) else None)
        if len(audios) < p.samples:
            return "insufficient_audio"
        try:
            result = await call_service(
                partial(ctx.services.speaker.enroll, tenant_id=ctx.tenant), person, audios)
        except Exception as e:  # any service failure takes the error port
            raise NodeError(f"speaker enrolment failed: {type(e).__name__}: {e}") from e
        outcome = str(result.outcome)
        if outcome == "insufficient_audio":
            return outcome
        if outcome not in ("enrolled", "match", "ok"):
            raise NodeError(f"speaker enrolment returned {outcome!r}")
        return "enrolled"


class SmsParams(Strict):
    to: str = Field(default="caller", description="Expression for the destination number.")
    text: str = Field(min_length=1, max_length=1000, description="Template.")
    variable: str | None = Field(default=None, pattern=VAR_PATTERN, description="Gets message id.")


@register
class SendSmsNode(NodeType):
    type_name = "send_sms"
    Params = SmsParams
    params: SmsParams
    fixed_ports = ("sent",)

    def templates(self) -> list[tuple[str, str]]:
        return [("text", self.params.text)]

    def expressions(self) -> list[tuple[str, str]]:
        return [("to", self.params.to)]

    def assigns(self) -> list[str]:
        return [self.params.variable] if self.params.variable else []

    async def run(self, ctx: RunContext) -> str:
        to = str(ctx.eval(self.params.to, "to"))
        text = ctx.render(self.params.text, "text")
        try:
            msg_id = await call_service(ctx.services.sms.send, to, text, {
                "tenant": ctx.tenant, "call_id": ctx.call.call_id, "flow_id": ctx.flow_id,
                "node_id": self.id})
        except Exception as e:  # any service failure takes the error port
            raise NodeError(f"SMS to {to} failed: {type(e).__name__}: {e}") from e
        ctx.call.trace.add("flow.sms", node_id=self.id, to=to, message_id=str(msg_id))
        if self.params.variable:
            ctx.set(self.params.variable, str(msg_id))
        return "sent"


class SubflowParams(Strict):
    flow_id: str = Field(pattern=ID_PATTERN)
    inputs: dict[str, str] = Field(default_factory=dict, description="child var -> expression.")
    outputs: dict[str, str] = Field(default_factory=dict, description="parent var -> child var.")


@register
class SubflowNode(NodeType):
    """Runs another published flow on the same call; its ``return`` node comes back here."""

    type_name = "subflow"
    Params = SubflowParams
    params: SubflowParams
    fixed_ports = ("done",)

    def expressions(self) -> list[tuple[str, str]]:
        return [(f"inputs.{k}", v) for k, v in self.params.inputs.items()]

    def assigns(self) -> list[str]:
        return list(self.params.outputs)

    def calls_flow(self) -> str | None:
        return self.params.flow_id

    async def run(self, ctx: RunContext) -> str:
        if ctx.run_subflow is None:
            raise NodeError("subflows are not available here")
        inputs = {k: ctx.eval(v, f"inputs.{k}") for k, v in self.params.inputs.items()}
        status, child_vars = await ctx.run_subflow(self.params.flow_id, inputs)
        if status != "returned":
            raise NodeError(f"subflow {self.params.flow_id!r} ended with {status}")
        for parent, child in self.params.outputs.items():
            ctx.set(parent, child_vars.get(child))
        return "done"


class ReturnParams(Strict):
    pass


@register
class ReturnNode(NodeType):
    """Ends a subflow and resumes the caller's flow (in a top-level flow: ends the call)."""

    type_name = "return"
    Params = ReturnParams
    fixed_ports = ()
    terminal_outcomes = ("returned",)

    async def run(self, ctx: RunContext) -> str:
        return "returned"
