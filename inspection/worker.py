"""Running the queue in the engine process: claims jobs, inspects in a bounded thread pool.

Never on a call's path: every database touch and every inspection runs in an executor; the
inspections have their own pool of ``workers`` threads (default 1, so transcription takes at
most one core's worth of threads next to live calls; whisper's decode releases the GIL); the
model's decode threads run at ``[inspection] nice`` (10, set where the model is built:
inspection/transcribe.py), so a contended core goes to live turns first. New
jobs come from ``call.ended`` on the bus (answered calls with a recording) and, at start, from
a sweep of recent calls with none, so a crash between a call's end and its enqueue loses
nothing. Timing runs on the injected clock.
"""

from __future__ import annotations

import asyncio
import logging
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from core.bus import BusEvent, EventBus
from core.clock import Clock
from core.tasks import TaskScope
from inspection.inspector import InspectionError, Inspector
from inspection.queue import Job, JobQueue

log = logging.getLogger("ivr.inspection")

POLL_S = 1.0
SWEEP_WINDOW_S = 86_400.0
SWEEP_EVERY_S = 30.0  # without the bus (``ivr inspect worker``) this is how jobs appear
SWEEP_OVERLAP_S = 300.0  # calls whose record is written late still fall in the next sweep


class InspectionWorker:
    def __init__(self, queue: JobQueue, inspector: Inspector, clock: Clock, *, owner: str,
                 workers: int = 1, poll_s: float = POLL_S, lease_s: float = 900.0,
                 sweep_window_s: float = SWEEP_WINDOW_S) -> None:
        self.queue = queue
        self.inspector = inspector
        self.clock = clock
        self.owner = owner
        self.workers = max(1, workers)
        self.poll_s = poll_s
        self.lease_s = lease_s
        self.sweep_window_s = sweep_window_s
        # Not niced: these threads run Python (VAD, rules) and take the GIL; a thread preempted
        # for its low priority while holding the GIL would stall the event loop (priority
        # inversion). Only the model's decode threads, which run without the GIL, are niced
        # (inspection/transcribe.py).
        self._pool = ThreadPoolExecutor(self.workers, thread_name_prefix="inspection")
        self._scope = TaskScope("inspection")
        self._jobs = TaskScope("inspection-jobs")
        self._running: set[str] = set()
        self._wake = asyncio.Event()
        self._remove_listener: Any = None
        self._stopping = False
        self._last_sweep = 0.0
        self.done = 0
        self.failed = 0
        self._enqueuing = 0  # call.ended seen, job insert not yet committed

    async def _db(self, fn: Any, *args: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(None, fn, *args)

    async def start(self, bus: EventBus | None = None) -> None:
        now = self.clock.wall()
        released = await self._db(self.queue.release, self.owner, now)
        swept = await self._db(self.queue.sweep, now - self.sweep_window_s, now)
        self._last_sweep = now
        if released or swept:
            log.info("inspection: %d jobs taken back from before a restart, %d calls queued "
                     "that had no job", released, swept)
        if bus is not None:
            self._remove_listener = bus.listen("call.ended", self._on_ended)
        self._scope.spawn(self._run(), "inspection-claimer")

    def _on_ended(self, ev: BusEvent) -> None:
        """Listener (cheap, never blocks): the insert runs in a task."""
        if ev.call_id and ev.data.get("disposition") == "answered" \
                and ev.data.get("recording_path"):
            self._enqueuing += 1  # counted at once: drain() must not see an empty queue first
            self._scope.spawn(self._enqueue(ev.call_id), f"inspection-enqueue-{ev.call_id}")

    async def _enqueue(self, call_id: str) -> None:
        try:
            await self._db(self.queue.enqueue, call_id, "", self.clock.wall())
        except Exception:  # the start-up sweep will find it
            log.exception("inspection: queueing call %s failed", call_id)
        finally:
            self._enqueuing -= 1
        self._wake.set()

    async def _sweep(self) -> None:
        now = self.clock.wall()
        if now - self._last_sweep < SWEEP_EVERY_S:
            return
        try:
            await self._db(self.queue.sweep, self._last_sweep - SWEEP_OVERLAP_S, now)
            self._last_sweep = now
        except Exception:
            log.exception("inspection: sweeping for new calls failed")

    async def _run(self) -> None:
        while not self._stopping:
            await self._sweep()
            free = self.workers - len(self._running)
            if free > 0:
                try:
                    jobs = await self._db(self._claim, free)
                except Exception:
                    log.exception("inspection: claiming jobs failed")
                    jobs = []
                for job in jobs:
                    self._running.add(job.call_id)
                    self._jobs.spawn(self._one(job), f"inspect-{job.call_id}")
            self._wake.clear()
            try:
                await self.clock.wait_for(self._wake.wait(), self.poll_s)
            except TimeoutError:
                pass

    def _claim(self, n: int) -> list[Job]:
        return self.queue.claim(self.owner, self.clock.wall(), limit=n, lease_s=self.lease_s)

    async def _one(self, job: Job) -> None:
        loop = asyncio.get_running_loop()
        try:
            await loop.run_in_executor(self._pool, self.inspector.inspect, job.call_id)
        except asyncio.CancelledError:
            raise
        except Exception as e:
            permanent = isinstance(e, InspectionError)
            msg = f"{type(e).__name__}: {e}"
            state = await self._db(self._fail, job.call_id, msg, permanent)
            self.failed += state == "failed"
            log.warning("inspection of call %s failed (attempt %d, now %s): %s", job.call_id,
                        job.attempts, state, msg)
        else:
            await self._db(self.queue.complete, job.call_id, self.owner, self.clock.wall())
            self.done += 1
        finally:
            self._running.discard(job.call_id)
            self._wake.set()

    def _fail(self, call_id: str, msg: str, permanent: bool) -> str:
        if permanent:
            self.queue.fail_now(call_id, self.owner, msg, self.clock.wall())
            return "failed"
        return self.queue.fail(call_id, self.owner, msg, self.clock.wall())

    @property
    def busy(self) -> int:
        return len(self._running)

    async def drain(self, timeout_s: float) -> bool:
        """Wait until no job is being queued, due or running (tests, benchmarks); True when
        idle. A call that just ended counts from its event on: its job's insert runs in a
        thread, and a busy box may not have committed it by the first look at the queue."""
        async def idle() -> None:
            while True:
                # Our own counters first, the database after: an insert or a completion that
                # commits while ``counts`` reads would otherwise be missed by both looks (the
                # read saw the row not yet there, the counter was already back to zero).
                local_idle = not self._enqueuing and not self._running
                counts = await self._db(self.queue.counts)
                if local_idle and not counts.get("queued") and not counts.get("running"):
                    return
                await self.clock.sleep(0.2)

        try:
            await self.clock.wait_for(idle(), timeout_s)
        except TimeoutError:
            return False
        return True

    async def stop(self, grace_s: float = 5.0) -> None:
        """Stop claiming, give running inspections ``grace_s``, give back the rest (their
        threads finish on their own; the next claimer redoes them)."""
        self._stopping = True
        if self._remove_listener is not None:
            self._remove_listener()
        self._wake.set()
        await self._scope.wait(grace_s)
        await self._scope.close(grace_s=1.0)
        await self._jobs.wait(grace_s)
        await self._jobs.close(grace_s=1.0)
        released = await self._db(self.queue.release, self.owner, self.clock.wall())
        if released:
            log.info("inspection: %d unfinished jobs left queued for the next start", released)
        self._pool.shutdown(wait=False, cancel_futures=True)
