"""One attempt on the wire: the application an answered campaign call runs, and its outcome.

The application optionally classifies the answer first (answering-machine detection, waiting
for the beep when asked), then runs the campaign's flow version with the contact's variables
and the campaign in the flow context (``campaign.id``, ``campaign.number``, ``campaign.attempt``
and every contact column). What it learns (AMD class and decision time, the flow's status, last
node and variables) lands in an :class:`AttemptOutcome` the runner stores with the call record.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from campaigns.spec import AmdSpec
from core.call import Call, CallHungUp
from core.clock import Clock
from engine.cdr import CallRecord
from flows.interpreter import EventSink, Interpreter, Limits
from flows.services import FlowServices
from flows.validator import CompiledFlow

log = logging.getLogger("ivr.campaigns")


class AmdResult(Protocol):
    @property
    def label(self) -> str: ...  # human, machine, fax, silence, unknown

    @property
    def decision_ms(self) -> int: ...

    @property
    def beep_ms(self) -> int | None: ...  # when the beep ended (wait_for_beep), from answer


AmdRunner = Callable[[Call, AmdSpec], Awaitable[AmdResult]]


@dataclass(slots=True)
class AttemptOutcome:
    amd: str = ""
    amd_ms: int | None = None
    beep_ms: int | None = None
    flow_status: str = ""
    last_node: str = ""
    variables: dict[str, Any] = field(default_factory=dict)
    error: str = ""

    def as_row(self, record: CallRecord) -> dict[str, Any]:
        """Columns of the attempt row (campaigns.model.AttemptRow)."""
        return {"call_id": record.id, "disposition": record.disposition,
                "cause": record.hangup_cause[:64], "sip_status": record.sip_status,
                "amd": self.amd, "amd_ms": self.amd_ms, "flow_status": self.flow_status,
                "last_node": (self.last_node or "")[:128],
                "duration_s": round(record.duration_s, 3), "ended_at": record.end_at,
                "result": self.result(record)}

    def result(self, record: CallRecord) -> dict[str, Any]:
        """What the report shows per contact (voice notification: heard, confirmed, hung up
        at second N)."""
        out: dict[str, Any] = dict(self.variables)
        if record.disposition == "answered":
            out["duration_s"] = round(record.duration_s, 1)
            if record.hangup_side in ("callee", "caller"):  # the far end hung up
                out["hung_up_at_s"] = round(record.duration_s, 1)
        if self.amd:
            out["amd"] = self.amd
        if self.beep_ms is not None:
            out["beep_ms"] = self.beep_ms
        if self.flow_status:
            out["flow_status"] = self.flow_status
        return out


@dataclass(frozen=True, slots=True)
class AttemptContext:
    campaign_id: str
    campaign_name: str
    tenant: str
    number: str
    attempt: int
    variables: dict[str, Any]
    flow: CompiledFlow
    services: FlowServices
    amd_spec: AmdSpec
    caller_id: str = ""


def campaign_scope(ctx: AttemptContext) -> dict[str, Any]:
    """What flows read as ``campaign``: ids, the contact's number and attempt, its columns."""
    return {**ctx.variables, "id": ctx.campaign_id, "name": ctx.campaign_name,
            "number": ctx.number, "attempt": ctx.attempt, "caller_id": ctx.caller_id}


def attempt_app(ctx: AttemptContext, outcome: AttemptOutcome, *, clock: Clock,
                events: EventSink | None, amd: AmdRunner | None,
                limits: Limits | None = None) -> Callable[[Call], Awaitable[None]]:
    async def app(call: Call) -> None:
        variables = dict(ctx.variables)
        if ctx.amd_spec.enabled and amd is not None:
            result = await amd(call, ctx.amd_spec)
            outcome.amd, outcome.amd_ms, outcome.beep_ms = (result.label, result.decision_ms,
                                                            result.beep_ms)
            call.trace.add("amd", label=result.label, decision_ms=result.decision_ms,
                           beep_ms=result.beep_ms)
            if events is not None:
                events.publish("campaign.amd", call.call_id, campaign=ctx.campaign_id,
                               label=result.label, decision_ms=result.decision_ms)
            variables.update(amd=result.label, amd_ms=result.decision_ms)
            if result.label in ctx.amd_spec.hangup_on:
                outcome.flow_status = "amd_hangup"
                try:
                    await call.hangup(f"amd_{result.label}")
                except CallHungUp:
                    pass
                return
        if events is not None:
            events.publish("flow.start", call.call_id, tenant=ctx.tenant, flow_id=ctx.flow.id,
                           flow_version=ctx.flow.version, campaign=ctx.campaign_id)
        interpreter = Interpreter(ctx.flow, call, clock=clock, services=ctx.services,
                                  variables=variables, campaign=campaign_scope(ctx),
                                  tenant=ctx.tenant, limits=limits, events=events)
        try:
            run = await interpreter.run()
        finally:
            outcome.variables = interpreter.ctx.masked_variables()
        outcome.flow_status, outcome.last_node = run.status, run.last_node or ""

    return app
