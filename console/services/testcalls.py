"""Test calls: a real outbound call that runs a chosen flow version, watched live.

The console names a target (a SIP URI, or a number sent through ``[console]
test_call_gateway``) and a flow; the engine places the call on its own SIP stack and runs the
flow on it, and the call's events carry the id returned here, so the caller of the API follows
it on ``/api/events?call_id=...``. Targets are limited to ``[console] test_call_targets`` (hosts
or networks): a test-call button must not become a way to call anywhere at the operator's cost.
The engine side is injected (:class:`CallPlacer`): ``ivr console`` alone has none and says so.
"""

from __future__ import annotations

import ipaddress
import logging
import uuid
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any, Protocol

from console.services.base import Actor, Audited, Conflict, Invalid, Missing
from console.services.flows import FlowOps
from core.clock import Clock
from core.tasks import TaskScope
from engine.sip.grammar import SipParseError
from engine.sip.uri import SipUri
from flows.validator import CompiledFlow, FlowInvalid

log = logging.getLogger("ivr.console")

KEEP_RECENT = 500  # finished test calls remembered for GET /api/testcalls/{id}
NUMBER_CHARS = frozenset("+0123456789*#")


class CallPlacer(Protocol):
    """Places a call and runs ``flow`` on it once answered; returns the finished record as a
    dict (``engine.cdr.CallRecord.as_dict``)."""

    async def place(self, target: str, flow: CompiledFlow, *, tenant: str, call_id: str,
                    from_user: str, ring_timeout_s: float) -> dict[str, Any]: ...


@dataclass
class TestCall:
    call_id: str
    tenant: str
    flow_id: str
    flow_version: int | None
    target: str
    placed_by: str
    placed_at: float
    status: str = "placing"  # placing | ended | failed
    record: dict[str, Any] = field(default_factory=dict)

    __test__ = False  # not a pytest test class


def _host_allowed(host: str, allowed: list[str]) -> bool:
    try:
        ip = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        ip = None
    for rule in allowed:
        if ip is not None and "/" in rule:
            try:
                if ip in ipaddress.ip_network(rule, strict=False):
                    return True
            except ValueError:
                continue
        elif host.lower() == rule.lower().strip("[]"):
            return True
    return False


class TestCalls(Audited):
    __test__ = False

    def __init__(self, flows: FlowOps, placer: CallPlacer | None, clock: Clock, *,
                 allowed_targets: list[str], gateway: str | None = None,
                 from_user: str = "ivr-test", ring_timeout_s: float = 30.0) -> None:
        super().__init__(flows.audit)
        self.flows = flows
        self.placer = placer
        self.clock = clock
        self.allowed_targets = allowed_targets
        self.gateway = gateway
        self.from_user = from_user
        self.ring_timeout_s = ring_timeout_s
        self._calls: OrderedDict[str, TestCall] = OrderedDict()
        self._tasks = TaskScope("testcalls")

    def resolve_target(self, to: str) -> str:
        """The SIP URI to call for ``to`` (a URI, or a number through the gateway)."""
        to = to.strip()
        if to and set(to) <= NUMBER_CHARS:
            if not self.gateway:
                raise Invalid("to: numbers need [console] test_call_gateway (a trunk or proxy "
                              "host); give a sip: URI instead", "to")
            to = f"sip:{to}@{self.gateway}"
        try:
            uri = SipUri.parse(to)
        except SipParseError as e:
            raise Invalid(f"to: {e}", "to") from e
        if uri.scheme not in ("sip", "sips") or not uri.host:
            raise Invalid("to: a sip: URI with a host, or a number", "to")
        if not _host_allowed(uri.host, self.allowed_targets):
            raise Invalid(f"to: host {uri.host} is not in [console] test_call_targets",
                          "to", "target_forbidden")
        return str(uri)

    async def start(self, actor: Actor, tenant: str, flow_id: str, to: str,
                    target: str = "latest") -> TestCall:
        if self.placer is None:
            raise Conflict("this console runs without an engine (ivr console): test calls "
                           "need `ivr run`", None, "no_engine")
        uri = self.resolve_target(to)
        try:
            if target == "draft":
                from flows.validator import compile_flow  # noqa: PLC0415

                compiled = compile_flow(self.flows.document(tenant, flow_id, "draft"))
                version = None
            else:
                pub = self.flows.version(tenant, flow_id,
                                         None if target == "latest" else _int(target))
                compiled, version = pub.compile(), pub.version
        except FlowInvalid as e:
            raise Invalid(f"the {target} of {flow_id!r} does not validate", "target",
                          "flow_invalid", [p.as_dict() for p in e.problems]) from e
        call = TestCall(str(uuid.uuid4()), tenant, flow_id, version, uri,
                        actor.principal.actor, self.clock.wall())
        self._remember(call)
        self._audit(actor, tenant=tenant, action="testcall.place",
                    resource=f"call:{call.call_id}",
                    detail={"flow_id": flow_id, "version": version, "to": uri})
        self._tasks.spawn(self._run(call, compiled), f"testcall-{call.call_id}")
        return call

    async def _run(self, call: TestCall, compiled: CompiledFlow) -> None:
        assert self.placer is not None
        try:
            call.record = await self.placer.place(
                call.target, compiled, tenant=call.tenant, call_id=call.call_id,
                from_user=self.from_user, ring_timeout_s=self.ring_timeout_s)
            call.status = "ended"
        except Exception as e:  # the API reports it; the engine goes on
            log.exception("test call %s failed", call.call_id)
            call.status = "failed"
            call.record = {"error": f"{type(e).__name__}: {e}"[:200]}

    def _remember(self, call: TestCall) -> None:
        self._calls[call.call_id] = call
        while len(self._calls) > KEEP_RECENT:
            self._calls.popitem(last=False)

    def get(self, tenant: str, call_id: str) -> TestCall:
        call = self._calls.get(call_id)
        if call is None or call.tenant != tenant:
            raise Missing(f"no test call {call_id!r}")
        return call

    def recent(self, tenant: str) -> list[TestCall]:
        return [c for c in reversed(self._calls.values()) if c.tenant == tenant]

    async def close(self) -> None:
        await self._tasks.close(grace_s=2.0)


def _int(value: str) -> int:
    try:
        return int(value)
    except ValueError as e:
        raise Invalid(f"target: {value!r} is not draft, latest or a version number",
                      "target") from e
