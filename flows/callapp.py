"""The engine-facing adapter: a call router that runs the routed flow on each call.

``CallController`` asks its router for an application per call; :func:`flow_router` returns one
that resolves the dialled number to a compiled flow version (off the event loop: it may read
SQLite and compile JSON), runs the interpreter on the call and hands the run result, trace
included, to ``on_result`` for the call record. Typed on ``core.call.Call`` only, so flows stay
free of SIP.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from core.call import Call, CallHungUp
from core.clock import Clock
from flows.interpreter import EventSink, Interpreter, Limits, RunResult
from flows.routing import FlowRouter
from flows.services import FlowServices

log = logging.getLogger("ivr.flows")

CallApp = Callable[[Call], Awaitable[None]]


def flow_router(
    router: FlowRouter,
    *,
    clock: Clock,
    services: FlowServices | None = None,
    limits: Limits | None = None,
    events: EventSink | None = None,
    on_result: Callable[[Call, RunResult], None] | None = None,
) -> Callable[[Call], CallApp]:
    services = services or FlowServices()

    async def app(call: Call) -> None:
        compiled = await asyncio.to_thread(router.resolve, call.callee)
        if compiled is None:
            log.warning("no flow for dialled number %s; hanging up", call.callee)
            call.trace.add("flow.none", callee=call.callee)
            try:
                await call.hangup("no_flow")
            except CallHungUp:
                pass
            return
        result = await Interpreter(
            compiled, call, clock=clock, services=services, limits=limits, events=events
        ).run()
        call.trace.add(
            "flow.result",
            flow_id=result.flow_id,
            version=result.flow_version,
            status=result.status,
            reason=result.reason,
            steps=result.steps,
        )
        if on_result is not None:
            on_result(call, result)

    def route(_call: Call) -> CallApp:
        return app

    return route
