"""The durable post-call queue: one job row per call, claimed with a lease.

A job is due when it is ``queued`` and its ``not_before`` has passed **and the call's record is
written with its end** (the batch CDR writer commits ~0.2 s after ``call.ended``): the claim
joins ``calls``, so a job never races the writer, it simply is not due yet. Claims are
optimistic (``UPDATE ... WHERE state = 'queued'``, one row, rowcount checked), so several
engine processes on one database never take the same job. A job whose owner died keeps its
lease until ``lease_until`` and is then claimable again; a restarted owner releases its own at
once. Failures retry with backoff (30 s doubling, up to ``max_attempts``), then ``failed`` with
the error kept.

``sweep`` adds jobs for ended, recorded calls that have none: a process killed between a call's
end and its enqueue loses nothing.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import and_, func, or_, select, update

from engine.cdr import CallRow
from inspection.store import InspectionJobRow
from storage import Database

RETRY_BASE_S = 30.0
RETRY_MAX_S = 3600.0


@dataclass(frozen=True, slots=True)
class Job:
    call_id: str
    tenant: str
    attempts: int


class JobQueue:
    def __init__(self, db: Database, *, max_attempts: int = 4) -> None:
        self.db = db
        self.max_attempts = max_attempts

    def enqueue(self, call_id: str, tenant: str, now: float, *, force: bool = False) -> bool:
        """Queue ``call_id`` once (True when new). ``force`` re-queues a done or failed job."""
        with self.db.session() as s:
            row = s.get(InspectionJobRow, call_id)
            if row is None:
                s.add(InspectionJobRow(call_id=call_id, tenant=tenant, state="queued",
                                       attempts=0, not_before=now, created_at=now,
                                       updated_at=now, error="", owner=""))
                return True
            if force and row.state in ("done", "failed"):
                row.state, row.attempts, row.not_before, row.error = "queued", 0, now, ""
                row.updated_at = now
                return True
            return False

    def sweep(self, since: float, now: float) -> int:
        """Queue every call that ended after ``since`` with a recording and no job."""
        with self.db.session() as s:
            missing = s.execute(
                select(CallRow.id, CallRow.tenant)
                .outerjoin(InspectionJobRow, InspectionJobRow.call_id == CallRow.id)
                .where(CallRow.end_at >= since, CallRow.recording_path.is_not(None),
                       InspectionJobRow.call_id.is_(None))).all()
            for call_id, tenant in missing:
                s.add(InspectionJobRow(call_id=call_id, tenant=tenant, state="queued",
                                       attempts=0, not_before=now, created_at=now,
                                       updated_at=now, error="", owner=""))
            return len(missing)

    def claim(self, owner: str, now: float, *, limit: int = 1,
              lease_s: float = 600.0) -> list[Job]:
        """Up to ``limit`` due jobs whose call record is written, leased to ``owner``."""
        due = or_(and_(InspectionJobRow.state == "queued", InspectionJobRow.not_before <= now),
                  and_(InspectionJobRow.state == "running", InspectionJobRow.lease_until < now))
        with self.db.session() as s:
            candidates = s.execute(
                select(InspectionJobRow.call_id, CallRow.tenant,
                       InspectionJobRow.attempts, InspectionJobRow.state)
                .join(CallRow, CallRow.id == InspectionJobRow.call_id)
                .where(due, CallRow.end_at.is_not(None))
                .order_by(InspectionJobRow.not_before).limit(limit * 4)).all()
        jobs: list[Job] = []
        for call_id, tenant, attempts, state in candidates:
            if len(jobs) >= limit:
                break
            with self.db.session() as s:
                got = s.execute(
                    update(InspectionJobRow)
                    .where(InspectionJobRow.call_id == call_id, InspectionJobRow.state == state,
                           InspectionJobRow.attempts == attempts)
                    .values(state="running", owner=owner, lease_until=now + lease_s,
                            attempts=attempts + 1, updated_at=now, tenant=tenant))
                if int(getattr(got, "rowcount", 0) or 0) == 1:
                    jobs.append(Job(call_id, tenant, attempts + 1))
        return jobs

    def complete(self, call_id: str, owner: str, now: float) -> None:
        with self.db.session() as s:
            s.execute(update(InspectionJobRow)
                      .where(InspectionJobRow.call_id == call_id, InspectionJobRow.owner == owner)
                      .values(state="done", lease_until=None, error="", updated_at=now))

    def fail(self, call_id: str, owner: str, error: str, now: float) -> str:
        """Retry later with backoff, or ``failed`` after ``max_attempts``; the new state."""
        with self.db.session() as s:
            row = s.get(InspectionJobRow, call_id)
            if row is None or row.owner != owner:
                return "lost"
            row.error, row.updated_at, row.lease_until = error[:2000], now, None
            if row.attempts >= self.max_attempts:
                row.state = "failed"
            else:
                row.state = "queued"
                row.not_before = now + min(RETRY_MAX_S, RETRY_BASE_S * 2 ** (row.attempts - 1))
            return row.state

    def fail_now(self, call_id: str, owner: str, error: str, now: float) -> None:
        """``failed`` at once: retrying cannot help (no record, no recording)."""
        with self.db.session() as s:
            s.execute(update(InspectionJobRow)
                      .where(InspectionJobRow.call_id == call_id, InspectionJobRow.owner == owner)
                      .values(state="failed", lease_until=None, error=error[:2000],
                              updated_at=now))

    def release(self, owner: str, now: float) -> int:
        """Give back ``owner``'s running jobs (an orderly stop, or a restart of that owner):
        the attempt they were on does not count."""
        with self.db.session() as s:
            got = s.execute(update(InspectionJobRow)
                            .where(InspectionJobRow.owner == owner,
                                   InspectionJobRow.state == "running")
                            .values(state="queued", lease_until=None, not_before=now,
                                    attempts=InspectionJobRow.attempts - 1, updated_at=now))
            return int(getattr(got, "rowcount", 0) or 0)

    def counts(self) -> dict[str, int]:
        with self.db.session() as s:
            return {state: n for state, n in s.execute(
                select(InspectionJobRow.state, func.count()).group_by(InspectionJobRow.state))}

    def jobs(self, state: str | None = None, limit: int = 50) -> list[InspectionJobRow]:
        q = select(InspectionJobRow)
        if state:
            q = q.where(InspectionJobRow.state == state)
        with self.db.session() as s:
            return list(s.scalars(q.order_by(InspectionJobRow.updated_at.desc()).limit(limit)))
