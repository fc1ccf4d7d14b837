"""One dialling node per database when the nodes share no Redis.

Why: with ``cluster.redis_url`` the nodes share pacing budgets and lease contacts
(campaigns/shared_pacing.py). Without it each node would pace alone (two nodes, twice the
campaign's rate and twice the trunk's) and prepare the same contacts, so only one node may
dial: the one holding this lease. The others keep answering inbound calls and take over
within ``ttl_s`` of the holder's last renewal if it dies, settling the attempts it left
dialling (campaigns/runner.py). A restarted node (same node id) takes its own lease back at
once.

The lease is one row, taken with a conditional UPDATE (held by me, or expired) and, when the
row does not exist yet, an INSERT that loses to a concurrent one on the primary key: atomic
on SQLite and PostgreSQL alike. Times are the caller's wall clock; nodes on one database are
assumed to keep their clocks within a second or two (NTP), which is far below ``ttl_s``.
"""

from __future__ import annotations

from typing import Any, cast

from sqlalchemy import CursorResult, select, update
from sqlalchemy.exc import IntegrityError

from campaigns.model import DiallerLeaseRow
from storage import Database

LEASE_NAME = "campaigns"
LEASE_TTL_S = 15.0


class DiallerLease:
    def __init__(self, db: Database, node: str, *, ttl_s: float = LEASE_TTL_S,
                 name: str = LEASE_NAME) -> None:
        self.db = db
        self.node = node
        self.ttl_s = ttl_s
        self.name = name
        self._held_until = 0.0  # as far as this node knows (renewed at half the ttl)
        # the node this one took the lease over from (it stopped or died), until the runner
        # has settled what that node left dialling
        self.taken_from: str | None = None

    def take(self, now: float) -> bool:
        """Hold (or keep) the lease at ``now``: True when this node may dial. Blocking (a
        database round trip at most every ``ttl_s / 2`` while held)."""
        if now < self._held_until - self.ttl_s / 2:
            return True
        until = now + self.ttl_s
        with self.db.session() as s:
            before = s.scalar(select(DiallerLeaseRow.node)
                              .where(DiallerLeaseRow.name == self.name))
            result = s.execute(
                update(DiallerLeaseRow)
                .where(DiallerLeaseRow.name == self.name,
                       (DiallerLeaseRow.node == self.node) | (DiallerLeaseRow.expires_at < now))
                .values(node=self.node, expires_at=until))
            got = cast(CursorResult[Any], result).rowcount  # an UPDATE's result is a cursor's
        if not got:
            try:
                with self.db.session() as s:
                    s.add(DiallerLeaseRow(name=self.name, node=self.node, expires_at=until))
            except IntegrityError:  # the row exists (someone else holds it) or just appeared
                got = 0
            else:
                got = 1
        self._held_until = until if got else 0.0
        if got and before is not None and before != self.node:
            self.taken_from = before
        return bool(got)

    def holder(self, now: float) -> str | None:
        """The node holding the lease at ``now`` (None: nobody)."""
        with self.db.session() as s:
            row = s.scalar(select(DiallerLeaseRow).where(DiallerLeaseRow.name == self.name))
            return row.node if row is not None and row.expires_at >= now else None

    def release(self) -> None:
        """Give the lease back (an orderly stop): another node may dial at once."""
        self._held_until = 0.0
        with self.db.session() as s:
            s.execute(update(DiallerLeaseRow)
                      .where(DiallerLeaseRow.name == self.name,
                             DiallerLeaseRow.node == self.node)
                      .values(expires_at=0.0))
