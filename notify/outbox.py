"""The durable outbox: every message is a row before anything is sent, and its parts are rows
as the SMSC accepts them.

Status moves::

    queued --claim--> sending --all parts accepted--> submitted --receipts--> delivered
                         |                                            \\--> failed / expired
                         +--gateway error--> queued (later, backoff) or failed (attempts used)
    queued --content, list, cap--> refused          queued --validity passed--> expired

Why a restart loses nothing and sends nothing twice: a message is inserted (``queued``) before
the caller is told it was accepted, and each part's acceptance is written the moment its
submit_sm_resp arrives. At start-up a message left in ``sending`` by a killed engine has parts
the SMSC may or may not have received (the PDU was written, its response never read): those
messages become ``unknown`` and are not resent, because a duplicate is worse than asking the
operator (``ivr sms list --status unknown``). Every other message goes on from where it was.
The idempotency key (unique) makes a second request for the same message return the first.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Float, Integer, String, Text, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, mapped_column

from storage import Base, Database

STATUSES = ("queued", "sending", "submitted", "delivered", "failed", "expired", "refused",
            "unknown")
FINAL_STATUSES = frozenset({"delivered", "failed", "expired", "refused", "unknown"})


class SmsMessageRow(Base):
    __tablename__ = "sms_messages"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    idempotency_key: Mapped[str] = mapped_column(String(200), unique=True)
    tenant: Mapped[str] = mapped_column(String(64), index=True)
    call_id: Mapped[str | None] = mapped_column(String(64), index=True)
    campaign: Mapped[str | None] = mapped_column(String(64))
    template_id: Mapped[str | None] = mapped_column(String(64))
    rule: Mapped[str | None] = mapped_column(String(64))
    purpose: Mapped[str] = mapped_column(String(32), default="notification")
    to_number: Mapped[str] = mapped_column(String(32), index=True)
    sender: Mapped[str] = mapped_column(String(32))
    text: Mapped[str] = mapped_column(Text)
    coding: Mapped[str] = mapped_column(String(8))
    parts: Mapped[int] = mapped_column(Integer)
    reference: Mapped[int] = mapped_column(Integer)
    gateway: Mapped[str] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(16), index=True)
    reason: Mapped[str] = mapped_column(Text, default="")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    checked: Mapped[int] = mapped_column(Integer, default=0)  # lists and caps passed once
    due_at: Mapped[float] = mapped_column(Float, index=True)  # epoch: not before
    expires_at: Mapped[float] = mapped_column(Float)
    created_at: Mapped[float] = mapped_column(Float)
    submitted_at: Mapped[float | None] = mapped_column(Float)
    done_at: Mapped[float | None] = mapped_column(Float)
    parts_delivered: Mapped[int] = mapped_column(Integer, default=0)
    node: Mapped[str] = mapped_column(String(64), default="")  # the engine that claimed it


class SmsPartRow(Base):
    __tablename__ = "sms_parts"

    message_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    part: Mapped[int] = mapped_column(Integer, primary_key=True)  # 0-based
    gateway_message_id: Mapped[str] = mapped_column(String(65), index=True)
    status: Mapped[str] = mapped_column(String(16), default="submitted")
    stat: Mapped[str] = mapped_column(String(16), default="")
    submitted_at: Mapped[float] = mapped_column(Float)
    receipt_at: Mapped[float | None] = mapped_column(Float)


@dataclass(frozen=True, slots=True)
class SmsRecord:
    """A message as the CLI, the console and the bus see it."""

    id: str
    idempotency_key: str
    tenant: str
    call_id: str | None
    campaign: str | None
    template_id: str | None
    rule: str | None
    purpose: str
    to: str
    sender: str
    text: str
    coding: str
    parts: int
    reference: int
    gateway: str
    status: str
    reason: str
    attempts: int
    checked: bool
    due_at: float
    expires_at: float
    created_at: float
    submitted_at: float | None
    done_at: float | None
    parts_delivered: int
    accepted: dict[int, str]

    def as_dict(self) -> dict[str, Any]:
        out = {k: getattr(self, k) for k in self.__slots__}
        out["accepted"] = {str(k): v for k, v in self.accepted.items()}
        return out


def _record(row: SmsMessageRow, parts: Sequence[SmsPartRow] = ()) -> SmsRecord:
    return SmsRecord(
        row.id, row.idempotency_key, row.tenant, row.call_id, row.campaign, row.template_id,
        row.rule, row.purpose, row.to_number, row.sender, row.text, row.coding, row.parts,
        row.reference, row.gateway, row.status, row.reason, row.attempts, bool(row.checked),
        row.due_at, row.expires_at, row.created_at, row.submitted_at, row.done_at,
        row.parts_delivered, {p.part: p.gateway_message_id for p in parts})


class DuplicateKey(Exception):
    def __init__(self, existing: SmsRecord) -> None:
        super().__init__(f"idempotency key {existing.idempotency_key!r} already used")
        self.existing = existing


class Outbox:
    """Synchronous store (run it off the event loop); one transaction per call."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def add(self, fields: dict[str, Any]) -> SmsRecord:
        """Insert a new message; :class:`DuplicateKey` carries the first one with that key."""
        try:
            with self.db.session() as s:
                row = SmsMessageRow(**fields)
                s.add(row)
                s.flush()
                return _record(row)
        except IntegrityError:
            existing = self.by_key(fields["idempotency_key"])
            if existing is None:
                raise
            raise DuplicateKey(existing) from None

    def by_key(self, key: str) -> SmsRecord | None:
        with self.db.session() as s:
            row = s.scalar(select(SmsMessageRow).where(SmsMessageRow.idempotency_key == key))
            return self._with_parts(s, row) if row else None

    def get(self, message_id: str) -> SmsRecord | None:
        with self.db.session() as s:
            row = s.get(SmsMessageRow, message_id)
            return self._with_parts(s, row) if row else None

    @staticmethod
    def _with_parts(s: Any, row: SmsMessageRow) -> SmsRecord:
        parts = s.scalars(select(SmsPartRow).where(SmsPartRow.message_id == row.id)).all()
        return _record(row, parts)

    def recent(self, *, tenant: str | None = None, status: str | None = None,
             call_id: str | None = None, limit: int = 100) -> list[SmsRecord]:
        with self.db.session() as s:
            q = select(SmsMessageRow).order_by(SmsMessageRow.created_at.desc()).limit(limit)
            if tenant is not None:
                q = q.where(SmsMessageRow.tenant == tenant)
            if status is not None:
                q = q.where(SmsMessageRow.status == status)
            if call_id is not None:
                q = q.where(SmsMessageRow.call_id == call_id)
            return [_record(r) for r in s.scalars(q).all()]

    def counts(self) -> dict[str, int]:
        with self.db.session() as s:
            rows = s.execute(select(SmsMessageRow.status, func.count())
                             .group_by(SmsMessageRow.status)).all()
            return {status: n for status, n in rows}

    def recover(self, now: float, node: str = "") -> int:
        """Start-up: messages this engine (``node``) left in ``sending`` when it was killed
        become ``unknown``; other nodes' messages in flight are theirs."""
        with self.db.session() as s:
            result = s.execute(
                update(SmsMessageRow).where(SmsMessageRow.status == "sending",
                                            SmsMessageRow.node == node)
                .values(status="unknown", done_at=now,
                        reason="the engine stopped while the SMSC had part of it; not resent "
                               "to avoid a duplicate (check the handset or the SMSC's log)"))
            return int(getattr(result, "rowcount", 0) or 0)

    def claim_due(self, now: float, limit: int, node: str = "", gateway: str | None = None
                  ) -> list[SmsRecord]:
        """Up to ``limit`` queued messages whose time has come, moved to ``sending``.
        ``FOR UPDATE SKIP LOCKED`` lets several engine nodes share a PostgreSQL outbox."""
        with self.db.session() as s:
            rows = s.scalars(
                select(SmsMessageRow)
                .where(SmsMessageRow.status == "queued", SmsMessageRow.due_at <= now)
                .order_by(SmsMessageRow.due_at).limit(limit)
                .with_for_update(skip_locked=True)).all()
            out = []
            for row in rows:
                row.status = "sending"
                row.node = node
                if gateway is not None and not row.attempts:  # the gateway that sends it
                    row.gateway = gateway
                row.attempts += 1
                parts = s.scalars(select(SmsPartRow).where(SmsPartRow.message_id == row.id)).all()
                out.append(_record(row, parts))
            return out

    def next_due(self) -> float | None:
        with self.db.session() as s:
            return s.scalar(select(func.min(SmsMessageRow.due_at))
                            .where(SmsMessageRow.status == "queued"))

    def part_accepted(self, message_id: str, part: int, gateway_id: str, now: float) -> None:
        with self.db.session() as s:
            s.merge(SmsPartRow(message_id=message_id, part=part, gateway_message_id=gateway_id,
                               status="submitted", submitted_at=now))

    def set_status(self, message_id: str, status: str, now: float, *, reason: str = "",
                   due_at: float | None = None, checked: bool | None = None) -> SmsRecord | None:
        if status not in STATUSES:
            raise ValueError(f"status: {status!r} is not one of {', '.join(STATUSES)}")
        with self.db.session() as s:
            row = s.get(SmsMessageRow, message_id)
            if row is None:
                return None
            if row.status in FINAL_STATUSES and status == "submitted":
                return None  # a receipt overtook the last part's response: it stands
            if status == "submitted" and row.parts_delivered >= row.parts > 0:
                status = "delivered"  # every part's receipt came before this point
            row.status = status
            if reason:
                row.reason = reason
            if due_at is not None:
                row.due_at = due_at
            if checked is not None:
                row.checked = int(checked)
            if status == "submitted" and row.submitted_at is None:
                row.submitted_at = now
            if status in FINAL_STATUSES:
                row.done_at = now
            return _record(row)

    def expire_queued(self, now: float) -> list[SmsRecord]:
        with self.db.session() as s:
            rows = s.scalars(select(SmsMessageRow).where(
                SmsMessageRow.status == "queued", SmsMessageRow.expires_at <= now)).all()
            for row in rows:
                row.status, row.done_at = "expired", now
                row.reason = "validity passed before it could be sent"
            return [_record(r) for r in rows]

    def apply_receipt(self, gateway: str, gateway_id: str, part_status: str, stat: str, *,
                      now: float, message_id: str | None = None
                      ) -> tuple[bool, SmsRecord | None]:
        """Record a receipt; the message is delivered once every part is, failed or expired as
        soon as one part is. A receipt naming the message (``message_id``, no ``gateway_id``:
        Kannel reports a split message once) covers all its parts. Returns the message when
        its status changed; a repeated or unknown receipt changes nothing."""
        with self.db.session() as s:
            whole = message_id is not None and not gateway_id
            if whole:
                parts = list(s.scalars(select(SmsPartRow).where(
                    SmsPartRow.message_id == message_id)).all())
                row = s.get(SmsMessageRow, message_id)
            else:
                parts = list(s.scalars(select(SmsPartRow).where(
                    SmsPartRow.gateway_message_id == gateway_id)).all())[:1]
                row = s.get(SmsMessageRow, parts[0].message_id) if parts else None
            if row is None or row.gateway != gateway:
                return False, None
            fresh = [p for p in parts if p.status not in ("delivered", "failed", "expired")]
            for part in fresh:
                part.status, part.stat, part.receipt_at = part_status, stat, now
            if (not fresh and not whole) or row.status in FINAL_STATUSES:
                return True, None
            before = row.status
            if part_status == "delivered":
                # a message-level receipt may overtake the rows of its parts being written
                row.parts_delivered = row.parts if whole else row.parts_delivered + len(fresh)
                if row.parts_delivered >= row.parts and row.status == "submitted":
                    row.status = "delivered"
            elif part_status in ("failed", "expired"):
                row.status = part_status
                first = fresh[0].part + 1 if fresh and not whole else None
                row.reason = f"part {first}: {stat}" if first else stat
            if row.status != before:
                row.done_at = now
                return True, _record(row)
            return True, None

    def last_tenant_for(self, number: str) -> str | None:
        """Whose message a reply from ``number`` answers: the latest sent to it."""
        with self.db.session() as s:
            return s.scalar(select(SmsMessageRow.tenant)
                            .where(SmsMessageRow.to_number == number)
                            .order_by(SmsMessageRow.created_at.desc()).limit(1))


def dumps(records: Sequence[SmsRecord]) -> str:
    return json.dumps([r.as_dict() for r in records], ensure_ascii=False, indent=1)
