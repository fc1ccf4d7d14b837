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
from typing import Any, cast

from sqlalchemy import (
    Float,
    Integer,
    String,
    Table,
    Text,
    bindparam,
    func,
    insert,
    select,
    update,
)
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


M = cast(Table, SmsMessageRow.__table__)
P = cast(Table, SmsPartRow.__table__)

# The statements of the dispatcher's hot path, built once: building one costs more than
# SQLite takes to run it (coercion and cache keys: measured ~0.3 ms each on this VM).
_INSERT_MESSAGE = insert(M)
_INSERT_PART = insert(P)
_MESSAGE_BY_ID = select(M).where(M.c.id == bindparam("mid"))
_PARTS_OF = select(P).where(P.c.message_id == bindparam("mid"))
_PART_BY_GATEWAY_ID = select(P).where(P.c.gateway_message_id == bindparam("gid")).limit(1)
_MOVE_STATE = select(M.c.status, M.c.parts, M.c.parts_delivered, M.c.submitted_at).where(
    M.c.id == bindparam("mid"))
_UPDATE_MESSAGE = update(M).where(M.c.id == bindparam("mid"))
_UPDATE_PARTS = update(P).where(P.c.message_id == bindparam("mid"),
                                P.c.part.in_(bindparam("part_nos", expanding=True)))
_DUE = (select(M).where(M.c.status == "queued", M.c.due_at <= bindparam("now"))
        .order_by(M.c.due_at).limit(bindparam("lim")).with_for_update(skip_locked=True))
_CLAIM = update(M).where(M.c.id.in_(bindparam("ids", expanding=True))).values(
    status="sending", node=bindparam("node_name"), attempts=M.c.attempts + 1)
_CLAIM_GATEWAY = update(M).where(M.c.id.in_(bindparam("ids", expanding=True)),
                                 M.c.attempts == 1).values(gateway=bindparam("gw"))
_PARTS_OF_MANY = select(P.c.message_id, P.c.part, P.c.gateway_message_id).where(
    P.c.message_id.in_(bindparam("ids", expanding=True)))


def _record(row: Any, accepted: dict[int, str] | None = None) -> SmsRecord:
    """A record from a row mapping of ``sms_messages`` (Core rows: the ORM costs ~2 ms per
    write here, ten times the SQLite commit, and the dispatcher writes several per message)."""
    m = row._mapping if hasattr(row, "_mapping") else row
    return SmsRecord(
        m["id"], m["idempotency_key"], m["tenant"], m["call_id"], m["campaign"],
        m["template_id"], m["rule"], m["purpose"], m["to_number"], m["sender"], m["text"],
        m["coding"], m["parts"], m["reference"], m["gateway"], m["status"], m["reason"],
        m["attempts"], bool(m["checked"]), m["due_at"], m["expires_at"], m["created_at"],
        m["submitted_at"], m["done_at"], m["parts_delivered"], dict(accepted or {}))


class DuplicateKey(Exception):
    def __init__(self, existing: SmsRecord) -> None:
        super().__init__(f"idempotency key {existing.idempotency_key!r} already used")
        self.existing = existing


class Outbox:
    """Synchronous store (run it off the event loop); one transaction per call."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def _tx(self) -> Any:
        return self.db.engine.begin()

    def add(self, fields: dict[str, Any]) -> SmsRecord:
        """Insert a new message; :class:`DuplicateKey` carries the first one with that key."""
        row = {"node": "", "submitted_at": None, "done_at": None, "parts_delivered": 0,
               "checked": 0, "attempts": 0, "reason": "", **fields}
        try:
            with self._tx() as c:
                c.execute(_INSERT_MESSAGE, row)
        except IntegrityError:
            existing = self.by_key(fields["idempotency_key"])
            if existing is None:
                raise
            raise DuplicateKey(existing) from None
        return _record(row)

    @staticmethod
    def _accepted(c: Any, message_ids: Sequence[str]) -> dict[str, dict[int, str]]:
        out: dict[str, dict[int, str]] = {m: {} for m in message_ids}
        if message_ids:
            for mid, part, gid in c.execute(_PARTS_OF_MANY, {"ids": list(message_ids)}):
                out[mid][part] = gid
        return out

    def _one(self, c: Any, where: Any) -> SmsRecord | None:  # queries: built per call
        row = c.execute(select(M).where(where)).first()
        if row is None:
            return None
        return _record(row, self._accepted(c, [row.id])[row.id])

    def by_key(self, key: str) -> SmsRecord | None:
        with self._tx() as c:
            return self._one(c, M.c.idempotency_key == key)

    def get(self, message_id: str) -> SmsRecord | None:
        with self._tx() as c:
            return self._one(c, M.c.id == message_id)

    def recent(self, *, tenant: str | None = None, status: str | None = None,
               call_id: str | None = None, limit: int = 100) -> list[SmsRecord]:
        q = select(M).order_by(M.c.created_at.desc()).limit(limit)
        if tenant is not None:
            q = q.where(M.c.tenant == tenant)
        if status is not None:
            q = q.where(M.c.status == status)
        if call_id is not None:
            q = q.where(M.c.call_id == call_id)
        with self._tx() as c:
            return [_record(r) for r in c.execute(q)]

    def counts(self) -> dict[str, int]:
        with self._tx() as c:
            return {st: n for st, n in c.execute(
                select(M.c.status, func.count()).group_by(M.c.status))}

    def recover(self, now: float, node: str = "") -> int:
        """Start-up: messages this engine (``node``) left in ``sending`` when it was killed
        become ``unknown``; other nodes' messages in flight are theirs."""
        with self._tx() as c:
            result = c.execute(
                update(M).where(M.c.status == "sending", M.c.node == node)
                .values(status="unknown", done_at=now,
                        reason="the engine stopped while the SMSC had part of it; not resent "
                               "to avoid a duplicate (check the handset or the SMSC's log)"))
            return int(result.rowcount or 0)

    def claim_due(self, now: float, limit: int, node: str = "", gateway: str | None = None
                  ) -> list[SmsRecord]:
        """Up to ``limit`` queued messages whose time has come, moved to ``sending`` (and to
        ``gateway`` on their first attempt). ``FOR UPDATE SKIP LOCKED`` lets several engine
        nodes share a PostgreSQL outbox."""
        with self._tx() as c:
            rows = c.execute(_DUE, {"now": now, "lim": limit}).all()
            if not rows:
                return []
            ids = [r.id for r in rows]
            c.execute(_CLAIM, {"ids": ids, "node_name": node})
            if gateway is not None:
                c.execute(_CLAIM_GATEWAY, {"ids": ids, "gw": gateway})
            accepted = self._accepted(c, ids)
            out = []
            for r in rows:
                m = dict(r._mapping)
                m.update(status="sending", node=node, attempts=m["attempts"] + 1)
                if gateway is not None and m["attempts"] == 1:
                    m["gateway"] = gateway
                out.append(_record(m, accepted[r.id]))
            return out

    def next_due(self) -> float | None:
        with self._tx() as c:
            return c.execute(select(func.min(M.c.due_at))
                             .where(M.c.status == "queued")).scalar()

    def part_accepted(self, message_id: str, part: int, gateway_id: str, now: float) -> None:
        """Each part is written once: a later try sends only the parts not written here."""
        with self._tx() as c:
            c.execute(_INSERT_PART, {"message_id": message_id, "part": part,
                                     "gateway_message_id": gateway_id, "status": "submitted",
                                     "stat": "", "submitted_at": now, "receipt_at": None})

    def move(self, message_id: str, status: str, now: float, *, reason: str = "",
             due_at: float | None = None, checked: bool | None = None) -> str | None:
        """Move a message; the status written, or None when nothing moved (unknown id, or a
        receipt already made it final: a late ``submitted`` never undoes that)."""
        if status not in STATUSES:
            raise ValueError(f"status: {status!r} is not one of {', '.join(STATUSES)}")
        with self._tx() as c:
            row = c.execute(_MOVE_STATE, {"mid": message_id}).first()
            if row is None:
                return None
            if row.status in FINAL_STATUSES and status == "submitted":
                return None  # a receipt overtook the last part's response: it stands
            if status == "submitted" and row.parts_delivered >= row.parts > 0:
                status = "delivered"  # every part's receipt came before this point
            values: dict[str, Any] = {"status": status}
            if reason:
                values["reason"] = reason
            if due_at is not None:
                values["due_at"] = due_at
            if checked is not None:
                values["checked"] = int(checked)
            if status in ("submitted", "delivered") and row.submitted_at is None:
                values["submitted_at"] = now
            if status in FINAL_STATUSES:
                values["done_at"] = now
            c.execute(_UPDATE_MESSAGE, {"mid": message_id, **values})
            return status

    def set_status(self, message_id: str, status: str, now: float, *, reason: str = "",
                   due_at: float | None = None, checked: bool | None = None) -> SmsRecord | None:
        """:meth:`move`, then the message as it now is (None when nothing moved)."""
        if self.move(message_id, status, now, reason=reason, due_at=due_at,
                     checked=checked) is None:
            return None
        return self.get(message_id)

    def expire_queued(self, now: float) -> list[SmsRecord]:
        with self._tx() as c:
            where = (M.c.status == "queued") & (M.c.expires_at <= now)
            rows = c.execute(select(M).where(where)).all()
            if not rows:
                return []
            reason = "validity passed before it could be sent"
            c.execute(update(M).where(where).values(status="expired", done_at=now,
                                                    reason=reason))
            return [_record({**r._mapping, "status": "expired", "done_at": now,
                             "reason": reason}) for r in rows]

    def apply_receipt(self, gateway: str, gateway_id: str, part_status: str, stat: str, *,
                      now: float, message_id: str | None = None
                      ) -> tuple[bool, SmsRecord | None]:
        """Record a receipt; the message is delivered once every part is, failed or expired as
        soon as one part is. A receipt naming the message (``message_id``, no ``gateway_id``:
        Kannel reports a split message once) covers all its parts. Returns (known, the message
        when its status changed); a repeated receipt changes nothing."""
        with self._tx() as c:
            whole = message_id is not None and not gateway_id
            if whole:
                parts = c.execute(_PARTS_OF, {"mid": message_id}).all()
            else:
                parts = c.execute(_PART_BY_GATEWAY_ID, {"gid": gateway_id}).all()
                message_id = parts[0].message_id if parts else None
            row = c.execute(_MESSAGE_BY_ID, {"mid": message_id}).first() \
                if message_id else None
            if row is None or row.gateway != gateway:
                return False, None
            fresh = [p for p in parts if p.status not in ("delivered", "failed", "expired")]
            if fresh:
                c.execute(_UPDATE_PARTS, {"mid": row.id, "part_nos": [p.part for p in fresh],
                                          "status": part_status, "stat": stat,
                                          "receipt_at": now})
            if (not fresh and not whole) or row.status in FINAL_STATUSES:
                return True, None
            m = dict(row._mapping)
            if part_status == "delivered":
                # a message-level receipt may overtake the rows of its parts being written
                m["parts_delivered"] = m["parts"] if whole else m["parts_delivered"] + len(fresh)
                if m["parts_delivered"] >= m["parts"] and m["status"] == "submitted":
                    m["status"] = "delivered"
            elif part_status in ("failed", "expired"):
                m["status"] = part_status
                first = fresh[0].part + 1 if fresh and not whole else None
                m["reason"] = f"part {first}: {stat}" if first else stat
            changed = m["status"] != row.status
            if changed:
                m["done_at"] = now
            c.execute(_UPDATE_MESSAGE, {"mid": row.id, "parts_delivered": m["parts_delivered"],
                                        "status": m["status"], "reason": m["reason"],
                                        "done_at": m["done_at"]})
            return True, (_record(m) if changed else None)

    def last_tenant_for(self, number: str) -> str | None:
        """Whose message a reply from ``number`` answers: the latest sent to it."""
        with self._tx() as c:
            return c.execute(select(M.c.tenant).where(M.c.to_number == number)
                             .order_by(M.c.created_at.desc()).limit(1)).scalar()


def dumps(records: Sequence[SmsRecord]) -> str:
    return json.dumps([r.as_dict() for r in records], ensure_ascii=False, indent=1)
