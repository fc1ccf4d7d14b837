"""Rules that send an SMS after a call (挂机短信), decided from the call's events on the bus.

A rule names the outcome it reacts to (a disposition: ``answered``, ``no_answer``, ``busy``,
``failed``, ``rejected``, ``cancelled``; the flow's end: ``caller_hangup`` in node X; or any
condition on the flow's variables, such as ``confirmed == true`` or ``opted_out == true``, in
the flows' sandboxed expression language), the template, whom to send to, a delay and quiet
hours in the recipient's local time. :class:`CallFacts` gathers what one call's events said;
:func:`matching` is pure, so rules are tested without a call.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta, tzinfo
from typing import Any

from core.bus import BusEvent
from flows.expr import ExprError, evaluate

DISPOSITIONS = ("answered", "no_answer", "busy", "failed", "rejected", "cancelled", "any")


class RuleError(ValueError):
    """A rule definition is wrong; the message names the rule and field."""


def parse_quiet_hours(value: str) -> tuple[time, time]:
    """``"21:00-08:00"`` -> (start, end); the span may cross midnight."""
    try:
        a, b = value.split("-")
        return time.fromisoformat(a.strip()), time.fromisoformat(b.strip())
    except ValueError as e:
        raise RuleError(f"quiet_hours: {value!r} is not HH:MM-HH:MM") from e


def after_quiet_hours(at: datetime, quiet: tuple[time, time] | None) -> datetime:
    """``at`` (aware, recipient's zone) or the end of the quiet hours it falls in."""
    if quiet is None or quiet[0] == quiet[1]:
        return at
    start, end = quiet
    t = at.timetz().replace(tzinfo=None)
    crosses_midnight = start > end
    inside = (t >= start or t < end) if crosses_midnight else (start <= t < end)
    if not inside:
        return at
    day = at.date()
    if crosses_midnight and t >= start:
        day = day + timedelta(days=1)
    return datetime.combine(day, end, tzinfo=at.tzinfo)


@dataclass(frozen=True, slots=True)
class SmsRule:
    name: str
    template: str  # template id in the tenant's templates
    on: tuple[str, ...] = ("answered",)  # dispositions (or "any")
    tenant: str | None = None  # None: every tenant
    direction: str | None = None  # inbound / outbound / None for both
    flow_status: str | None = None  # e.g. caller_hangup, hangup, transferred
    last_node: str | None = None  # the node the flow ended in (caller hung up there)
    when: str | None = None  # expression over the call's facts and flow variables
    to: str = "customer"  # customer (caller inbound, callee outbound), caller, callee
    delay_s: float = 0.0
    quiet_hours: str | None = "21:00-08:00"
    purpose: str = "notification"

    def __post_init__(self) -> None:
        bad = [d for d in self.on if d not in DISPOSITIONS]
        if bad:
            raise RuleError(f"rule {self.name}: on: {bad} not among {', '.join(DISPOSITIONS)}")
        if self.delay_s < 0:
            raise RuleError(f"rule {self.name}: delay_s: negative")
        if self.quiet_hours:
            parse_quiet_hours(self.quiet_hours)
        if self.to not in ("customer", "caller", "callee"):
            raise RuleError(f"rule {self.name}: to: {self.to!r} is not customer, caller "
                            "or callee")
        if self.when:
            try:
                evaluate(self.when, {})
            except ExprError as e:
                if "undefined variable" not in e.reason:
                    raise RuleError(f"rule {self.name}: when: {e}") from e


@dataclass(slots=True)
class CallFacts:
    """What one call's bus events said, gathered until its ``call.ended``."""

    call_id: str
    direction: str = ""
    caller: str = ""
    callee: str = ""
    tenant: str = "default"
    campaign: str | None = None
    flow_id: str = ""
    flow_status: str = ""
    last_node: str = ""
    variables: dict[str, Any] = field(default_factory=dict)
    disposition: str = ""
    cause: str = ""
    side: str = ""
    ended_at: float = 0.0

    @property
    def customer(self) -> str:
        return self.callee if self.direction == "outbound" else self.caller

    def recipient(self, to: str) -> str:
        return {"caller": self.caller, "callee": self.callee}.get(to, self.customer)

    def scope(self) -> dict[str, Any]:
        """What a rule's ``when`` and a template see: flow variables over the call's facts."""
        base: dict[str, Any] = {
            "call_id": self.call_id, "direction": self.direction, "caller": self.caller,
            "callee": self.callee, "tenant": self.tenant, "campaign": self.campaign or "",
            "flow_id": self.flow_id, "flow_status": self.flow_status,
            "last_node": self.last_node, "disposition": self.disposition, "cause": self.cause,
            "side": self.side,
        }
        base.update(self.variables)
        return base


def rule_matches(rule: SmsRule, facts: CallFacts) -> bool:
    if rule.tenant is not None and rule.tenant != facts.tenant:
        return False
    if rule.direction is not None and rule.direction != facts.direction:
        return False
    if "any" not in rule.on and facts.disposition not in rule.on:
        return False
    if rule.flow_status is not None and rule.flow_status != facts.flow_status:
        return False
    if rule.last_node is not None and rule.last_node != facts.last_node:
        return False
    if rule.when:
        try:
            return bool(evaluate(rule.when, facts.scope()))
        except ExprError:
            return False  # a variable the call never set: the condition does not hold
    return True


def matching(rules: Sequence[SmsRule], facts: CallFacts) -> list[SmsRule]:
    return [r for r in rules if rule_matches(r, facts)]


def number_of(party: str) -> str:
    """The phone number in a party as the bus carries it: ``sip:13800138000@host:5060``,
    ``tel:+86...`` or already a number."""
    text = party.strip()
    for scheme in ("sips:", "sip:", "tel:"):
        if text.lower().startswith(scheme):
            text = text[len(scheme):]
            break
    return text.split("@", 1)[0].split(";", 1)[0]


class FactsCollector:
    """A bus listener: keeps each call's facts until its end, then hands them on.

    Listeners run synchronously in the publisher (a call's teardown), so this only copies
    fields; ``on_ended`` must be as cheap (it schedules the real work)."""

    MAX_OPEN_CALLS = 100_000  # a call whose end never comes must not grow this forever

    def __init__(self, on_ended: Callable[[CallFacts], None]) -> None:
        self.on_ended = on_ended
        self.calls: dict[str, CallFacts] = {}

    def __call__(self, ev: BusEvent) -> None:
        if ev.call_id is None:
            return
        if ev.topic == "call.invite":
            if len(self.calls) >= self.MAX_OPEN_CALLS:
                self.calls.pop(next(iter(self.calls)))
            self.calls[ev.call_id] = CallFacts(
                ev.call_id, direction=str(ev.data.get("direction", "")),
                caller=number_of(str(ev.data.get("caller", ""))),
                callee=number_of(str(ev.data.get("callee", ""))),
                tenant=str(ev.data.get("tenant") or "default"),
                campaign=ev.data.get("campaign"))
            return
        facts = self.calls.get(ev.call_id)
        if facts is None:
            return
        d = ev.data
        if ev.topic == "flow.start":
            facts.tenant = str(d.get("tenant") or facts.tenant)
            facts.flow_id = str(d.get("flow_id", ""))
        elif ev.topic == "flow.end":  # a subflow ends before its parent: the last one wins
            facts.flow_status = str(d.get("status", ""))
            facts.last_node = str(d.get("last_node", ""))
            facts.variables = dict(d.get("variables") or {})
            facts.tenant = str(d.get("tenant") or facts.tenant)
        elif ev.topic == "call.ended":
            del self.calls[ev.call_id]
            facts.disposition = str(d.get("disposition", ""))
            facts.cause = str(d.get("cause", ""))
            facts.side = str(d.get("side", ""))
            facts.ended_at = float(d.get("at") or 0.0)
            self.on_ended(facts)


def local_zone(number: str, zone_of: Callable[[str], tzinfo], default: tzinfo) -> tzinfo:
    try:
        return zone_of(number)
    except (ValueError, KeyError):
        return default
