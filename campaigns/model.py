"""The campaign tables (SQLAlchemy on ``storage.Base``): what survives an engine restart.

A contact is dialled only after its attempt row is committed in state ``dialing``; a restart
turns attempts still ``dialing`` into ``interrupted`` and never dials them again (the call may
have rung: a second ring is worse than a lost attempt, as with the SMS outbox's ``unknown``).
The ``(contact_id, attempt_no)`` unique key and the conditional claim make a double dial
impossible even with two runners on one database.

Contact states::

    pending --claim--> dialing --result--> pending (retry at next_at) | done
       \\--compliance--> skipped (blacklisted, capped, invalid, test mode: reason kept)
       \\--window--> pending (next_at = the window's next opening, reason kept)
    dialing --engine killed--> done (last_disposition interrupted)

Campaign states: ``draft`` -> ``running`` <-> ``paused`` -> ``stopped``; ``running`` ->
``finished`` when no contact is pending or dialing.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import JSON, Float, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from storage import Base

CAMPAIGN_STATES = ("draft", "running", "paused", "stopped", "finished")
CONTACT_STATES = ("pending", "dialing", "done", "skipped")
ATTEMPT_STATES = ("dialing", "done", "interrupted")


class CampaignRow(Base):
    __tablename__ = "campaigns"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    tenant: Mapped[str] = mapped_column(String(64), index=True)
    name: Mapped[str] = mapped_column(String(128))
    state: Mapped[str] = mapped_column(String(16), index=True, default="draft")
    spec: Mapped[Any] = mapped_column(JSON)
    flow_id: Mapped[str] = mapped_column(String(128))
    flow_version: Mapped[int] = mapped_column(Integer)
    priority: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[float] = mapped_column(Float)
    updated_at: Mapped[float] = mapped_column(Float)
    started_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    finished_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    total: Mapped[int] = mapped_column(Integer, default=0)
    import_report: Mapped[Any] = mapped_column(JSON, default=dict)


class ContactRow(Base):
    __tablename__ = "campaign_contacts"
    __table_args__ = (
        UniqueConstraint("campaign_id", "number"),
        Index("ix_campaign_contacts_due", "campaign_id", "state", "next_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    campaign_id: Mapped[str] = mapped_column(String(64))
    number: Mapped[str] = mapped_column(String(20))  # E.164
    raw_number: Mapped[str] = mapped_column(String(64), default="")
    line: Mapped[int] = mapped_column(Integer, default=0)  # where it came from in the upload
    variables: Mapped[Any] = mapped_column(JSON, default=dict)
    priority: Mapped[int] = mapped_column(Integer, default=0)
    state: Mapped[str] = mapped_column(String(16), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_at: Mapped[float] = mapped_column(Float, default=0.0)  # wall time it is due
    last_disposition: Mapped[str] = mapped_column(String(32), default="")
    reason: Mapped[str] = mapped_column(Text, default="")  # why skipped/deferred, in words
    reason_code: Mapped[str] = mapped_column(String(32), default="")
    result: Mapped[Any] = mapped_column(JSON, default=dict)  # the last answered call's outcome
    history: Mapped[Any] = mapped_column(JSON, default=list)  # dispositions, one per attempt
    updated_at: Mapped[float] = mapped_column(Float, default=0.0)


class AttemptRow(Base):
    __tablename__ = "campaign_attempts"
    __table_args__ = (UniqueConstraint("contact_id", "attempt_no"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    campaign_id: Mapped[str] = mapped_column(String(64), index=True)
    contact_id: Mapped[int] = mapped_column(Integer, index=True)
    number: Mapped[str] = mapped_column(String(20))
    attempt_no: Mapped[int] = mapped_column(Integer)
    state: Mapped[str] = mapped_column(String(16), default="dialing", index=True)
    node: Mapped[str] = mapped_column(String(128), default="")
    started_at: Mapped[float] = mapped_column(Float)
    ended_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    caller_id: Mapped[str] = mapped_column(String(32), default="")
    trunk: Mapped[str] = mapped_column(String(64), default="")
    call_id: Mapped[str] = mapped_column(String(36), default="")
    disposition: Mapped[str] = mapped_column(String(32), default="")
    cause: Mapped[str] = mapped_column(String(64), default="")
    sip_status: Mapped[int | None] = mapped_column(Integer, nullable=True)
    amd: Mapped[str] = mapped_column(String(16), default="")
    amd_ms: Mapped[int | None] = mapped_column(Integer, nullable=True)
    flow_status: Mapped[str] = mapped_column(String(32), default="")
    last_node: Mapped[str] = mapped_column(String(128), default="")
    duration_s: Mapped[float] = mapped_column(Float, default=0.0)
    result: Mapped[Any] = mapped_column(JSON, default=dict)  # flow variables (masked)


class CallerIdUsageRow(Base):
    """How many calls a pool number placed on a (local) day: the per-number daily cap."""

    __tablename__ = "campaign_callerid_usage"
    __table_args__ = (UniqueConstraint("number", "day"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    number: Mapped[str] = mapped_column(String(32))
    day: Mapped[str] = mapped_column(String(10))  # YYYY-MM-DD
    count: Mapped[int] = mapped_column(Integer, default=0)


class DiallerLeaseRow(Base):
    """Which node dials campaigns when nodes share a database without Redis (one row per
    lease name): taken while free or expired, renewed by its holder, given back at stop."""

    __tablename__ = "campaign_dialler_lease"

    name: Mapped[str] = mapped_column(String(32), primary_key=True)
    node: Mapped[str] = mapped_column(String(128))
    expires_at: Mapped[float] = mapped_column(Float)
