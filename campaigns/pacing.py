"""Pacing: calls per second and calls at once, per campaign, per trunk and per caller ID.

A :class:`Limiter` is one budget (a rate, a concurrency cap, or both). A dial takes a slot in
every limiter that applies (the campaign's, the trunk's as configured for the engine, the
campaign's own cap on that trunk, the caller ID's) and then waits for its turn in all their
rates at once: the start time is the latest of their next free times, and each moves on by its
own interval. That is smooth pacing (like SIPp's ``-r``), not bursts, and it runs on the
injected clock, so tests drive it with a fake one.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field

from core.clock import Clock


@dataclass(eq=False, slots=True)
class Limiter:
    name: str
    calls_per_s: float | None = None
    max_concurrent: int | None = None
    in_use: int = 0
    next_free: float = field(default=float("-inf"))
    placed: int = 0  # calls started through this limiter (for status and tests)

    def has_room(self) -> bool:
        return self.max_concurrent is None or self.in_use < self.max_concurrent

    def set_limits(self, calls_per_s: float | None, max_concurrent: int | None) -> None:
        """A changed spec (or config) takes effect for the next dial."""
        self.calls_per_s = calls_per_s
        self.max_concurrent = max_concurrent


class Pacer:
    """Shared by every campaign of one runner: limiters by name, one condition for slots."""

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self.limiters: dict[str, Limiter] = {}
        self._room = asyncio.Condition()

    def limiter(self, name: str, calls_per_s: float | None = None,
                max_concurrent: int | None = None) -> Limiter:
        lim = self.limiters.get(name)
        if lim is None:
            lim = self.limiters[name] = Limiter(name, calls_per_s, max_concurrent)
        else:
            lim.set_limits(calls_per_s, max_concurrent)
        return lim

    async def take_slots(self, limiters: Sequence[Limiter]) -> None:
        """Wait until every limiter has room for one more call, then take a slot in each."""
        async with self._room:
            await self._room.wait_for(lambda: all(lim.has_room() for lim in limiters))
            for lim in limiters:
                lim.in_use += 1

    def try_take_slots(self, limiters: Sequence[Limiter]) -> bool:
        if not all(lim.has_room() for lim in limiters):
            return False
        for lim in limiters:
            lim.in_use += 1
        return True

    async def release(self, limiters: Sequence[Limiter]) -> None:
        async with self._room:
            for lim in limiters:
                lim.in_use = max(0, lim.in_use - 1)
            self._room.notify_all()

    async def wait_turn(self, limiters: Sequence[Limiter]) -> float:
        """Wait for this call's start time in every rate; returns it (clock time)."""
        now = self.clock.now()
        start = max([now, *(lim.next_free for lim in limiters if lim.calls_per_s)])
        for lim in limiters:
            if lim.calls_per_s:
                lim.next_free = start + 1.0 / lim.calls_per_s
            lim.placed += 1
        if start > now:
            await self.clock.sleep_until(start)
        return start
