"""The JSON test-case language and its headless runner (``ivr flow test FLOW CASES``).

A case is a caller script: steps that send input (``send_dtmf``, ``say``, ``silence``,
``hangup``), move time (``wait``: seconds on a fake clock, so timeouts fire without sleeping) and
check what happened (``expect_prompt``, ``expect_node``, ``expect_variable``, ``expect_sms``,
``expect_transfer``, ``expect_end``). Services are mocked per case (webhook replies, list
decisions, voiceprint outcomes). After every input step the runner waits until the flow is blocked
on the caller again (or on a timer, or finished), then the next step runs. The same cases can later
drive a real SIP test call: steps only use what a caller can do and hear.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from core.clock import FakeClock
from core.tasks import TaskScope
from flows.interpreter import Interpreter, RunResult
from flows.services import (
    Decision,
    FlowServices,
    HttpResponse,
    MapFlowResolver,
    MemorySmsSender,
    StaticListChecker,
    StaticSpeakerVerifier,
)
from flows.simulator import SimInput, SimulatedCall
from flows.validator import CompiledFlow

STEP_SETTLE_S = 0.01  # real time allowed for in-memory work to settle when blocked on a timer
STEP_WATCHDOG_S = 10.0  # real time before a step is declared stuck
AUTO_ADVANCE_STEP_S = 0.25  # fake time moved per tick while the flow waits on a non-caller timer
AUTO_ADVANCE_LIMIT_S = 300.0


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class VariableExpectation(_Strict):
    name: str
    equals: Any = None
    contains: str | None = None
    exists: bool | None = None


class Step(_Strict):
    """Exactly one action per step."""

    send_dtmf: str | None = Field(default=None, pattern=r"^[0-9*#A-D]+$")
    say: str | None = None
    silence: bool | None = Field(default=None, description="Caller says nothing (no input).")
    wait: float | None = Field(default=None, ge=0, le=3600, description="Seconds of clock time.")
    hangup: bool | None = None
    expect_prompt: str | None = Field(default=None, description="Substring or /regex/.")
    expect_node: str | None = None
    expect_variable: VariableExpectation | None = None
    expect_sms: str | None = None
    expect_transfer: str | None = None
    expect_end: str | None = Field(
        default=None, description="hangup, transferred, caller_hangup, error, loop_guard, returned"
    )

    @model_validator(mode="after")
    def _one(self) -> Step:
        set_fields = [k for k in type(self).model_fields if getattr(self, k) is not None]
        if len(set_fields) != 1:
            raise ValueError(f"a step needs exactly one action, got {set_fields or 'none'}")
        return self

    @property
    def action(self) -> str:
        return next(k for k in type(self).model_fields if getattr(self, k) is not None)


class HttpMock(_Strict):
    status: int = 200
    json_body: Any = Field(default=None, alias="json")
    body: str | None = None
    hang: bool = False
    error: str | None = None


class Mocks(_Strict):
    http: dict[str, HttpMock] = Field(
        default_factory=dict, description="URL prefix -> reply ('*' matches every URL)."
    )
    lists: dict[str, bool] = Field(default_factory=dict, description="number -> allowed")
    verify_speaker: str = "match"
    enroll_speaker: str = "enrolled"
    failing_transfers: list[str] = Field(default_factory=list)
    failing_sms: list[str] = Field(default_factory=list)


class TestCase(_Strict):
    name: str
    caller: str = "+15550100"
    callee: str = "+15550199"
    variables: dict[str, Any] = Field(default_factory=dict)
    campaign: dict[str, Any] = Field(default_factory=dict)
    mocks: Mocks = Field(default_factory=Mocks)
    steps: list[Step] = Field(min_length=1)


class TestSuite(_Strict):
    flow: str | None = Field(default=None, description="Flow file, relative to this file.")
    subflows: list[str] = Field(default_factory=list, description="Flow files for subflow nodes.")
    cases: list[TestCase] = Field(min_length=1)


class MockHttpClient:
    def __init__(self, mocks: Mapping[str, HttpMock]) -> None:
        self.mocks = dict(mocks)
        self.requests: list[tuple[str, str, bytes | None]] = []

    async def request(
        self, method: str, url: str, headers: Mapping[str, str], body: bytes | None
    ) -> HttpResponse:
        self.requests.append((method, url, body))
        mock = next(
            (
                m
                for prefix, m in sorted(self.mocks.items(), key=lambda kv: -len(kv[0]))
                if prefix == "*" or url.startswith(prefix)
            ),
            None,
        )
        if mock is None:
            raise ConnectionRefusedError(f"no mock for {url}")
        if mock.hang:
            await asyncio.get_running_loop().create_future()  # until the node's timeout cancels
        if mock.error:
            raise ConnectionError(mock.error)
        raw = mock.body.encode() if mock.body is not None else json.dumps(mock.json_body).encode()
        return HttpResponse(mock.status, raw)


@dataclass(slots=True)
class StepResult:
    index: int
    action: str
    ok: bool
    message: str = ""


@dataclass(slots=True)
class CaseResult:
    name: str
    passed: bool
    steps: list[StepResult] = field(default_factory=list)
    run: RunResult | None = None
    transcript: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "passed": self.passed,
            "steps": [
                {"index": s.index, "action": s.action, "ok": s.ok, "message": s.message}
                for s in self.steps
            ],
            "result": self.run.as_dict() if self.run else None,
            "transcript": self.transcript,
        }


def services_for(mocks: Mocks, flows: Mapping[str, Mapping[str, Any]]) -> FlowServices:
    return FlowServices(
        lists=StaticListChecker({n: Decision(ok, ("mock",)) for n, ok in mocks.lists.items()}),
        sms=MemorySmsSender(mocks.failing_sms),
        speaker=StaticSpeakerVerifier(mocks.verify_speaker, mocks.enroll_speaker),
        http=MockHttpClient(mocks.http),
        flows=MapFlowResolver(flows),
    )


def _prompt_matches(pattern: str, text: str) -> bool:
    if len(pattern) > 2 and pattern.startswith("/") and pattern.endswith("/"):
        return re.search(pattern[1:-1], text, re.IGNORECASE) is not None
    return pattern.lower() in text.lower()


class CaseRunner:
    """Runs one case against a compiled flow with a fake clock."""

    def __init__(
        self, flow: CompiledFlow, case: TestCase, flows: Mapping[str, Mapping[str, Any]]
    ) -> None:
        self.flow = flow
        self.case = case
        self.clock = FakeClock()
        self.services = services_for(case.mocks, flows)
        self.call = SimulatedCall(
            self.clock,
            caller=case.caller,
            callee=case.callee,
            failing_transfers=set(case.mocks.failing_transfers),
        )
        self.interp = Interpreter(
            flow,
            self.call,
            clock=self.clock,
            services=self.services,
            variables=case.variables,
            campaign=case.campaign,
        )
        self._prompt_cursor = 0
        self._node_cursor = 0
        self._scope = TaskScope(f"flowtest:{case.name}")

    async def _settle(self, task: asyncio.Task[RunResult]) -> None:
        """Wait until the flow is blocked on the caller, on a timer, or done."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + STEP_WATCHDOG_S
        start_fake = self.clock.now()
        while not task.done() and not self.call.idle.is_set():
            idle_wait = self._scope.spawn(self.call.idle.wait(), "idle")
            try:
                await asyncio.wait({task, idle_wait}, timeout=STEP_SETTLE_S)
            finally:
                idle_wait.cancel()
            if task.done() or self.call.idle.is_set():
                return
            if self.clock.pending:
                # Blocked on a timer that is not a caller timeout (webhook retry backoff or
                # timeout, budget): every service is mocked in memory, so let time run.
                if self.clock.now() - start_fake > AUTO_ADVANCE_LIMIT_S:
                    raise TimeoutError(f"flow still busy after {AUTO_ADVANCE_LIMIT_S:g} s")
                await self.clock.advance(AUTO_ADVANCE_STEP_S)
                continue
            if loop.time() > deadline:
                raise TimeoutError(f"flow made no progress within {STEP_WATCHDOG_S:g} s")

    async def run(self) -> CaseResult:
        result = CaseResult(self.case.name, True)
        task = self._scope.spawn(self.interp.run(), "run")
        try:
            await self._settle(task)
            for i, step in enumerate(self.case.steps):
                ok, msg = await self._step(step, task)
                result.steps.append(StepResult(i, step.action, ok, msg))
                if not ok:
                    result.passed = False
                    break
        finally:
            if task.done() and not task.cancelled():
                result.run = task.result()
            await self._scope.close()
            await self.call.close()
            result.transcript = [f"{o.kind}: {o.text}" for o in self.call.outputs]
        return result

    async def _step(self, step: Step, task: asyncio.Task[RunResult]) -> tuple[bool, str]:
        call = self.call
        if step.send_dtmf is not None:
            call.feed_digits(step.send_dtmf)
        elif step.say is not None:
            call.feed(SimInput("say", step.say))
        elif step.silence:
            call.feed(SimInput("silence"))
        elif step.hangup:
            call.feed(SimInput("hangup"))
        elif step.wait is not None:
            await self.clock.advance(step.wait)
        else:
            return self._expect(step, task)
        try:
            await self._settle(task)
        except TimeoutError as e:
            return False, str(e)
        return True, ""

    def _expect(self, step: Step, task: asyncio.Task[RunResult]) -> tuple[bool, str]:
        call = self.call
        if step.expect_prompt is not None:
            said = [o for o in call.outputs if o.kind in ("say", "play")]
            for idx in range(self._prompt_cursor, len(said)):
                if _prompt_matches(step.expect_prompt, said[idx].text):
                    self._prompt_cursor = idx + 1
                    return True, said[idx].text
            recent = [o.text for o in said[self._prompt_cursor :]][-3:]
            return False, f"no prompt matching {step.expect_prompt!r}; new prompts: {recent}"
        if step.expect_node is not None:
            entered = [t["node_id"] for t in self.interp.trace]
            for idx in range(self._node_cursor, len(entered)):
                if entered[idx] == step.expect_node:
                    self._node_cursor = idx + 1
                    return True, ""
            return False, f"node {step.expect_node!r} not entered; path: {entered[-6:]}"
        if step.expect_variable is not None:
            exp = step.expect_variable
            vars_ = self.interp.ctx.variables
            if exp.exists is not None:
                ok = (exp.name in vars_) == exp.exists
                return ok, "" if ok else f"variable {exp.name!r} exists={exp.name in vars_}"
            if exp.name not in vars_:
                return False, f"variable {exp.name!r} is not set"
            value = vars_[exp.name]
            ok = exp.contains in str(value) if exp.contains is not None else value == exp.equals
            return ok, "" if ok else f"variable {exp.name!r} is {value!r}"
        if step.expect_sms is not None:
            sms = self.services.sms
            sent = getattr(sms, "sent", [])
            ok = any(step.expect_sms.lower() in text.lower() for _, text in sent)
            return ok, "" if ok else f"no SMS containing {step.expect_sms!r}; sent: {sent}"
        if step.expect_transfer is not None:
            ok = step.expect_transfer in call.transfers
            return ok, "" if ok else f"no transfer to {step.expect_transfer!r}: {call.transfers}"
        if step.expect_end is not None:
            if not task.done():
                return False, (
                    f"the flow is still running (waiting for {call.waiting_for or 'a timer'} "
                    f"in node {self.interp.current_node!r})"
                )
            res = task.result()
            ok = res.status == step.expect_end
            return ok, "" if ok else f"flow ended with {res.status!r}: {res.reason}"
        return False, "empty step"


def load_suite(path: Path) -> TestSuite:
    return TestSuite.model_validate_json(path.read_text())


def load_subflows(suite: TestSuite, base: Path) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for rel in suite.subflows:
        doc = json.loads((base / rel).read_text())
        out[str(doc.get("id"))] = doc
    return out


async def run_suite(
    flow: CompiledFlow, suite: TestSuite, subflows: Mapping[str, Mapping[str, Any]] | None = None
) -> list[CaseResult]:
    results = []
    for case in suite.cases:
        results.append(await CaseRunner(flow, case, subflows or {}).run())
    return results
