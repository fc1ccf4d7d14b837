"""The durable inspection queue on a real SQLite database (and the recorder's clock sync)."""

from __future__ import annotations

import threading
import time
from pathlib import Path

from core.bus import EventBus
from core.clock import SystemClock
from engine.cdr import CallRecord, CallRecords
from inspection.queue import RETRY_BASE_S, Job, JobQueue
from inspection.worker import InspectionWorker
from storage import open_database


def _call(records: CallRecords, call_id: str, *, ended: bool = True,
          recording: str | None = "/r.wav", tenant: str = "acme") -> None:
    records.save_many([CallRecord("sip-" + call_id, "inbound", "100", "200", id=call_id,
                                  tenant=tenant, invite_at=10.0, answer_at=11.0,
                                  end_at=50.0 if ended else None, disposition="answered",
                                  recording_path=recording)])


def test_a_job_waits_for_its_call_record(tmp_path: Path) -> None:
    db = open_database(f"sqlite:///{tmp_path}/q.sqlite")
    q, records = JobQueue(db), CallRecords(db)
    assert q.enqueue("c1", "", 100.0)
    assert not q.enqueue("c1", "", 100.0)  # once per call
    assert q.claim("a", 200.0) == []  # call.ended came first: no record yet
    _call(records, "c1", ended=False)  # the in-progress row written at answer
    assert q.claim("a", 200.0) == []
    _call(records, "c1")  # the batch writer's final row
    (job,) = q.claim("a", 200.0)
    assert (job.call_id, job.tenant, job.attempts) == ("c1", "acme", 1)
    assert q.claim("b", 200.0) == []  # leased to a
    q.complete("c1", "a", 201.0)
    assert q.counts() == {"done": 1}


def test_failures_retry_with_backoff_then_stop(tmp_path: Path) -> None:
    db = open_database(f"sqlite:///{tmp_path}/q.sqlite")
    q = JobQueue(db, max_attempts=2)
    _call(CallRecords(db), "c1")
    q.enqueue("c1", "", 0.0)
    q.claim("a", 100.0)
    assert q.fail("c1", "a", "boom", 100.0) == "queued"
    assert q.claim("a", 100.0 + RETRY_BASE_S - 1) == []
    (job,) = q.claim("a", 100.0 + RETRY_BASE_S)
    assert job.attempts == 2
    assert q.fail("c1", "a", "boom again", 200.0) == "failed"
    (row,) = q.jobs("failed")
    assert row.error == "boom again"
    assert q.enqueue("c1", "", 300.0, force=True)  # an operator re-runs it
    assert q.counts() == {"queued": 1}


def test_a_dead_owner_s_jobs_come_back(tmp_path: Path) -> None:
    db = open_database(f"sqlite:///{tmp_path}/q.sqlite")
    q = JobQueue(db)
    for c in ("c1", "c2"):
        _call(CallRecords(db), c)
        q.enqueue(c, "", 0.0)
    assert len(q.claim("a", 10.0, limit=2, lease_s=60)) == 2
    assert q.claim("b", 69.0) == []  # leases still run
    (job,) = q.claim("b", 71.0)  # a died: its lease ran out
    assert job.attempts == 2
    assert q.release("a", 72.0) == 1  # a restarted: its other job is queued again, same count
    (row,) = [r for r in q.jobs() if r.call_id != job.call_id]
    assert (row.state, row.attempts) == ("queued", 0)


def test_sweep_queues_recorded_calls_that_have_no_job(tmp_path: Path) -> None:
    db = open_database(f"sqlite:///{tmp_path}/q.sqlite")
    q, records = JobQueue(db), CallRecords(db)
    _call(records, "done_before")
    _call(records, "no_recording", recording=None)
    _call(records, "lost")
    q.enqueue("done_before", "", 0.0)
    assert q.sweep(0.0, 100.0) == 1
    assert {r.call_id for r in q.jobs()} == {"done_before", "lost"}
    assert q.sweep(0.0, 100.0) == 0


async def test_drain_is_not_fooled_by_an_insert_committing_during_its_read(tmp_path: Path) -> None:
    """``drain()`` reads the queue in a thread. If the job's insert commits while that read runs
    and the worker's counter drops before the read returns, the read is stale and the counter
    is zero: a fresh-clone CI run found ``drain()`` True and nothing inspected. Here the read is
    held until both happened. The inspector is a stand-in; the queue is the real one."""
    db = open_database(f"sqlite:///{tmp_path}/q.sqlite")
    _call(CallRecords(db), "c1")
    gate, reading, claimable = threading.Event(), threading.Event(), threading.Event()
    worker: InspectionWorker

    class RacingQueue(JobQueue):
        def enqueue(self, call_id: str, tenant: str, now: float, *, force: bool = False) -> bool:
            gate.wait(10)
            return super().enqueue(call_id, tenant, now, force=force)

        def counts(self) -> dict[str, int]:
            seen = super().counts()
            if reading.is_set() and not gate.is_set():  # the first read of the drain below
                gate.set()
                deadline = time.monotonic() + 10
                while worker._enqueuing and time.monotonic() < deadline:
                    time.sleep(0.01)
            elif gate.is_set():
                claimable.set()  # a later read: the claimer may go on
            return seen

        def claim(self, owner: str, now: float, *, limit: int = 1,
                  lease_s: float = 600.0) -> list[Job]:
            if gate.is_set():  # held until drain() has looked past its stale first read
                claimable.wait(10)
            return super().claim(owner, now, limit=limit, lease_s=lease_s)

    inspected: list[str] = []

    class Recorded:
        def inspect(self, call_id: str) -> None:
            inspected.append(call_id)

    bus = EventBus()
    worker = InspectionWorker(RacingQueue(db), Recorded(), SystemClock(),  # type: ignore[arg-type]
                              owner="a", poll_s=0.05)
    await worker.start(bus)
    try:
        bus.publish("call.ended", "c1", disposition="answered", recording_path="/r.wav")
        reading.set()
        assert await worker.drain(10)
        assert inspected == ["c1"] and worker.done == 1
    finally:
        gate.set()
        claimable.set()
        await worker.stop()


async def test_drain_waits_for_a_job_whose_insert_is_still_running(tmp_path: Path) -> None:
    """A call that just ended is queued by an insert in a thread; ``drain()`` called before the
    insert commits used to find an empty queue and report idle (a fresh-clone CI run then found
    no inspection result). The inspector is a stand-in: this is about the worker's bookkeeping;
    the queue is the real one on SQLite."""
    db = open_database(f"sqlite:///{tmp_path}/q.sqlite")
    _call(CallRecords(db), "c1")
    gate = threading.Event()

    class HeldQueue(JobQueue):
        def enqueue(self, call_id: str, tenant: str, now: float, *, force: bool = False) -> bool:
            gate.wait(10)  # the database is slow to commit
            return super().enqueue(call_id, tenant, now, force=force)

    inspected: list[str] = []

    class Recorded:
        def inspect(self, call_id: str) -> None:
            inspected.append(call_id)

    bus = EventBus()
    worker = InspectionWorker(HeldQueue(db), Recorded(), SystemClock(),  # type: ignore[arg-type]
                              owner="a", poll_s=0.05)
    await worker.start(bus)
    try:
        bus.publish("call.ended", "c1", disposition="answered", recording_path="/r.wav")
        assert not await worker.drain(0.5)  # the job is on its way: not idle
        gate.set()
        assert await worker.drain(10)
        assert inspected == ["c1"] and worker.done == 1
    finally:
        gate.set()
        await worker.stop()
