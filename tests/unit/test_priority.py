"""Background threads at a lower CPU priority (core/priority.py), inherited by the threads
they start: how inspection's decodes yield a contended core to live turns (issue 17)."""

from __future__ import annotations

import os
import sys
import threading

import pytest

from core.clock import FakeClock
from core.priority import call_in_background_thread, lower_thread_priority

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"),
                                reason="per-thread nice is Linux's")


def nice_of(tid: int) -> int:
    return os.getpriority(os.PRIO_PROCESS, tid)


def test_lowering_one_thread_leaves_the_process_alone() -> None:
    seen: list[int] = []

    def body() -> None:
        assert lower_thread_priority(7)
        seen.append(nice_of(threading.get_native_id()))

    t = threading.Thread(target=body)
    t.start()
    t.join()
    assert seen == [7]
    assert nice_of(threading.get_native_id()) == 0  # the caller (the event loop's thread)


def test_threads_started_by_the_built_thing_inherit_the_priority() -> None:
    children: list[int] = []

    def build() -> str:
        def child() -> None:
            children.append(nice_of(threading.get_native_id()))

        t = threading.Thread(target=child)  # like CTranslate2's workers in its constructor
        t.start()
        t.join()
        return "model"

    assert call_in_background_thread(build, 9) == "model"
    assert children == [9]


def test_never_raises_priority_and_passes_errors_through() -> None:
    def already_lower() -> int:
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 15)
        assert lower_thread_priority(10)
        return nice_of(threading.get_native_id())

    assert call_in_background_thread(already_lower, 0) == 15

    def fails() -> None:
        raise ValueError("bad model path")

    with pytest.raises(ValueError, match="bad model path"):
        call_in_background_thread(fails)


def test_the_inspection_pool_and_its_model_run_below_live_calls(tmp_path, monkeypatch) -> None:
    """The real worker's pool threads stay at the loop's priority (they take the GIL); the real
    whisper model's decode threads (which compute without it) run at the configured nice."""
    from inspection import transcribe
    from inspection.inspector import Inspector
    from inspection.queue import JobQueue
    from inspection.worker import InspectionWorker
    from storage import open_database

    db = open_database(f"sqlite:///{tmp_path / 'ivr.db'}")
    worker = InspectionWorker(JobQueue(db), Inspector(db), FakeClock(), owner="t")
    try:
        pool_nice = worker._pool.submit(lambda: nice_of(threading.get_native_id())).result()
    finally:
        worker._pool.shutdown()
    assert pool_nice == 0  # Python threads hold the GIL: niced, they would stall the loop

    monkeypatch.setattr(transcribe, "_ENGINES", {})  # build a fresh model here
    before = set(os.listdir("/proc/self/task"))
    engine = transcribe.inspection_engine("whisper", nice=11)
    started = set(os.listdir("/proc/self/task")) - before
    assert engine is not None and started, "CTranslate2 starts its workers when it is built"
    assert {nice_of(int(tid)) for tid in started} == {11}
