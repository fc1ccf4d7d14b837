"""Call records (CDR): one row per call, and the repository the CLI and console read.

:mod:`engine.cdr_builder` assembles a :class:`CallRecord` from the call's events;
:mod:`engine.cdr_writer` writes it off the event loop in batches.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from dataclasses import asdict, dataclass, field
from typing import Any

from sqlalchemy import JSON, Float, Integer, String, Text, select
from sqlalchemy.orm import Mapped, mapped_column

from storage import Base, Database

log = logging.getLogger("ivr.cdr")


class CallRow(Base):
    __tablename__ = "calls"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    tenant: Mapped[str] = mapped_column(String(64), default="default", index=True)
    sip_call_id: Mapped[str] = mapped_column(String(255), index=True)
    direction: Mapped[str] = mapped_column(String(8))
    from_number: Mapped[str] = mapped_column(String(128), index=True)
    to_number: Mapped[str] = mapped_column(String(128), index=True)
    invite_at: Mapped[float] = mapped_column(Float, index=True)
    answer_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    end_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    disposition: Mapped[str] = mapped_column(String(32))
    hangup_cause: Mapped[str] = mapped_column(String(64), default="")
    hangup_side: Mapped[str] = mapped_column(String(16), default="")
    sip_status: Mapped[int | None] = mapped_column(Integer, nullable=True)
    digits: Mapped[str] = mapped_column(String(256), default="")
    recording_path: Mapped[str | None] = mapped_column(Text, nullable=True)
    codec: Mapped[str] = mapped_column(String(16), default="")
    backend: Mapped[str] = mapped_column(String(16), default="sip")  # sip | asterisk
    flow_id: Mapped[str | None] = mapped_column(String(128), nullable=True)
    flow_version: Mapped[int | None] = mapped_column(Integer, nullable=True)
    trace: Mapped[Any] = mapped_column(JSON, default=list)
    media: Mapped[Any] = mapped_column(JSON, default=dict)
    flow_result: Mapped[Any] = mapped_column(JSON, default=dict)


@dataclass
class CallRecord:
    sip_call_id: str
    direction: str  # inbound | outbound
    from_number: str
    to_number: str
    id: str = field(default_factory=lambda: str(uuid.uuid4()))
    tenant: str = "default"
    invite_at: float = field(default_factory=time.time)
    answer_at: float | None = None
    end_at: float | None = None
    disposition: str = "failed"  # answered, no_answer, busy, cancelled, rejected, failed
    hangup_cause: str = ""
    hangup_side: str = ""
    sip_status: int | None = None
    digits: str = ""
    recording_path: str | None = None
    codec: str = ""
    backend: str = "sip"  # which backend carried the call: sip (own stack) or asterisk
    flow_id: str | None = None
    flow_version: int | None = None
    trace: list[dict[str, Any]] = field(default_factory=list)
    media: dict[str, Any] = field(default_factory=dict)
    flow_result: dict[str, Any] = field(default_factory=dict)  # status, variables (masked)

    @property
    def duration_s(self) -> float:
        if self.answer_at is None or self.end_at is None:
            return 0.0
        return max(0.0, self.end_at - self.answer_at)

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["duration_s"] = round(self.duration_s, 3)
        return d


def _row(rec: CallRecord) -> CallRow:
    data = asdict(rec)
    data["trace"] = json.loads(json.dumps(data["trace"], default=str))
    data["media"] = json.loads(json.dumps(data["media"], default=str))
    data["flow_result"] = json.loads(json.dumps(data["flow_result"], default=str))
    return CallRow(**data)


def record_from_row(row: CallRow) -> CallRecord:
    return CallRecord(**{c: getattr(row, c) for c in CallRecord.__dataclass_fields__})


class CallRecords:
    """Reading and writing call records (the CLI and the console read through this)."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def save_many(self, records: list[CallRecord]) -> None:
        with self.db.session() as s:
            for rec in records:
                s.merge(_row(rec))

    def list(self, limit: int = 50, tenant: str | None = None) -> list[CallRecord]:
        with self.db.session() as s:
            q = select(CallRow).order_by(CallRow.invite_at.desc()).limit(limit)
            if tenant is not None:
                q = q.where(CallRow.tenant == tenant)
            return [record_from_row(r) for r in s.scalars(q)]

    def get(self, call_id: str) -> CallRecord | None:
        with self.db.session() as s:
            row = s.get(CallRow, call_id)
            if row is None:
                rows = list(s.scalars(select(CallRow).where(
                    (CallRow.id.startswith(call_id)) | (CallRow.sip_call_id == call_id)
                ).limit(2)))
                row = rows[0] if len(rows) == 1 else None
            return record_from_row(row) if row is not None else None
