"""Writing finished call records: batched, off the event loop, and never blocked by one record.

Records are committed in batches in an executor thread, so a slow disk never stalls media. When a
batch fails, each of its records is written on its own to tell the two failures apart:

* a record the database refuses for what it holds (a poisoned row: bad encoding, a value out of
  range): the others are written at once; a record refused ``max_attempts`` times goes to the
  dead-letter file (one JSON object per line, surrogates escaped, nothing lost) and counts in
  ``dead_lettered``;
* the database itself failing (SQLAlchemy's OperationalError and kin: down, locked, a missing
  table): the records stay queued and the writer backs off (1 s doubling to 30 s) without a log
  line per attempt.

``close()`` writes what it can within its timeout and puts the rest in the dead-letter file,
saying in the log how many records went there. Waits run on the injected clock.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections import deque
from dataclasses import asdict
from pathlib import Path

from sqlalchemy.exc import (
    DisconnectionError,
    InterfaceError,
    OperationalError,
    ProgrammingError,
)
from sqlalchemy.exc import TimeoutError as PoolTimeout

from core.clock import Clock, SystemClock
from core.tasks import TaskScope
from engine.cdr import CallRecord, CallRecords

log = logging.getLogger("ivr.cdr")

# The database failing, as opposed to one record it refuses. ProgrammingError is a missing
# table or column or a revoked grant (PostgreSQL says so where SQLite raises OperationalError):
# never one record's fault, so back off and keep the records rather than bury them.
DATABASE_FAILURES = (OperationalError, InterfaceError, DisconnectionError, PoolTimeout,
                     ProgrammingError)
BACKOFF_START_S = 1.0
BACKOFF_MAX_S = 30.0


class CdrWriter:
    def __init__(self, records: CallRecords, *, dead_letter: Path, clock: Clock | None = None,
                 batch: int = 200, interval_s: float = 0.2, max_attempts: int = 3) -> None:
        self.records = records
        self.dead_letter = dead_letter
        self.clock: Clock = clock or SystemClock()
        self.batch = batch
        self.interval_s = interval_s
        self.max_attempts = max_attempts
        self._pending: deque[CallRecord] = deque()
        self._attempts: dict[str, int] = {}
        self._arrived = asyncio.Event()
        self._lock = asyncio.Lock()  # one writer at a time: the task, or flush/close
        self._tasks = TaskScope("cdr")
        self._backoff_s = 0.0
        self.written = 0
        self.dead_lettered = 0
        self.write_failures = 0  # batches that failed (poisoned rows or the database down)

    @property
    def queued(self) -> int:
        return len(self._pending)

    def start(self) -> None:
        self._tasks.spawn(self._run(), "cdr-writer")

    def put(self, record: CallRecord) -> None:
        self._pending.append(record)
        self._arrived.set()

    async def _run(self) -> None:
        while True:
            if not self._pending:
                self._arrived.clear()
                await self._arrived.wait()
            await self.clock.sleep(self._backoff_s or self.interval_s)  # gather a batch
            await self._write_batch()

    async def _write_batch(self) -> bool:
        """Write one batch; False when the database refused all of it."""
        async with self._lock:
            batch = [self._pending.popleft() for _ in range(min(self.batch, len(self._pending)))]
            if not batch:
                return True
            loop = asyncio.get_running_loop()
            try:
                await loop.run_in_executor(None, self.records.save_many, batch)
            except asyncio.CancelledError:
                self._pending.extendleft(reversed(batch))  # close() decides what happens to it
                raise
            except Exception:
                self.write_failures += 1
                return await self._isolate(batch)
            self.written += len(batch)
            self._backoff_s = 0.0
            return True

    async def _isolate(self, batch: list[CallRecord]) -> bool:
        """The batch failed: write record by record to find what the database refuses."""
        loop = asyncio.get_running_loop()
        failed: list[tuple[CallRecord, str]] = []
        for i, rec in enumerate(batch):
            try:
                await loop.run_in_executor(None, self.records.save_many, [rec])
                self.written += 1
            except DATABASE_FAILURES as e:  # not this record's fault: stop and back off
                if not self._backoff_s:
                    log.error("writing call records failed (%s); keeping %d queued and "
                              "retrying", e, len(self._pending) + len(batch) - i)
                self._backoff_s = min(BACKOFF_MAX_S, max(BACKOFF_START_S, self._backoff_s * 2))
                self._pending.extendleft(reversed([r for r, _ in failed] + batch[i:]))
                return False
            except Exception as e:  # this record holds something the database refuses
                failed.append((rec, f"{type(e).__name__}: {e}"[:300]))
        self._backoff_s = 0.0
        dead: list[tuple[CallRecord, str]] = []
        for rec, why in failed:
            n = self._attempts[rec.id] = self._attempts.get(rec.id, 0) + 1
            if n >= self.max_attempts:
                self._attempts.pop(rec.id, None)
                dead.append((rec, why))
            else:
                self._pending.append(rec)
        if dead:
            await self._bury(dead)
        return True

    async def _bury(self, dead: list[tuple[CallRecord, str]]) -> None:
        lines = [json.dumps({"reason": why, "record": asdict(rec)}, default=str,
                            ensure_ascii=True) for rec, why in dead]
        await asyncio.get_running_loop().run_in_executor(None, self._append, lines)
        self.dead_lettered += len(dead)
        for rec, why in dead:
            log.error("call record %s could not be written (%s); kept in %s", rec.id, why,
                      self.dead_letter)

    def _append(self, lines: list[str]) -> None:
        self.dead_letter.parent.mkdir(parents=True, exist_ok=True)
        with self.dead_letter.open("a", encoding="ascii") as f:
            f.write("".join(line + "\n" for line in lines))

    async def flush(self, timeout_s: float = 10.0) -> bool:
        """Write everything queued so far; True when nothing is left."""
        async def drain() -> None:
            while self._pending:
                if not await self._write_batch():
                    await self.clock.sleep(min(self._backoff_s, 1.0))

        try:
            await self.clock.wait_for(drain(), timeout_s)
        except TimeoutError:
            return False
        return True

    async def close(self, timeout_s: float = 10.0) -> None:
        """Flush, then stop the writer. Records still unwritten after ``timeout_s`` go to the
        dead-letter file, and the log says how many: an orderly stop never loses one silently."""
        await self.flush(timeout_s)
        await self._tasks.close(grace_s=1.0)
        if self._pending:
            left = list(self._pending)
            self._pending.clear()
            await self._bury([(rec, "not written before shutdown") for rec in left])
            log.error("%d call records were not written before shutdown; kept in %s",
                      len(left), self.dead_letter)
