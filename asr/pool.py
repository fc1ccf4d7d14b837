"""The bounded inference pool: blocking model work off the event loop, with timeouts.

Why a thread pool: the heavy parts (CTranslate2, onnxruntime, pocketsphinx, Kaldi) are native
code that releases the GIL or runs in short slices, and models loaded once are shared by threads
without copying hundreds of MB into each worker process.

A job that overruns its timeout returns control to the call at once (:class:`InferenceTimeout`,
mapped by the node to its ``error``/``over_budget`` port). A thread cannot be killed, so the
stuck job keeps its worker until it returns; ``max_pending`` bounds how much work may pile up
behind stuck or slow jobs, beyond which new work is refused at once (:class:`PoolOverloaded`)
rather than queued into a latency the caller would hear. Timeouts read the injected clock.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import os
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, ParamSpec, TypeVar

from core.clock import Clock, SystemClock
from core.tasks import spawn

log = logging.getLogger("ivr.asr.pool")
P = ParamSpec("P")
T = TypeVar("T")


class PoolError(RuntimeError):
    """Base of the pool's own failures (the job's own exceptions propagate unchanged)."""


class InferenceTimeout(PoolError):
    def __init__(self, what: str, timeout_s: float) -> None:
        super().__init__(f"{what}: no result within {timeout_s:.3f}s")
        self.what = what
        self.timeout_s = timeout_s


class PoolOverloaded(PoolError):
    def __init__(self, what: str, pending: int) -> None:
        super().__init__(f"{what}: refused, {pending} jobs already pending")
        self.what = what


FINAL_JOB = "asr.finish"  # the job whose duration predicts a turn's wait (see expected_wait_s)
COST_SMOOTHING = 0.2


class InferencePool:
    """``workers`` threads shared by every call; ``lane_limits`` caps how many of them one kind
    of work may hold at once. By default free text on whisper or whisper-base (lanes named after
    the engine, :func:`asr.listen.turn_lane`) may hold ``workers - 1``: a burst of free-text
    decodes (~0.1-1 s each) then queues behind itself while menu turns (lane ``<engine>:menu``,
    short answers) keep a worker of their own and their latency."""

    def __init__(
        self,
        workers: int | None = None,
        max_pending: int = 256,
        clock: Clock | None = None,
        lane_limits: dict[str, int] | None = None,
    ) -> None:
        self.workers = workers or os.cpu_count() or 2
        self.max_pending = max_pending
        self.clock: Clock = clock or SystemClock()
        self._executor = ThreadPoolExecutor(self.workers, thread_name_prefix="asr-infer")
        # one thread for light jobs (opening a stream that only buffers): never queued behind
        # the decodes that hold every inference worker when many callers finish at once
        self._light = ThreadPoolExecutor(1, thread_name_prefix="asr-light")
        free_text = max(1, self.workers - 1)
        limits = ({"whisper": free_text, "whisper-base": free_text} if lane_limits is None
                  else lane_limits)
        for lane, n in limits.items():
            if n < 1:
                raise ValueError(f"pool lane_limits[{lane!r}] must be >= 1, got {n}")
        self.lane_limits = dict(limits)
        self._lanes: dict[str, asyncio.Semaphore] = {}
        self._waiting: dict[str, int] = {}  # jobs queued for each lane's slot
        self._running: dict[str, int] = {}
        self._cost: dict[str, float] = {}  # lane -> moving average of a final decode, seconds
        self.pending = 0
        self.timeouts = 0
        self.completed = 0

    async def run(
        self, what: str, timeout_s: float, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs
    ) -> T:
        """Run ``fn(*args, **kwargs)`` in a worker; raise InferenceTimeout after ``timeout_s``."""
        return await self.run_in(None, what, timeout_s, fn, *args, **kwargs)

    async def run_in(
        self,
        lane: str | None,
        what: str,
        timeout_s: float,
        fn: Callable[P, T],
        *args: P.args,
        **kwargs: P.kwargs,
    ) -> T:
        """:meth:`run` within ``lane``'s limit; the timeout includes waiting for the lane."""
        if self.pending >= self.max_pending:
            raise PoolOverloaded(what, self.pending)
        self.pending += 1
        state = {"started": False}
        job = spawn(
            self._execute(lane, state, functools.partial(fn, *args, **kwargs),
                          what == FINAL_JOB),
            f"asr-job:{what}",
        )
        job.add_done_callback(self._job_done)
        try:
            # shielded: a timeout (or the caller's cancellation) must not kill a running thread's
            # bookkeeping; the job is cancelled below only while it still waits for its lane
            value, error = await self.clock.wait_for(asyncio.shield(job), timeout_s)
        except TimeoutError:
            self.timeouts += 1
            if not state["started"]:
                job.cancel()  # still waiting for its lane: stale work is dropped, not run
            else:
                job.add_done_callback(functools.partial(_late, what))
            raise InferenceTimeout(what, timeout_s) from None
        if error is not None:
            raise error
        return value  # type: ignore[return-value]

    async def run_light(
        self, what: str, timeout_s: float, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs
    ) -> T:
        """Run a light job (milliseconds, no model inference) on the pool's own light thread:
        it still leaves the event loop, but does not wait for an inference worker. Under load
        the workers are all decoding finals; a stream open queued behind them timed out (2 s)
        and the caller's turn failed before it started."""
        if self.pending >= self.max_pending:
            raise PoolOverloaded(what, self.pending)
        self.pending += 1
        loop = asyncio.get_running_loop()
        fut = loop.run_in_executor(self._light, functools.partial(fn, *args, **kwargs))
        fut.add_done_callback(self._job_done)
        try:
            return await self.clock.wait_for(asyncio.shield(fut), timeout_s)
        except TimeoutError:
            self.timeouts += 1
            fut.add_done_callback(functools.partial(_late_light, what))
            raise InferenceTimeout(what, timeout_s) from None

    def waiting(self, lane: str) -> int:
        """Jobs waiting for a slot of ``lane`` (queue depth: metrics, tests)."""
        return self._waiting.get(lane, 0)

    def note_cost(self, lane: str, seconds: float) -> None:
        """Fold one final decode's duration into the lane's moving average."""
        old = self._cost.get(lane)
        self._cost[lane] = seconds if old is None else old + COST_SMOOTHING * (seconds - old)

    def expected_wait_s(self, lane: str) -> float:
        """How long a final decode queued now in ``lane`` should take, queue included: the jobs
        ahead in rounds of the lane's capacity, one decode each. 0 before any decode was seen."""
        cost = self._cost.get(lane)
        if cost is None:
            return 0.0
        ahead = self._waiting.get(lane, 0) + self._running.get(lane, 0)
        capacity = self.lane_limits.get(lane, self.workers)
        return (ahead // capacity + 1) * cost

    def _lane(self, lane: str | None) -> asyncio.Semaphore | None:
        if lane is None or lane not in self.lane_limits:
            return None
        sem = self._lanes.get(lane)
        if sem is None:
            sem = self._lanes[lane] = asyncio.Semaphore(self.lane_limits[lane])
        return sem

    async def _execute(
        self, lane: str | None, state: dict[str, bool], call: Callable[[], T],
        measure: bool = False,
    ) -> tuple[T | None, BaseException | None]:
        """The job as a task that never fails: its exception is handed to ``run_in`` to raise
        in the caller (a failing recogniser is the call's error, not a crashed task)."""
        if measure and lane is not None:
            call = self._measured(lane, call)
        loop = asyncio.get_running_loop()
        sem = self._lane(lane)
        try:
            if sem is None:
                state["started"] = True
                return await loop.run_in_executor(self._executor, call), None
            assert lane is not None
            self._waiting[lane] = self._waiting.get(lane, 0) + 1
            try:
                await sem.acquire()
            finally:
                self._waiting[lane] -= 1
            try:
                state["started"] = True
                # the slot stays held until the thread really ends, even after a timeout
                return await asyncio.shield(loop.run_in_executor(self._executor, call)), None
            finally:
                sem.release()
        except asyncio.CancelledError:
            raise
        except Exception as e:  # the job's own error, re-raised by run_in
            return None, e

    def _measured(self, lane: str, call: Callable[[], T]) -> Callable[[], T]:
        """Count the job as running in ``lane`` while its thread works, and time it (compute
        time in the worker thread; bookkeeping goes back to the loop thread)."""
        loop_call = asyncio.get_running_loop().call_soon_threadsafe

        def run() -> T:
            loop_call(self._started_measured, lane)
            t0 = time.perf_counter()
            try:
                return call()
            finally:
                loop_call(self._done_measured, lane, time.perf_counter() - t0)
        return run

    def _started_measured(self, lane: str) -> None:
        self._running[lane] = self._running.get(lane, 0) + 1

    def _done_measured(self, lane: str, seconds: float) -> None:
        self._running[lane] = max(0, self._running.get(lane, 0) - 1)
        self.note_cost(lane, seconds)

    def _job_done(self, _fut: asyncio.Future[Any]) -> None:
        self.pending -= 1
        self.completed += 1

    def shutdown(self) -> None:
        """Stop accepting work; running jobs finish in the background (threads are not killed)."""
        self._executor.shutdown(wait=False, cancel_futures=True)
        self._light.shutdown(wait=False, cancel_futures=True)


def _late(what: str, fut: asyncio.Future[Any]) -> None:
    if fut.cancelled():
        return
    _, exc = fut.result()
    log.warning("asr job %s finished after its timeout%s", what, f" with {exc!r}" if exc else "")


def _late_light(what: str, fut: asyncio.Future[Any]) -> None:
    if not fut.cancelled():
        exc = fut.exception()
        log.warning("asr job %s finished after its timeout%s", what,
                    f" with {exc!r}" if exc else "")
