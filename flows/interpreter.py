"""The interpreter: walks one compiled flow version on one call.

Per call it owns the :class:`RunContext`, the loop guard, latency budgets and the trace. The
compiled flow is immutable and shared, so a call keeps the version it started with while a newer
version serves new calls. Errors never leave a caller in silence: a node failure takes the node's
``error`` port; with no such edge, or on a guard trip, the call is hung up and the run result says
why.

Loop guard (after Twilio Studio): at most ``max_steps`` node entries per call, and at most
``max_visits_in_a_row`` entries of the same node without the caller giving any input in between
(a runaway loop that does not wait for the caller). Per-node ``max_visits`` are retry limits the
author declares; exceeding one takes that node's ``max_visits`` port.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Protocol

from core.call import Call, CallHungUp
from core.clock import Clock
from flows.context import NodeError, RunContext
from flows.expr import Meter
from flows.jsondoc import jsonable
from flows.model import ERROR_PORT, MAX_VISITS_IN_A_ROW, MAX_VISITS_PORT, OVER_BUDGET_PORT
from flows.nodes import NodeType
from flows.services import FlowServices, call_service
from flows.timeouts import ClockTimeout, run_with_timeout
from flows.validator import CompiledFlow, FlowInvalid, compile_flow

log = logging.getLogger("ivr.flows")

MAX_STEPS_PER_CALL = 1000
MAX_SUBFLOW_DEPTH = 5


class EventSink(Protocol):
    """Where live node events go (``core.bus.EventBus`` fits); the console's live view."""

    def publish(self, topic: str, call_id: str | None = None, **data: Any) -> None: ...


@dataclass(frozen=True, slots=True)
class Limits:
    max_steps: int = MAX_STEPS_PER_CALL
    max_visits_in_a_row: int = MAX_VISITS_IN_A_ROW


@dataclass(slots=True)
class RunResult:
    """How the run ended; stored with the call record (QA and the console read it)."""

    status: str  # hangup, transferred, returned, caller_hangup, error, loop_guard
    reason: str = ""
    last_node: str | None = None
    steps: int = 0
    variables: dict[str, Any] = field(default_factory=dict)  # sensitive values masked
    trace: list[dict[str, Any]] = field(default_factory=list)
    flow_id: str = ""
    flow_version: int | None = None

    def as_dict(self) -> dict[str, Any]:
        """JSON-safe (for the call record, ``--json`` and the console): numbers too large to
        print and non-finite floats become text, whatever a service put into a variable."""
        return {
            "status": self.status,
            "reason": self.reason,
            "last_node": self.last_node,
            "steps": self.steps,
            "variables": jsonable(self.variables),
            "trace": jsonable(self.trace),
            "flow_id": self.flow_id,
            "flow_version": self.flow_version,
        }


class Interpreter:
    def __init__(
        self,
        flow: CompiledFlow,
        call: Call,
        *,
        clock: Clock,
        services: FlowServices | None = None,
        variables: dict[str, Any] | None = None,
        campaign: dict[str, Any] | None = None,
        tenant: str = "default",
        limits: Limits | None = None,
        events: EventSink | None = None,
        _depth: int = 0,
        _trace: list[dict[str, Any]] | None = None,
        _steps: list[int] | None = None,
    ) -> None:
        self.flow = flow
        self.call = call
        self.clock = clock
        self.services = services or FlowServices()
        self.limits = limits or Limits()
        self.events = events
        self.ctx = RunContext(
            call=call,
            clock=clock,
            services=self.services,
            flow_id=flow.id,
            language=flow.flow.language,
            tenant=tenant,
            campaign=dict(campaign or {}),
            variables={**flow.flow.variables, **(variables or {})},
            run_subflow=self._run_subflow,
            depth=_depth,
        )
        for node in flow.nodes.values():
            self.ctx.sensitive.update(node.sensitive_vars())
        self.trace: list[dict[str, Any]] = _trace if _trace is not None else []
        self._steps = _steps if _steps is not None else [0]  # shared with subflows
        self.current_node: str | None = None
        self._visits: Counter[str] = Counter()
        self._in_a_row: Counter[str] = Counter()

    async def run(self) -> RunResult:
        status, reason = await self._walk()
        result = RunResult(
            status=status,
            reason=reason,
            last_node=self.current_node,
            steps=self._steps[0],
            variables=self.ctx.masked_variables(),
            trace=self.trace,
            flow_id=self.flow.id,
            flow_version=self.flow.version,
        )
        if self.ctx.depth == 0:
            self.call.trace.add("flow.end", flow_id=self.flow.id, status=status, reason=reason)
            if self.events is not None:
                self.events.publish(
                    "flow.end",
                    self.call.call_id,
                    flow_id=self.flow.id,
                    version=self.flow.version,
                    status=status,
                    reason=reason,
                    steps=result.steps,
                    last_node=result.last_node,
                    variables=result.variables,
                    tenant=self.ctx.tenant,
                )
            if status in ("error", "loop_guard", "returned") and self.call.is_active:
                try:
                    await self.call.hangup("error" if status != "returned" else "normal")
                except CallHungUp:
                    pass
        return result

    async def _walk(self) -> tuple[str, str]:
        node_id: str = self.flow.start_id
        if self.ctx.depth == 0:
            self.call.trace.add("flow.start", flow_id=self.flow.id, version=self.flow.version)
        while True:
            self._steps[0] += 1
            if self._steps[0] > self.limits.max_steps:
                return "loop_guard", f"more than {self.limits.max_steps} steps in one call"
            node = self.flow.nodes[node_id]
            self.current_node = node_id
            self._visits[node_id] += 1
            self._in_a_row[node_id] += 1
            if self._in_a_row[node_id] > self.limits.max_visits_in_a_row:
                return "loop_guard", (
                    f"node {node_id!r} entered {self.limits.max_visits_in_a_row} times without "
                    "caller input"
                )
            try:
                outcome, detail = await self._run_node(node)
            except CallHungUp as e:
                return "caller_hangup", f"{e.cause} ({e.side}) in node {node_id!r}"
            self.ctx.last_outcome = outcome
            if outcome in node.terminal_outcomes:
                return outcome, detail
            nxt = self.flow.edges.get((node_id, outcome))
            if nxt is None:
                if outcome == ERROR_PORT:
                    return "error", f"node {node_id!r} failed: {detail}"
                return "error", f"node {node_id!r} has no edge for outcome {outcome!r}"
            node_id = nxt

    async def _run_node(self, node: NodeType) -> tuple[str, str]:
        ctx = self.ctx
        ctx.node_id = node.id
        ctx.meter = Meter()  # the node's evaluation budget (flows.expr)
        ctx.turn_latency_ms = None
        ctx.input_seen = False
        entered = self.clock.now()
        entry: dict[str, Any] = {
            "node_id": node.id,
            "type": node.type_name,
            "flow_id": self.flow.id,
            "entered_at": entered,
        }
        self.trace.append(entry)
        self.call.trace.add("node.enter", node_id=node.id, type=node.type_name)
        if self.events is not None:  # the live view lights the node up as it starts
            self.events.publish("flow.enter", self.call.call_id, flow_id=self.flow.id,
                                node_id=node.id, type=node.type_name)
        outcome, detail = await self._outcome(node)
        left = self.clock.now()
        if ctx.input_seen:
            self._in_a_row.clear()
        entry.update(left_at=left, duration_ms=round((left - entered) * 1000, 3), outcome=outcome)
        if detail:
            entry["detail"] = detail
        if ctx.turn_latency_ms is not None:
            entry["turn_latency_ms"] = round(ctx.turn_latency_ms, 3)
        self.call.trace.add(
            "node.leave", node_id=node.id, outcome=outcome, duration_ms=entry["duration_ms"]
        )
        if self.events is not None:
            self.events.publish(
                "flow.node",
                self.call.call_id,
                flow_id=self.flow.id,
                node_id=node.id,
                type=node.type_name,
                outcome=outcome,
                duration_ms=entry["duration_ms"],
                turn_latency_ms=entry.get("turn_latency_ms"),
            )
        return outcome, detail

    async def _outcome(self, node: NodeType) -> tuple[str, str]:
        spec = node.spec
        if spec.max_visits is not None and self._visits[node.id] > spec.max_visits:
            return MAX_VISITS_PORT, f"entered more than {spec.max_visits} times"
        budget_s = spec.budget_ms / 1000.0 if spec.budget_ms else None
        fallback = (node.id, OVER_BUDGET_PORT) in self.flow.edges
        started = self.clock.now()
        try:
            if budget_s is not None and fallback and not node.takes_input:
                outcome = await run_with_timeout(
                    self.clock, node.run(self.ctx), budget_s, f"flow:{self.call.call_id}:{node.id}"
                )
            else:
                outcome = await node.run(self.ctx)
        except ClockTimeout:
            self.call.trace.add("flow.over_budget", node_id=node.id, budget_ms=spec.budget_ms)
            return OVER_BUDGET_PORT, f"no outcome within the {spec.budget_ms} ms budget"
        except CallHungUp:
            raise
        except NodeError as e:
            log.info("flow %s node %s: %s", self.flow.id, node.id, e)
            return ERROR_PORT, str(e)
        except Exception as e:  # a bug in one node must not leave the caller in silence
            log.exception("flow %s node %s crashed", self.flow.id, node.id)
            return ERROR_PORT, f"internal error: {type(e).__name__}: {e}"
        if budget_s is not None:
            used_ms = (
                self.ctx.turn_latency_ms
                if node.takes_input
                else (self.clock.now() - started) * 1000.0
            )
            if used_ms is not None and used_ms > spec.budget_ms:  # type: ignore[operator]
                self.call.trace.add(
                    "flow.over_budget", node_id=node.id, budget_ms=spec.budget_ms, used_ms=used_ms
                )
                if fallback:
                    self.ctx.set("over_budget_outcome", outcome)
                    return OVER_BUDGET_PORT, f"turn took {used_ms:.0f} ms (budget {spec.budget_ms})"
        return outcome, ""

    async def _run_subflow(
        self, flow_id: str, inputs: dict[str, Any]
    ) -> tuple[str, dict[str, Any]]:
        if self.ctx.depth + 1 > MAX_SUBFLOW_DEPTH:
            raise NodeError(f"subflows nested deeper than {MAX_SUBFLOW_DEPTH}")
        # The resolver may read a database and a big flow takes a while to validate: both run
        # in a worker thread, never on the event loop that carries every call's audio.
        try:
            doc = await call_service(self.services.flows.get, flow_id, self.ctx.tenant)
        except Exception as e:  # a failing resolver takes the error port like any service
            raise NodeError(f"subflow {flow_id!r} could not be loaded: {e}") from e
        if doc is None:
            raise NodeError(f"subflow {flow_id!r} is not published")
        try:
            child_flow = await asyncio.to_thread(compile_flow, dict(doc))
        except FlowInvalid as e:
            raise NodeError(f"subflow {flow_id!r} is invalid: {e}") from e
        child = Interpreter(
            child_flow,
            self.call,
            clock=self.clock,
            services=self.services,
            variables=inputs,
            campaign=self.ctx.campaign,
            tenant=self.ctx.tenant,
            limits=self.limits,
            events=self.events,
            _depth=self.ctx.depth + 1,
            _trace=self.trace,
            _steps=self._steps,
        )
        result = await child.run()
        if result.status in ("caller_hangup", "hangup", "transferred"):
            raise CallHungUp(
                result.status, "caller" if result.status == "caller_hangup" else "engine"
            )
        return result.status, dict(child.ctx.variables)


async def run_flow(
    flow: CompiledFlow,
    call: Call,
    *,
    clock: Clock,
    services: FlowServices | None = None,
    **kwargs: Any,
) -> RunResult:
    """Convenience: one interpreter, one run."""
    return await Interpreter(flow, call, clock=clock, services=services, **kwargs).run()
