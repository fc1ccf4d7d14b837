"""Racing work against the injected clock.

``asyncio.timeout`` reads the loop's real clock, which tests cannot drive; flows must time out on
the engine's :class:`~core.clock.Clock` so a ``FakeClock`` can fire a webhook timeout or a
latency budget without sleeping.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any, TypeVar

from core.clock import Clock
from core.tasks import spawn

T = TypeVar("T")


class ClockTimeout(Exception):
    """The clock deadline passed before the work finished (the work was cancelled)."""


async def run_with_timeout(
    clock: Clock, coro: Coroutine[Any, Any, T], seconds: float, name: str
) -> T:
    """Run ``coro`` as a task; cancel it and raise :class:`ClockTimeout` after ``seconds``."""

    async def guarded() -> tuple[bool, Any]:
        # Failures come back as values so the task helper does not log expected errors.
        try:
            return True, await coro
        except Exception as e:  # handed back to the caller, which re-raises it
            return False, e

    work = spawn(guarded(), name)
    timer = spawn(clock.sleep(seconds), f"{name}:timer")
    try:
        await asyncio.wait({work, timer}, return_when=asyncio.FIRST_COMPLETED)
    except asyncio.CancelledError:
        work.cancel()
        timer.cancel()
        raise
    if work.done():
        timer.cancel()
        ok, value = work.result()
        if not ok:
            raise value
        return value
    work.cancel()
    try:
        await work
    except asyncio.CancelledError:
        pass
    raise ClockTimeout(f"{name} took longer than {seconds:g} s")
