"""The headless runner of JSON test cases (``ivr flow test [FLOW] CASES``); the case language
and its strict loading live in :mod:`flows.casefile`.

A case is a caller script: steps that send input (``send_dtmf``, ``say``, ``silence``,
``hangup``), move time (``wait``: seconds on a fake clock, so timeouts fire without sleeping) and
check what happened (``expect_prompt``, ``expect_node``, ``expect_variable``, ``expect_sms``,
``expect_transfer``, ``expect_end``). Services are mocked per case (webhook replies, list
decisions, voiceprint outcomes). After every input step the runner waits until the flow is blocked
on the caller again (or on a timer, or finished), then the next step runs. The same cases can later
drive a real SIP test call: steps only use what a caller can do and hear.

One case never stops the suite: a flow busy past the clock watchdog, a stuck step, a broken mock
or an invalid case is reported as that case's failure and the next case runs. Checks are strict:
input after the call ended fails, ``equals`` compares JSON types (``1`` is not ``true``).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from core.clock import FakeClock
from core.tasks import TaskScope
from flows.casefile import (
    END_STATUSES,
    HttpMock,
    InvalidCase,
    Mocks,
    Step,
    SuiteError,
    TestCase,
    TestSuite,
    load_subflows,
    load_suite,
    parse_suite,
    prompt_pattern,
    strict_equal,
)
from flows.expr import LimitExceeded, to_text
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
AUTO_ADVANCE_LIMIT_S = 300.0  # clock time a flow may stay busy (webhooks, back-off) per step

__all__ = [
    "END_STATUSES",
    "CaseResult",
    "CaseRunner",
    "InvalidCase",
    "Mocks",
    "SuiteError",
    "TestCase",
    "TestSuite",
    "load_subflows",
    "load_suite",
    "parse_suite",
    "run_suite",
    "services_for",
]


class CaseStuck(Exception):
    """The flow kept busy past a watchdog (clock or real time); the case fails with this."""


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
    error: str = ""  # why the case failed outside its steps (invalid, stuck, crashed)
    invalid: bool = False  # the case did not load; it never ran

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "passed": self.passed,
            "invalid": self.invalid,
            "error": self.error,
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
    regex = prompt_pattern(pattern)
    if regex is not None:
        return regex.search(text) is not None
    return pattern.lower() in text.lower()


def _shown(value: Any) -> str:
    try:
        return to_text(value)[:200] if not isinstance(value, str) else repr(value[:200])
    except LimitExceeded as e:
        return f"<{e}>"


class CaseRunner:
    """Runs one case against a compiled flow with a fake clock."""

    def __init__(
        self,
        flow: CompiledFlow,
        case: TestCase,
        flows: Mapping[str, Mapping[str, Any]],
        *,
        busy_limit_s: float = AUTO_ADVANCE_LIMIT_S,
    ) -> None:
        self.flow = flow
        self.case = case
        self.busy_limit_s = busy_limit_s
        self.clock = FakeClock()
        self.services = services_for(case.mocks, flows)
        self.call = SimulatedCall(
            self.clock,
            caller=case.caller,
            callee=case.callee,
            failing_transfers=set(case.mocks.failing_transfers),
            identity=case.identity,
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
        """Wait until the flow is blocked on the caller, on a timer, or done; raises
        :class:`CaseStuck` past either watchdog."""
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
                if self.clock.now() - start_fake > self.busy_limit_s:
                    node = self.interp.current_node
                    raise CaseStuck(
                        f"flow still busy after {self.busy_limit_s:g} s of clock time "
                        f"(in node {node!r}, waiting on a webhook or timer)"
                    )
                await self.clock.advance(AUTO_ADVANCE_STEP_S)
                continue
            if loop.time() > deadline:
                raise CaseStuck(f"flow made no progress within {STEP_WATCHDOG_S:g} s")

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
        except CaseStuck as e:
            result.passed = False
            result.error = str(e)
        finally:
            if task.done() and not task.cancelled():
                if task.exception() is None:
                    result.run = task.result()
                else:
                    result.passed = False
                    exc = task.exception()
                    result.error = f"the flow crashed: {type(exc).__name__}: {exc}"
            await self._scope.close()
            await self.call.close()
            result.transcript = [f"{o.kind}: {o.text}" for o in self.call.outputs]
        return result

    async def _step(self, step: Step, task: asyncio.Task[RunResult]) -> tuple[bool, str]:
        call = self.call
        if step.is_input and task.done():
            status = task.result().status if not task.cancelled() else "cancelled"
            return False, f"the call already ended ({status}): nobody hears this {step.action}"
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
        except CaseStuck as e:
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
            return self._expect_variable(step)
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

    def _expect_variable(self, step: Step) -> tuple[bool, str]:
        exp = step.expect_variable
        assert exp is not None
        vars_ = self.interp.ctx.variables
        if exp.exists is not None:
            ok = (exp.name in vars_) == exp.exists
            return ok, "" if ok else f"variable {exp.name!r} exists={exp.name in vars_}"
        if exp.name not in vars_:
            return False, f"variable {exp.name!r} is not set"
        value = vars_[exp.name]
        if exp.contains is not None:
            try:
                ok = exp.contains in to_text(value)
            except LimitExceeded:
                ok = False
        else:
            ok = strict_equal(value, exp.equals)
        kind = type(value).__name__
        return ok, "" if ok else f"variable {exp.name!r} is {_shown(value)} ({kind})"


async def run_case(
    flow: CompiledFlow, case: TestCase | InvalidCase, flows: Mapping[str, Mapping[str, Any]]
) -> CaseResult:
    """One case, isolated: whatever goes wrong becomes this case's failure."""
    if isinstance(case, InvalidCase):
        return CaseResult(
            case.name, False, error="invalid case: " + "; ".join(case.errors), invalid=True
        )
    try:
        return await CaseRunner(flow, case, flows).run()
    except Exception as e:  # a broken case (or a runner bug) must not stop the suite
        return CaseResult(
            case.name, False, error=f"the case could not run: {type(e).__name__}: {e}"
        )


async def run_suite(
    flow: CompiledFlow, suite: TestSuite, subflows: Mapping[str, Mapping[str, Any]] | None = None
) -> list[CaseResult]:
    return [await run_case(flow, case, subflows or {}) for case in suite.cases]
