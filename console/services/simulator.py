"""Simulator sessions: talk to a flow from the console (send digits or text, read the prompts
and the node trace), the same simulated call ``ivr flow simulate`` drives in a terminal.

Services are always the test doubles (``flows.testcases.Mocks``, as a test case declares them):
a simulation never calls a real webhook, sends an SMS or touches a voiceprint, so a client
tenant's flow cannot reach the operator's network from here. Sessions are bounded in number
(per tenant and in all), end after ``idle_s`` without input, and live in this process only.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from console.services.base import Invalid, Missing
from console.services.flows import FlowOps
from core.clock import Clock
from core.tasks import TaskScope
from flows.interpreter import Interpreter, RunResult
from flows.simulator import SimInput, SimOutput, SimulatedCall
from flows.testcases import Mocks, services_for
from flows.validator import FlowInvalid, compile_flow

SETTLE_S = 5.0  # how long an input may keep the flow busy before we answer anyway
MAX_OUTPUTS = 2_000  # per session: a looping flow cannot grow memory without bound
DIGITS = frozenset("0123456789*#ABCD")


@dataclass
class SimSession:
    id: str
    tenant: str
    owner: str
    flow_id: str
    target: str
    call: SimulatedCall
    interp: Interpreter
    task: asyncio.Task[RunResult]
    scope: TaskScope
    last_used: float
    outputs: list[dict[str, Any]] = field(default_factory=list)
    seq: int = 0

    def add(self, kind: str, **data: Any) -> None:
        if len(self.outputs) >= MAX_OUTPUTS:
            return
        self.seq += 1
        self.outputs.append({"seq": self.seq, "kind": kind, **data})

    @property
    def status(self) -> str:
        return "ended" if self.task.done() else "running"

    def result(self) -> dict[str, Any] | None:
        if not self.task.done() or self.task.cancelled():
            return None
        exc = self.task.exception()
        if exc is not None:
            return {"status": "error", "reason": f"{type(exc).__name__}: {exc}"[:200]}
        res = self.task.result()
        return {"status": res.status, "reason": res.reason, "steps": res.steps,
                "last_node": res.last_node}


class _Sink:
    """The interpreter's event sink for one session: flow events become trace outputs."""

    def __init__(self, session: list[SimSession]) -> None:
        self._session = session

    def publish(self, topic: str, call_id: str | None = None, **data: Any) -> None:
        if self._session:
            keep = {k: v for k, v in data.items() if k in ("node_id", "type", "outcome",
                                                           "status", "reason", "port")}
            self._session[0].add(topic, **keep)


class SimulatorSessions:
    def __init__(self, flows: FlowOps, clock: Clock, *, idle_s: float = 600.0,
                 max_sessions: int = 200, max_per_tenant: int = 20,
                 speak: Callable[[str], bytes] | None = None) -> None:
        self.flows = flows
        self.clock = clock
        self.idle_s = idle_s
        self.max_sessions = max_sessions
        self.max_per_tenant = max_per_tenant
        # text -> WAV bytes with the engine's own TTS (blocking: run in an executor); None
        # when this console has no voice (prompts are then text only)
        self.speak = speak
        self._sessions: dict[str, SimSession] = {}

    async def prompt_audio(self, tenant: str, session_id: str, seq: int) -> bytes:
        """The ``say`` prompt number ``seq`` of a session as the caller would hear it (WAV):
        rendered by the same TTS, voice and word checks as calls, so what ops staff hear in
        the simulator is what callers will."""
        session = self.get(tenant, session_id)
        said = next((o for o in session.outputs if o["seq"] == seq), None)
        if said is None or said["kind"] != "say" or not str(said.get("text", "")).strip():
            raise Missing(f"no spoken prompt {seq} in simulator session {session_id!r}")
        if self.speak is None:
            raise Missing("this console has no text-to-speech voice configured")
        speak = self.speak
        try:
            return await asyncio.get_running_loop().run_in_executor(
                None, speak, str(said["text"]))
        except ValueError as e:  # the voice refused the text (e.g. a blocked word)
            raise Invalid(f"seq: prompt {seq} cannot be spoken: {e}", "seq",
                          "not_speakable") from e

    def __len__(self) -> int:
        return len(self._sessions)

    async def start(self, tenant: str, owner: str, flow_id: str, *, target: str = "draft",
                    caller: str = "+15550100", callee: str = "+15550199",
                    variables: dict[str, Any] | None = None,
                    mocks: dict[str, Any] | None = None) -> SimSession:
        await self._reap()
        if len(self._sessions) >= self.max_sessions or sum(
                s.tenant == tenant for s in self._sessions.values()) >= self.max_per_tenant:
            raise Invalid("too many simulator sessions: end one first", "flow_id",
                          "too_many_sessions")
        document = self.flows.document(tenant, flow_id, target)
        try:
            compiled = compile_flow(document)
        except FlowInvalid as e:
            raise Invalid(f"the {target} of {flow_id!r} does not validate", "target",
                          "flow_invalid", [p.as_dict() for p in e.problems]) from e
        try:
            mock = Mocks.model_validate(mocks or {})
        except ValidationError as e:
            loc = ".".join(str(p) for p in e.errors()[0]["loc"])
            raise Invalid(f"mocks.{loc}: {e.errors()[0]['msg']}", f"mocks.{loc}") from e
        subflows = {r["flow_id"]: self.flows.store.get(r["flow_id"], tenant=tenant).document
                    for r in self.flows.store.list_flows(tenant=tenant)}
        holder: list[SimSession] = []
        session_id = secrets.token_urlsafe(12)

        def on_output(o: SimOutput) -> None:
            if holder:
                holder[0].add(o.kind, text=o.text)

        call = SimulatedCall(self.clock, caller=caller, callee=callee,
                             call_id=f"sim-{session_id}", interactive=True, on_output=on_output)
        interp = Interpreter(compiled, call, clock=self.clock,
                             services=services_for(mock, subflows), variables=variables or {},
                             events=_Sink(holder), tenant=tenant)
        scope = TaskScope(f"sim:{session_id}")
        task = scope.spawn(interp.run(), "run")
        session = SimSession(session_id, tenant, owner, flow_id, target, call, interp, task,
                             scope, self.clock.now())
        holder.append(session)
        self._sessions[session_id] = session
        await self._settle(session)
        return session

    def get(self, tenant: str, session_id: str) -> SimSession:
        session = self._sessions.get(session_id)
        if session is None or session.tenant != tenant:
            raise Missing(f"no simulator session {session_id!r}")
        return session

    async def send(self, tenant: str, session_id: str, kind: str, value: str = ""
                   ) -> SimSession:
        session = self.get(tenant, session_id)
        if session.task.done():
            raise Invalid("the simulated call has ended", "kind", "ended")
        if kind == "digits":
            bad = sorted(set(value.upper()) - DIGITS) or ([] if value else ["(empty)"])
            if bad:
                raise Invalid(f"value: {''.join(bad)!r} are not DTMF keys", "value")
            session.call.feed_digits(value.upper())
        elif kind == "text":
            if not value.strip():
                raise Invalid("value: say something (or send kind 'silence')", "value")
            session.call.feed(SimInput("say", value.strip()))
        elif kind in ("silence", "hangup"):
            session.call.feed(SimInput(kind))  # type: ignore[arg-type]
        else:
            raise Invalid(f"kind: {kind!r} is not digits, text, silence or hangup", "kind")
        session.last_used = self.clock.now()
        await self._settle(session)
        return session

    async def _settle(self, session: SimSession) -> None:
        """Wait until the flow waits for the caller again (or ends), bounded."""
        idle = session.scope.spawn(session.call.idle.wait(), "idle")
        try:
            await self.clock.wait_for(
                asyncio.wait({idle, session.task}, return_when=asyncio.FIRST_COMPLETED),
                SETTLE_S)
        except TimeoutError:
            pass
        finally:
            idle.cancel()

    async def end(self, tenant: str, session_id: str) -> None:
        session = self.get(tenant, session_id)
        await self._close(session)

    async def _close(self, session: SimSession) -> None:
        self._sessions.pop(session.id, None)
        if not session.task.done():
            session.call.feed(SimInput("hangup"))
            try:
                await self.clock.wait_for(asyncio.wait({session.task}), 1.0)
            except TimeoutError:
                pass
        await session.scope.close(grace_s=1.0)
        await session.call.close()

    async def _reap(self) -> None:
        now = self.clock.now()
        for session in [s for s in self._sessions.values() if now - s.last_used > self.idle_s]:
            await self._close(session)

    async def close(self) -> None:
        for session in list(self._sessions.values()):
            await self._close(session)
