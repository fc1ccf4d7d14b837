"""Shutdown keeps every call record: ``CdrWriter.close`` right after ``put`` (a call that ended
just before ``ivr run`` stopped) writes the record, and promptly."""

from __future__ import annotations

import asyncio
from pathlib import Path

from engine.cdr import CallRecord, CallRecords
from engine.cdr_writer import CdrWriter
from storage import open_database
from storage.tenancy import EVERY_TENANT


async def test_close_right_after_put_writes_the_record(tmp_path: Path) -> None:
    records = CallRecords(open_database(f"sqlite:///{tmp_path}/cdr.sqlite"))
    writer = CdrWriter(records, dead_letter=tmp_path / "dead.jsonl", interval_s=0.2)
    writer.start()
    rec = CallRecord(sip_call_id="c1@test", direction="inbound", from_number="1",
                     to_number="2", disposition="answered")
    writer.put(rec)
    await asyncio.sleep(0)  # the writer task takes it off the queue and starts batching
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    await writer.close()
    assert loop.time() - t0 < 2.0  # not flush's 10 s timeout
    got = records.get(rec.id, tenants=EVERY_TENANT)
    assert got is not None and got.disposition == "answered"
