"""Timeouts for flow work on the injected clock.

``asyncio.timeout`` reads the loop's real clock, which tests cannot drive; flows time out on the
engine's :class:`~core.clock.Clock` (``wait_for``) so a ``FakeClock`` can fire a webhook timeout
or a latency budget without sleeping. This adds one thing: the clock's timeout and a timeout the
work raises itself are told apart.
"""

from __future__ import annotations

from collections.abc import Coroutine
from typing import Any, TypeVar

from core.clock import Clock

T = TypeVar("T")


class ClockTimeout(Exception):
    """The clock deadline passed before the work finished (the work was cancelled)."""


class _WorkTimedOut(Exception):
    """The work's own TimeoutError, kept apart from the clock's."""


async def run_with_timeout(
    clock: Clock, coro: Coroutine[Any, Any, T], seconds: float, name: str
) -> T:
    """Run ``coro``; cancel it and raise :class:`ClockTimeout` after ``seconds`` of ``clock``.
    A ``TimeoutError`` the work raises itself reaches the caller unchanged."""

    async def guarded() -> T:
        try:
            return await coro
        except TimeoutError as e:
            raise _WorkTimedOut from e

    try:
        return await clock.wait_for(guarded(), seconds)
    except _WorkTimedOut as e:
        assert isinstance(e.__cause__, TimeoutError)
        raise e.__cause__ from None
    except TimeoutError:
        raise ClockTimeout(f"{name} took longer than {seconds:g} s") from None
