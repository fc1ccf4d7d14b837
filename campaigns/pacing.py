"""Pacing: calls per second and calls at once, per campaign, per trunk and per caller ID.

A :class:`Limiter` is one budget (a rate, a concurrency cap, or both). A dial takes a slot in
every limiter that applies (the campaign's, the trunk's as configured for the engine, the
campaign's own cap on that trunk, the caller ID's) and then waits for its turn in all their
rates at once: the start time is the latest of their next free times, and each moves on by its
own interval. That is smooth pacing (like SIPp's ``-r``), not bursts, and it runs on the
injected clock, so tests drive it with a fake one.

In a cluster the budgets are shared by every node (:mod:`campaigns.shared_pacing`): the local
limiters still count this node's calls (status, the engine's own cap), and a dial also needs
room and its turn in the shared budgets. If the shared store is unreachable, nothing is dialled
until it is back: a carrier's CPS limit is not something to guess at.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field

from campaigns.shared_pacing import SharedBudgets
from core.clock import Clock

log = logging.getLogger("ivr.campaigns")

SHARED_RETRY_S = 0.05  # another node holds the last slot: look again after this
SHARED_DOWN_RETRY_S = 1.0  # the shared store did not answer
LOCAL_ONLY = ("engine",)  # budgets that are this node's own, never shared


@dataclass(eq=False, slots=True)
class Limiter:
    name: str
    calls_per_s: float | None = None
    max_concurrent: int | None = None
    in_use: int = 0
    next_free: float = field(default=float("-inf"))
    placed: int = 0  # calls started through this limiter (for status and tests)

    @property
    def shared(self) -> bool:
        return self.name not in LOCAL_ONLY

    def has_room(self) -> bool:
        return self.max_concurrent is None or self.in_use < self.max_concurrent

    def set_limits(self, calls_per_s: float | None, max_concurrent: int | None) -> None:
        """A changed spec (or config) takes effect for the next dial."""
        self.calls_per_s = calls_per_s
        self.max_concurrent = max_concurrent


class Pacer:
    """Shared by every campaign of one runner: limiters by name, one condition for slots."""

    def __init__(self, clock: Clock, shared: SharedBudgets | None = None) -> None:
        self.clock = clock
        self.shared = shared
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
        while True:
            async with self._room:
                await self._room.wait_for(lambda: all(lim.has_room() for lim in limiters))
                pause = await self._take_shared(limiters)
                if pause == 0.0:
                    for lim in limiters:
                        lim.in_use += 1
                    return
            await self.clock.sleep(pause)

    async def try_take_slots(self, limiters: Sequence[Limiter]) -> bool:
        """A slot in each now, or False (the caller tries something else: not a waiter)."""
        if not all(lim.has_room() for lim in limiters):
            return False
        if await self._take_shared(limiters, wait=False) != 0.0:
            return False
        for lim in limiters:
            lim.in_use += 1
        return True

    async def _take_shared(self, limiters: Sequence[Limiter], *, wait: bool = True) -> float:
        """0.0 when the shared budgets took the call, else how long to wait before asking
        again."""
        caps = [(lim.name, lim.max_concurrent) for lim in limiters
                if lim.shared and lim.max_concurrent is not None]
        if self.shared is None or not caps:
            return 0.0
        try:
            return 0.0 if await self.shared.take(caps, wait=wait) else SHARED_RETRY_S
        except Exception as e:  # Redis away: no dial without the cluster's budget
            log.warning("campaign pacing: shared budgets unreachable (%s); waiting", e)
            return SHARED_DOWN_RETRY_S

    async def release(self, limiters: Sequence[Limiter]) -> None:
        async with self._room:
            for lim in limiters:
                lim.in_use = max(0, lim.in_use - 1)
            self._room.notify_all()
        names = [lim.name for lim in limiters if lim.shared and lim.max_concurrent is not None]
        if self.shared is not None and names:
            try:
                await self.shared.release(names)
            except Exception as e:  # the slot stays taken until this node restarts or dies
                log.warning("campaign pacing: shared slot not released (%s)", e)

    async def wait_turn(self, limiters: Sequence[Limiter]) -> float:
        """Wait for this call's start time in every rate; returns it (clock time). In a
        cluster the shared budgets' rates are kept only in the shared store (two clocks for
        one budget would let two nodes pick the same instant)."""
        shared = self.shared
        now = self.clock.now()
        local = [lim for lim in limiters
                 if lim.calls_per_s and not (shared is not None and lim.shared)]
        start = max([now, *(lim.next_free for lim in local)])
        for lim in local:
            assert lim.calls_per_s
            lim.next_free = start + 1.0 / lim.calls_per_s
        for lim in limiters:
            lim.placed += 1
        intervals = [(lim.name, 1.0 / lim.calls_per_s) for lim in limiters
                     if lim.shared and lim.calls_per_s]
        if shared is not None and intervals:
            while True:
                mono, wall = self.clock.now(), self.clock.wall()
                try:
                    shared_start = await shared.turn(intervals, wall + (start - mono))
                    break
                except Exception as e:  # Redis away: no dial without the cluster's budget
                    log.warning("campaign pacing: shared rates unreachable (%s); waiting", e)
                    await self.clock.sleep(SHARED_DOWN_RETRY_S)
            start = mono + (shared_start - wall)
        if start > self.clock.now():
            await self.clock.sleep_until(start)
        return start
