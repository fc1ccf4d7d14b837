"""The engine-facing adapter: a call router that runs the routed flow on each call.

``CallController`` asks its router for an application per call; :func:`flow_router` returns one
that resolves the dialled number to a tenant and a compiled flow version (off the event loop: it
may read SQLite and compile JSON), and runs the interpreter on the call with that tenant. What a
call record needs goes on the event sink (the engine's bus): ``flow.start`` with the tenant and
version, ``flow.node`` per node and ``flow.end`` from the interpreter. Typed on
``core.call.Call`` only, so flows stay free of SIP.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from core.call import Call, CallHungUp
from core.clock import Clock
from flows.interpreter import EventSink, Interpreter, Limits
from flows.routing import FlowRouter
from flows.services import FlowServices
from flows.validator import CompiledFlow

log = logging.getLogger("ivr.flows")

CallApp = Callable[[Call], Awaitable[None]]


def flow_app(
    compiled: CompiledFlow,
    tenant: str,
    *,
    clock: Clock,
    services: FlowServices | None = None,
    limits: Limits | None = None,
    events: EventSink | None = None,
) -> CallApp:
    """An application that runs one given flow version on a call for ``tenant`` (test calls
    placed from the console, and the router below once it has resolved the number)."""
    services = services or FlowServices()

    async def app(call: Call) -> None:
        if events is not None:
            events.publish("flow.start", call.call_id, tenant=tenant,
                           flow_id=compiled.id, flow_version=compiled.version)
        result = await Interpreter(
            compiled, call, clock=clock, services=services, limits=limits, events=events,
            tenant=tenant,
        ).run()
        call.trace.add(
            "flow.result",
            flow_id=result.flow_id,
            version=result.flow_version,
            status=result.status,
            reason=result.reason,
            steps=result.steps,
        )

    return app


def flow_router(
    router: FlowRouter,
    *,
    clock: Clock,
    services: FlowServices | None = None,
    limits: Limits | None = None,
    events: EventSink | None = None,
) -> Callable[[Call], CallApp]:
    services = services or FlowServices()

    async def app(call: Call) -> None:
        routed = await asyncio.to_thread(router.resolve, call.callee)
        if routed is None:
            log.warning("no flow for dialled number %s; hanging up", call.callee)
            call.trace.add("flow.none", callee=call.callee)
            try:
                await call.hangup("no_flow")
            except CallHungUp:
                pass
            return
        await flow_app(routed.flow, routed.tenant, clock=clock, services=services,
                       limits=limits, events=events)(call)

    def route(_call: Call) -> CallApp:
        return app

    return route
