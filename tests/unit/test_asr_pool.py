"""The inference pool: results, timeouts on the injected clock, overload refusal, free loop."""

from __future__ import annotations

import asyncio
import threading

import pytest

from asr.pool import InferencePool, InferenceTimeout, PoolOverloaded
from core.clock import FakeClock


async def test_runs_off_loop_and_returns() -> None:
    pool = InferencePool(2)
    try:
        name = await pool.run("t", 5.0, lambda: threading.current_thread().name)
        assert name.startswith("asr-infer")
        assert pool.completed == 1 and pool.pending == 0
    finally:
        pool.shutdown()


async def test_job_exception_propagates_unchanged() -> None:
    pool = InferencePool(1)

    def boom() -> None:
        raise KeyError("x")

    try:
        with pytest.raises(KeyError):
            await pool.run("t", 5.0, boom)
    finally:
        pool.shutdown()


async def test_stuck_job_times_out_on_fake_clock_and_loop_keeps_running(
    fake_clock: FakeClock,
) -> None:
    pool = InferencePool(2, clock=fake_clock)
    release = threading.Event()
    try:
        job = asyncio.ensure_future(pool.run("stuck", 1.5, release.wait, 30))
        ticks = 0
        for _ in range(5):  # the loop is not blocked while the job hangs
            await asyncio.sleep(0)
            ticks += 1
        assert not job.done() and ticks == 5
        await fake_clock.advance(1.49)
        assert not job.done()
        await fake_clock.advance(0.02)
        with pytest.raises(InferenceTimeout, match="stuck: no result within 1.500s"):
            await job
        assert pool.timeouts == 1
        # another call's job still runs on the second worker
        assert await pool.run("other", 5.0, lambda: 42) == 42
    finally:
        release.set()
        pool.shutdown()


async def test_overload_refused_at_once() -> None:
    pool = InferencePool(1, max_pending=2)
    release = threading.Event()
    try:
        jobs = [asyncio.ensure_future(pool.run("slow", 10.0, release.wait, 10)) for _ in range(2)]
        await asyncio.sleep(0)
        with pytest.raises(PoolOverloaded, match="2 jobs already pending"):
            await pool.run("third", 10.0, lambda: 1)
        release.set()
        assert await asyncio.gather(*jobs) == [True, True]
    finally:
        release.set()
        pool.shutdown()


async def test_lane_limit_keeps_a_worker_for_other_work(fake_clock: FakeClock) -> None:
    pool = InferencePool(2, clock=fake_clock, lane_limits={"whisper": 1})
    release = threading.Event()
    ran: list[str] = []

    def slow(tag: str) -> str:
        ran.append(tag)
        release.wait(10)
        return tag

    try:
        first = asyncio.ensure_future(pool.run_in("whisper", "w1", 5.0, slow, "w1"))
        second = asyncio.ensure_future(pool.run_in("whisper", "w2", 1.0, slow, "w2"))
        for _ in range(400):  # real threads: wait until w1 runs and w2 queues for the lane
            if ran and pool.waiting("whisper") == 1:
                break
            await asyncio.sleep(0.005)
        assert ran == ["w1"] and pool.waiting("whisper") == 1  # w2 waits for the lane ...
        assert (
            await pool.run_in("pocketsphinx", "menu", 5.0, lambda: "menu") == "menu"
        )  # ... menus don't
        await fake_clock.advance(1.1)
        with pytest.raises(InferenceTimeout, match="w2"):
            await second
        release.set()
        assert await first == "w1"
        for _ in range(400):  # every job has ended (w2 would have run by now if it could)
            if pool.pending == 0:
                break
            await asyncio.sleep(0.005)
        assert pool.pending == 0 and pool.waiting("whisper") == 0
        assert ran == ["w1"]  # the timed-out job never ran: stale work is dropped
    finally:
        release.set()
        pool.shutdown()


def test_lane_limit_must_be_positive() -> None:
    with pytest.raises(ValueError, match=r"lane_limits\['whisper'\] must be >= 1"):
        InferencePool(2, lane_limits={"whisper": 0})


async def test_light_job_does_not_wait_behind_busy_workers() -> None:
    """50 callers finishing at once hold every inference worker with decodes; the next caller's
    stream open (no model work) must not queue behind them and time out."""
    pool = InferencePool(2)
    release = threading.Event()
    started = threading.Semaphore(0)

    def decode() -> None:
        started.release()
        release.wait(30)

    try:
        busy = [asyncio.ensure_future(pool.run("decode", 30.0, decode)) for _ in range(2)]
        for _ in range(2):
            await asyncio.to_thread(started.acquire, True, 5.0)
        with pytest.raises(InferenceTimeout):  # through the workers: stuck behind the decodes
            await pool.run("asr.open", 0.2, lambda: "opened")
        name = await pool.run_light("asr.open", 1.0, lambda: threading.current_thread().name)
        assert name.startswith("asr-light")
        with pytest.raises(KeyError):  # the job's own error, unchanged

            def bad() -> None:
                raise KeyError("grammar")

            await pool.run_light("asr.open", 1.0, bad)
        release.set()
        await asyncio.gather(*busy)
        # the open that timed out still runs once a worker frees (a stuck job keeps its worker;
        # asr/pool.py) and only then leaves ``pending``: wait for that, bounded
        for _ in range(1000):  # up to 5 s, as the lane test above waits
            if pool.pending == 0:
                break
            await asyncio.sleep(0.005)
        assert pool.pending == 0
    finally:
        release.set()
        pool.shutdown()


async def test_light_job_times_out_on_the_injected_clock(fake_clock: FakeClock) -> None:
    pool = InferencePool(1, clock=fake_clock)
    release = threading.Event()
    try:
        job = asyncio.ensure_future(pool.run_light("asr.open", 2.0, release.wait, 30))
        for _ in range(5):
            await asyncio.sleep(0)
        await fake_clock.advance(1.99)
        assert not job.done()
        await fake_clock.advance(0.02)
        with pytest.raises(InferenceTimeout, match="asr.open: no result within 2.000s"):
            await job
        assert pool.timeouts == 1
    finally:
        release.set()
        pool.shutdown()
