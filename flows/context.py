"""Per-call run context: variables, built-ins, injected services and the clock.

Nodes see the call only through this object, so one node class runs unchanged on a SIP call, an
Asterisk call or the simulator. Variable values marked sensitive (PINs, card numbers) are masked
whenever they leave the context (trace, logs, run result).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from core.call import Call
from core.clock import Clock
from flows.expr import ExprError, LimitExceeded, Meter, check_value, evaluate
from flows.services import FlowServices
from flows.template import render

log = logging.getLogger("ivr.flows")

MASK = "****"

SubflowRunner = Callable[[str, dict[str, Any]], Awaitable[tuple[str, dict[str, Any]]]]


class NodeError(Exception):
    """A node failed at run time (bad webhook reply, expression error...): take its error port."""


@dataclass(slots=True)
class RunContext:
    call: Call
    clock: Clock
    services: FlowServices
    flow_id: str
    language: str = "en-US"
    tenant: str = "default"
    campaign: dict[str, Any] = field(default_factory=dict)
    variables: dict[str, Any] = field(default_factory=dict)
    sensitive: set[str] = field(default_factory=set)
    node_id: str = ""
    last_outcome: str = ""
    turn_latency_ms: float | None = None
    input_seen: bool = False
    run_subflow: SubflowRunner | None = None
    depth: int = 0
    # One step budget per node run, shared by every expression, template and stored value the
    # node evaluates (the interpreter starts a fresh one when it enters a node).
    meter: Meter = field(default_factory=Meter)

    def scope(self) -> dict[str, Any]:
        """What expressions and templates read: built-ins overlaid by flow variables."""
        base: dict[str, Any] = {
            "caller": self.call.caller,
            "callee": self.call.callee,
            "identity": dict(self.call.identity),
            "call_id": self.call.call_id,
            "campaign": self.campaign,
            "tenant": self.tenant,
            "flow_id": self.flow_id,
            "language": self.language,
            "last_outcome": self.last_outcome,
            "over_budget_outcome": "",
        }
        base.update(self.variables)
        return base

    def eval(self, expr: str, what: str) -> Any:
        try:
            return evaluate(expr, self.scope(), self.meter)
        except ExprError as e:
            raise NodeError(f"{what}: {e}") from e

    def render(self, template: str, what: str, language: str | None = None) -> str:
        """Fill a template; number/money/date filters read in ``language`` (default: the flow's)."""
        try:
            return render(template, self.scope(), language or self.language, self.meter)
        except ExprError as e:
            raise NodeError(f"{what}: {e}") from e

    def set(self, name: str, value: Any, *, sensitive: bool = False, what: str = "") -> None:
        """Store a variable. Values obey the expression bounds (text, integer and value size),
        whoever produced them: an expression, a webhook reply, the caller's input."""
        try:
            check_value(value, self.meter)
        except LimitExceeded as e:
            source = f" from {what}" if what else ""
            raise NodeError(f"value for variable {name!r}{source}: {e}") from e
        self.variables[name] = value
        if sensitive:
            self.sensitive.add(name)
        shown = MASK if name in self.sensitive else value
        self.call.trace.add("flow.set", node_id=self.node_id, name=name, value=shown)

    def mark_input(self) -> None:
        """The caller gave input: resets the runaway-loop counter (see interpreter)."""
        self.input_seen = True

    def masked_variables(self) -> dict[str, Any]:
        return {k: (MASK if k in self.sensitive else v) for k, v in self.variables.items()}

    def masked(self, mapping: Mapping[str, Any]) -> dict[str, Any]:
        return {k: (MASK if k in self.sensitive else v) for k, v in mapping.items()}
