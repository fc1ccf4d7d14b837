"""The call-record writer against a real SQLite database: one record the database refuses never
blocks the others, a database that is down loses nothing, and shutdown says what it kept aside.

The poisoned record is the one a non-UTF-8 SIP header used to produce (a lone surrogate, which
SQLite refuses to encode); the outage is a real dropped table."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy import text

from core.clock import FakeClock
from engine.cdr import CallRecord, CallRecords, CallRow
from engine.cdr_writer import CdrWriter
from storage import open_database
from storage.tenancy import EVERY_TENANT
from tests.netutil import wait_until


def rec(n: int, sip_call_id: str | None = None) -> CallRecord:
    return CallRecord(sip_call_id=sip_call_id or f"c{n}@test", direction="inbound",
                      from_number=str(n), to_number="100", disposition="answered")


async def advance_until(clock: FakeClock, condition: Callable[[], bool], what: str) -> None:
    """Move the fake clock in small steps, letting real threads answer, until ``condition``."""
    await wait_until(condition, 10.0, what, between=lambda: clock.advance(0.25), poll_s=0.005)


@pytest.fixture
def records(db_url: str) -> CallRecords:
    return CallRecords(open_database(db_url))


async def test_a_poisoned_record_goes_to_dead_letter_and_the_rest_are_written(
        tmp_path: Path, records: CallRecords) -> None:
    dead = tmp_path / "dead.jsonl"
    writer = CdrWriter(records, dead_letter=dead, clock=FakeClock(), max_attempts=3)
    good = [rec(i) for i in range(5)]
    poisoned = rec(99, sip_call_id="\udcff\udcfe-bad@x")
    for r in [*good[:2], poisoned, *good[2:]]:
        writer.put(r)
    assert await writer.flush(timeout_s=5)
    assert writer.written == 5 and writer.dead_lettered == 1 and writer.queued == 0
    assert all(records.get(r.id, tenants=EVERY_TENANT) is not None for r in good)
    assert records.get(poisoned.id, tenants=EVERY_TENANT) is None
    (line,) = dead.read_text().splitlines()
    kept = json.loads(line)
    assert kept["record"]["id"] == poisoned.id
    assert kept["record"]["sip_call_id"] == "\udcff\udcfe-bad@x"  # escaped in the file, not lost
    assert "UnicodeEncodeError" in kept["reason"]
    writer.put(rec(6))  # and the writer goes on
    assert await writer.flush(timeout_s=5) and writer.written == 6


async def test_database_down_keeps_records_queued_then_writes_them(
        tmp_path: Path, records: CallRecords) -> None:
    clock = FakeClock()
    writer = CdrWriter(records, dead_letter=tmp_path / "dead.jsonl", clock=clock)
    with records.db.session() as s:
        s.execute(text("DROP TABLE calls"))
    writer.start()
    batch = [rec(i) for i in range(3)]
    for r in batch:
        writer.put(r)
    for attempt in range(1, 4):  # the writer tries, fails, backs off: nothing dead-lettered
        # time moves on until the writer has tried again and put the batch back: the executor
        # thread answers when it does (seconds on a loaded box), so no fixed sleep
        await advance_until(clock, lambda n=attempt: writer.write_failures >= n
                            and writer.queued == 3, f"failed write number {attempt}")
    assert writer.written == 0 and writer.queued == 3 and writer.dead_lettered == 0
    CallRow.metadata.create_all(records.db.engine)  # the database is back
    assert await writer.flush(timeout_s=5)
    assert writer.written == 3
    assert all(records.get(r.id, tenants=EVERY_TENANT) is not None for r in batch)
    await writer.close()


async def test_close_with_the_database_down_keeps_and_reports_what_it_could_not_write(
        tmp_path: Path, records: CallRecords, caplog: pytest.LogCaptureFixture) -> None:
    dead = tmp_path / "dead.jsonl"
    writer = CdrWriter(records, dead_letter=dead)
    with records.db.session() as s:
        s.execute(text("DROP TABLE calls"))
    writer.start()
    for i in range(4):
        writer.put(rec(i))
    with caplog.at_level(logging.ERROR, logger="ivr.cdr"):
        await writer.close(timeout_s=0.5)
    assert writer.dead_lettered == 4 and writer.queued == 0
    assert len(dead.read_text().splitlines()) == 4
    assert "4 call records were not written before shutdown" in caplog.text


def test_snapshots_of_one_call_in_one_batch_the_last_wins(records: CallRecords) -> None:
    """A call written at INVITE, answer and end can land in one batch (one upsert statement):
    the row ends as the last snapshot, on SQLite and PostgreSQL; a later batch updates it."""
    first = rec(1)
    first.disposition = "in_progress"
    snapshots = []
    for disposition, answer_at, end_at in (("in_progress", None, None), ("answered", 2.0, None),
                                           ("answered", 2.0, 9.0)):
        r = rec(1)
        r.id, r.disposition, r.answer_at, r.end_at = first.id, disposition, answer_at, end_at
        r.trace = [{"kind": "node.enter", "at": end_at or 0.0}]
        snapshots.append(r)
    records.save_many([*snapshots, rec(2)])
    got = records.get(first.id, tenants=EVERY_TENANT)
    assert got is not None and (got.disposition, got.answer_at, got.end_at) == ("answered", 2.0,
                                                                               9.0)
    assert got.trace == [{"kind": "node.enter", "at": 9.0}]
    snapshots[-1].hangup_cause = "caller_bye"
    records.save_many([snapshots[-1]])
    again = records.get(first.id, tenants=EVERY_TENANT)
    assert again is not None and again.hangup_cause == "caller_bye"
    assert len(records.list(tenants=EVERY_TENANT)) == 2
