"""Injected clocks: every timer and timestamp in the project reads time through a :class:`Clock`.

Why: SIP transaction timers, 2xx retransmission, CANCEL and ring timeouts, DTMF inter-digit and
no-input timeouts, webhook and recogniser deadlines all decide what a call does next. With the
clock injected, tests drive them with :class:`FakeClock` (``await clock.advance(32)``) instead of
sleeping, so a 32 s timer is tested in microseconds and never flakes. Sans-IO state machines take
``now`` as an argument and never call a clock themselves; the asyncio layer asks the clock and
feeds them.

Two time bases: ``now()`` is monotonic (deadlines, durations) and ``wall()`` is epoch seconds
(timestamps stored in records and traces). Both move together on a ``FakeClock``.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import time
from collections.abc import Awaitable, Callable
from typing import Any, Protocol, TypeVar

from core.tasks import awaited

T = TypeVar("T")


class TimerHandle(Protocol):
    def cancel(self) -> None: ...


class Clock(Protocol):
    """Monotonic and wall time, sleeps, timer callbacks and timeouts on one time base."""

    def now(self) -> float:
        """Monotonic seconds: deadlines and durations."""
        ...

    def wall(self) -> float:
        """Epoch seconds: what records, traces and logs store."""
        ...

    async def sleep(self, seconds: float) -> None: ...

    async def sleep_until(self, deadline: float) -> None: ...

    def call_at(self, deadline: float, callback: Callable[[], None]) -> TimerHandle:
        """Run ``callback`` (which must not raise or block) at ``deadline`` on ``now()``'s base."""
        ...

    async def wait_for(self, aw: Awaitable[T], timeout_s: float | None) -> T:
        """``aw``'s result, or :class:`TimeoutError` after ``timeout_s`` seconds of this clock
        (``aw`` is cancelled then). ``None`` waits forever."""
        ...


class SystemClock:
    """The event loop's monotonic clock (``loop.time()``) and the system's wall clock."""

    def now(self) -> float:
        try:
            return asyncio.get_running_loop().time()
        except RuntimeError:
            return time.monotonic()

    def wall(self) -> float:
        return time.time()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(max(0.0, seconds))

    async def sleep_until(self, deadline: float) -> None:
        await asyncio.sleep(max(0.0, deadline - self.now()))

    def call_at(self, deadline: float, callback: Callable[[], None]) -> TimerHandle:
        return asyncio.get_running_loop().call_at(deadline, callback)

    async def wait_for(self, aw: Awaitable[T], timeout_s: float | None) -> T:
        return await asyncio.wait_for(aw, timeout_s)


class _Timer:
    __slots__ = ("callback", "cancelled")

    def __init__(self, callback: Callable[[], None]) -> None:
        self.callback = callback
        self.cancelled = False

    def cancel(self) -> None:
        self.cancelled = True


class FakeClock:
    """A clock that only moves when a test calls :meth:`advance`.

    Sleepers and timer callbacks fire in deadline order; ``advance`` yields to the loop after
    each one so code that reacts to a timeout runs before time moves on.
    """

    def __init__(self, start: float = 1000.0, wall_start: float = 1_700_000_000.0) -> None:
        self._now = start
        self._wall_offset = wall_start - start
        self._due: list[tuple[float, int, asyncio.Future[None] | _Timer]] = []
        self._seq = itertools.count()

    def now(self) -> float:
        return self._now

    def wall(self) -> float:
        return self._now + self._wall_offset

    async def sleep(self, seconds: float) -> None:
        await self.sleep_until(self._now + max(0.0, seconds))

    async def sleep_until(self, deadline: float) -> None:
        if deadline <= self._now:
            await asyncio.sleep(0)
            return
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._due, (deadline, next(self._seq), fut))
        await fut

    def call_at(self, deadline: float, callback: Callable[[], None]) -> TimerHandle:
        timer = _Timer(callback)
        heapq.heappush(self._due, (deadline, next(self._seq), timer))
        return timer

    async def wait_for(self, aw: Awaitable[T], timeout_s: float | None) -> T:
        return await race_with_clock(self, aw, timeout_s)

    async def advance(self, seconds: float) -> None:
        """Move time forward, firing every sleeper and timer whose deadline passes, in order."""
        target = self._now + seconds
        while self._due and self._due[0][0] <= target:
            deadline, _, item = heapq.heappop(self._due)
            self._now = max(self._now, deadline)
            if isinstance(item, _Timer):
                if not item.cancelled:
                    item.callback()
            elif not item.done():
                item.set_result(None)
            for _ in range(5):
                await asyncio.sleep(0)
        self._now = target
        for _ in range(5):
            await asyncio.sleep(0)

    @property
    def pending(self) -> int:
        """Sleepers and timers still waiting (tests assert nothing is left behind)."""
        return sum(1 for _, _, item in self._due
                   if not (item.cancelled if isinstance(item, _Timer) else item.done()))


async def race_with_clock(clock: Clock, aw: Awaitable[T], timeout_s: float | None) -> T:
    """Await ``aw`` against a sleep on ``clock``: its result, else ``TimeoutError`` (``aw`` is
    cancelled). The one implementation of "race the work against a clock sleep"."""
    if timeout_s is None:
        return await aw
    work: asyncio.Future[T] = awaited(aw, "wait_for")
    timer: asyncio.Future[Any] = awaited(clock.sleep(timeout_s), "wait_for-timer")
    try:
        await asyncio.wait({work, timer}, return_when=asyncio.FIRST_COMPLETED)
    except BaseException:
        work.cancel()
        raise
    finally:
        timer.cancel()
    if work.done():
        return work.result()
    work.cancel()
    try:
        await work
    except asyncio.CancelledError:
        pass
    raise TimeoutError(f"timed out after {timeout_s:g} s")
