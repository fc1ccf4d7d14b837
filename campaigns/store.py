"""Reading and writing campaigns, contacts and attempts (blocking: call it off the event loop).

The runner calls it through one worker thread; the CLI and the console call it directly. Every
state change is one transaction; the claim that precedes a dial is a conditional update
(``state = 'pending'``), so a contact can be claimed once, by one runner, per attempt.
"""

from __future__ import annotations

import builtins
import uuid
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import Table, bindparam, func, insert, select, update

from campaigns.contacts import Contact
from campaigns.model import AttemptRow, CallerIdUsageRow, CampaignRow, ContactRow
from campaigns.spec import CampaignSpec
from storage import Database

# The statements every dial runs, built once (the SET of the two updates without values()
# comes from the keys given at execution; bind names start with b_ to stay clear of columns).
_CONTACTS = cast(Table, ContactRow.__table__)
_ATTEMPTS = cast(Table, AttemptRow.__table__)
_ATTEMPT_COLUMNS = frozenset(_ATTEMPTS.c.keys())
_CLAIM = update(_CONTACTS).where(
    _CONTACTS.c.id == bindparam("b_contact"), _CONTACTS.c.state == "pending",
    _CONTACTS.c.next_at <= bindparam("b_now")).values(
    state="dialing", attempts=_CONTACTS.c.attempts + 1, updated_at=bindparam("b_now"),
    reason_code="", reason="").returning(_CONTACTS.c.number, _CONTACTS.c.attempts)
_CLAIM_READ_AS = _CLAIM.where(_CONTACTS.c.attempts == bindparam("b_attempts"))
_NEW_ATTEMPT = insert(_ATTEMPTS).returning(_ATTEMPTS.c.id)
_FINISH = update(_ATTEMPTS).where(_ATTEMPTS.c.id == bindparam("b_attempt")).returning(
    _ATTEMPTS.c.contact_id)
_FINISH_DIALING = update(_ATTEMPTS).where(
    _ATTEMPTS.c.id == bindparam("b_attempt"), _ATTEMPTS.c.state == "dialing").returning(
    _ATTEMPTS.c.contact_id)
_HISTORY = select(_CONTACTS.c.history).where(_CONTACTS.c.id == bindparam("b_contact"))
_UPDATE_CONTACT = update(_CONTACTS).where(_CONTACTS.c.id == bindparam("b_contact"))
INSERT_CHUNK = 5_000
PAGE_ROWS = 2_000
TRANSITIONS = {  # state -> the states an operator may move it to
    "draft": {"running", "stopped"},
    "running": {"paused", "stopped", "finished"},
    "paused": {"running", "stopped"},
    "stopped": set(),
    "finished": set(),
}
EDITABLE_STATES = ("draft", "paused")


class CampaignNotFound(LookupError):
    pass


class BadTransition(ValueError):
    pass


@dataclass(frozen=True, slots=True)
class Campaign:
    id: str
    tenant: str
    name: str
    state: str
    spec: CampaignSpec
    flow_id: str
    flow_version: int
    priority: int
    created_at: float
    started_at: float | None
    finished_at: float | None
    total: int
    import_report: dict[str, Any]


@dataclass(frozen=True, slots=True)
class DueContact:
    id: int
    number: str
    variables: dict[str, Any]
    attempts: int
    history: list[str]
    priority: int


@dataclass(frozen=True, slots=True)
class Claim:
    attempt_id: int
    attempt_no: int


def _campaign(row: CampaignRow) -> Campaign:
    return Campaign(row.id, row.tenant, row.name, row.state,
                    CampaignSpec.model_validate(row.spec), row.flow_id, row.flow_version,
                    row.priority, row.created_at, row.started_at, row.finished_at, row.total,
                    dict(row.import_report or {}))


class CampaignStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    # -- campaigns ------------------------------------------------------------------------------

    def create(self, spec: CampaignSpec, contacts: Sequence[Contact], *, flow_id: str,
               flow_version: int, now: float, import_report: dict[str, Any] | None = None
               ) -> Campaign:
        campaign_id = spec.id or f"c-{uuid.uuid4().hex[:10]}"
        stored = spec.model_copy(update={"id": campaign_id})
        with self.db.session() as s:
            if s.get(CampaignRow, campaign_id) is not None:
                raise ValueError(f"id: campaign {campaign_id!r} exists already")
            s.add(CampaignRow(
                id=campaign_id, tenant=spec.tenant, name=spec.name, state="draft",
                spec=stored.model_dump(mode="json"), flow_id=flow_id, flow_version=flow_version,
                priority=spec.priority, created_at=now, updated_at=now, total=len(contacts),
                import_report=import_report or {}))
            s.flush()
            self._insert_contacts(s, campaign_id, contacts, now)
        return self.get(campaign_id)

    def add_contacts(self, campaign_id: str, contacts: Sequence[Contact], *, now: float
                     ) -> None:
        with self.db.session() as s:
            row = s.get(CampaignRow, campaign_id)
            if row is None:
                raise CampaignNotFound(f"no campaign {campaign_id!r}")
            self._insert_contacts(s, campaign_id, contacts, now)
            row.total += len(contacts)
            row.updated_at = now

    @staticmethod
    def _insert_contacts(s: Any, campaign_id: str, contacts: Sequence[Contact], now: float
                         ) -> None:
        for i in range(0, len(contacts), INSERT_CHUNK):
            s.execute(insert(ContactRow), [
                {"campaign_id": campaign_id, "number": c.number, "raw_number": c.raw_number,
                 "line": c.line, "variables": c.variables, "priority": c.priority,
                 "state": "pending", "attempts": 0, "next_at": 0.0, "history": [],
                 "result": {}, "updated_at": now}
                for c in contacts[i:i + INSERT_CHUNK]])

    def get(self, campaign_id: str) -> Campaign:
        with self.db.session() as s:
            row = s.get(CampaignRow, campaign_id)
            if row is None:
                raise CampaignNotFound(f"no campaign {campaign_id!r}")
            return _campaign(row)

    def list(self, tenant: str | None = None, states: Iterable[str] | None = None
             ) -> list[Campaign]:
        with self.db.session() as s:
            q = select(CampaignRow).order_by(CampaignRow.created_at.desc())
            if tenant is not None:
                q = q.where(CampaignRow.tenant == tenant)
            if states is not None:
                q = q.where(CampaignRow.state.in_(list(states)))
            return [_campaign(r) for r in s.scalars(q)]

    def set_state(self, campaign_id: str, state: str, now: float) -> Campaign:
        with self.db.session() as s:
            row = s.get(CampaignRow, campaign_id)
            if row is None:
                raise CampaignNotFound(f"no campaign {campaign_id!r}")
            if state != row.state and state not in TRANSITIONS[row.state]:
                raise BadTransition(f"campaign {campaign_id} is {row.state}: it cannot be "
                                    f"made {state}")
            row.state = state
            row.updated_at = now
            if state == "running" and row.started_at is None:
                row.started_at = now
            if state in ("stopped", "finished"):
                row.finished_at = now
            s.flush()
            return _campaign(row)

    def update_spec(self, campaign_id: str, spec: CampaignSpec, *, flow_id: str,
                    flow_version: int, now: float) -> Campaign:
        """A new spec for a campaign that is a draft or paused (the runner re-reads it when
        the campaign runs again); the id and tenant never change."""
        with self.db.session() as s:
            row = s.get(CampaignRow, campaign_id)
            if row is None:
                raise CampaignNotFound(f"no campaign {campaign_id!r}")
            if row.state not in EDITABLE_STATES:
                raise BadTransition(f"campaign {campaign_id} is {row.state}: only a draft or a "
                                    "paused campaign can be edited")
            stored = spec.model_copy(update={"id": campaign_id, "tenant": row.tenant})
            row.spec = stored.model_dump(mode="json")
            row.name, row.priority = stored.name, stored.priority
            row.flow_id, row.flow_version = flow_id, flow_version
            row.updated_at = now
            s.flush()
            return _campaign(row)

    def finish_if_done(self, campaign_id: str, now: float) -> bool:
        """A running campaign with nothing pending or dialling is finished."""
        with self.db.session() as s:
            open_contacts = s.scalar(select(func.count()).select_from(ContactRow).where(
                ContactRow.campaign_id == campaign_id,
                ContactRow.state.in_(("pending", "dialing"))))
            if open_contacts:
                return False
            res = s.execute(update(CampaignRow).where(
                CampaignRow.id == campaign_id, CampaignRow.state == "running").values(
                state="finished", finished_at=now, updated_at=now))
            return bool(getattr(res, "rowcount", 0))

    # -- contacts -------------------------------------------------------------------------------

    def due_contacts(self, campaign_id: str, now: float, limit: int) -> builtins.list[DueContact]:
        with self.db.session() as s:
            rows = s.execute(
                select(ContactRow.id, ContactRow.number, ContactRow.variables,
                       ContactRow.attempts, ContactRow.history, ContactRow.priority)
                .where(ContactRow.campaign_id == campaign_id, ContactRow.state == "pending",
                       ContactRow.next_at <= now)
                .order_by(ContactRow.priority.desc(), ContactRow.next_at, ContactRow.id)
                .limit(limit)).all()
            return [DueContact(r[0], r[1], dict(r[2] or {}), r[3], list(r[4] or []), r[5])
                    for r in rows]

    def next_due_at(self, campaign_id: str) -> float | None:
        with self.db.session() as s:
            value = s.scalar(select(func.min(ContactRow.next_at)).where(
                ContactRow.campaign_id == campaign_id, ContactRow.state == "pending"))
            return float(value) if value is not None else None

    # ``attempts``, where a caller passes it, is how many attempts the contact had when the
    # caller read it as due (DueContact.attempts): a runner whose list went stale while it
    # worked through it (another node dialled the contact meanwhile, which is pending again
    # for a retry later) must neither dial that retry early nor skip or defer the contact on
    # the strength of a check made for the attempt that already happened.

    def defer(self, contact_id: int, at: float, code: str, reason: str, now: float, *,
              attempts: int | None = None) -> None:
        with self.db.session() as s:
            s.execute(update(ContactRow).where(*_still_pending(contact_id, attempts)).values(
                next_at=at, reason_code=code, reason=reason[:1000], updated_at=now))

    def skip(self, contact_id: int, code: str, reason: str, now: float, *,
             attempts: int | None = None) -> None:
        with self.db.session() as s:
            s.execute(update(ContactRow).where(*_still_pending(contact_id, attempts)).values(
                state="skipped", reason_code=code, reason=reason[:1000], updated_at=now))

    def claim(self, campaign_id: str, contact_id: int, *, node: str, caller_id: str,
              trunk: str, now: float, attempts: int | None = None) -> Claim | None:
        """Mark the contact ``dialing`` and record the attempt; None if it was no longer
        pending and due (another runner took it, an operator skipped it, or it was dialled
        since the caller read it: ``attempts``).

        Prebuilt Core statements with RETURNING, not the ORM: this and :meth:`finish_attempt`
        run for every dial, and building statements and the ORM's unit of work cost more CPU
        than the statements themselves (docs/benchmarks.md, campaigns)."""
        with self.db.engine.begin() as conn:
            if attempts is None:
                row = conn.execute(_CLAIM, {"b_contact": contact_id, "b_now": now}).first()
            else:
                row = conn.execute(_CLAIM_READ_AS, {"b_contact": contact_id, "b_now": now,
                                                    "b_attempts": attempts}).first()
            if row is None:
                return None
            number, attempt_no = row
            attempt_id = conn.execute(_NEW_ATTEMPT, {
                "campaign_id": campaign_id, "contact_id": contact_id, "number": number,
                "attempt_no": attempt_no, "state": "dialing", "node": node, "started_at": now,
                "caller_id": caller_id, "trunk": trunk}).scalar_one()
            return Claim(attempt_id, attempt_no)

    def finish_attempt(self, attempt_id: int, *, outcome: dict[str, Any], disposition: str,
                       state: str, next_at: float | None, reason: str, now: float,
                       result: dict[str, Any] | None = None, only_if_dialing: bool = False,
                       ) -> bool:
        """The attempt's outcome, and the contact's next step: ``pending`` again at
        ``next_at`` (a retry) or ``done``. ``only_if_dialing``: settle an orphan only if it is
        still ``dialing`` (two surviving nodes, or a node restarting while a survivor settles
        its attempts, must not write the outcome twice); returns whether it was written.
        ``outcome``: columns of the attempt row; an unknown one is a KeyError."""
        unknown = set(outcome) - _ATTEMPT_COLUMNS
        if unknown:
            raise KeyError(f"outcome: not attempt columns: {sorted(unknown)}")
        values = {**outcome, "state": state, "ended_at": outcome.get("ended_at") or now,
                  "b_attempt": attempt_id}
        contact: dict[str, Any] = {
            "last_disposition": disposition, "updated_at": now, "reason": reason[:1000],
            "reason_code": "retry" if next_at is not None else "",
            "state": "pending" if next_at is not None else "done"}
        if next_at is not None:
            contact["next_at"] = next_at
        if result:
            contact["result"] = result
        with self.db.engine.begin() as conn:
            finish = _FINISH_DIALING if only_if_dialing else _FINISH
            contact_id = conn.execute(finish, values).scalar()
            if contact_id is None:
                if only_if_dialing:
                    return False
                raise LookupError(f"campaign attempt {attempt_id} does not exist")
            history = conn.execute(_HISTORY, {"b_contact": contact_id}).scalar()
            contact["history"] = [*(history or []), disposition]
            conn.execute(_UPDATE_CONTACT, {**contact, "b_contact": contact_id})
            return True

    def orphans(self, node: str) -> builtins.list[tuple[int, str]]:
        """(attempt id, campaign id) of attempts this node left ``dialing`` when it died."""
        with self.db.session() as s:
            rows = s.execute(select(AttemptRow.id, AttemptRow.campaign_id).where(
                AttemptRow.state == "dialing", AttemptRow.node == node)).all()
            return [(r[0], r[1]) for r in rows]

    def dialing_nodes(self) -> builtins.list[str]:
        """Nodes with attempts still ``dialing``: a survivor settles those of a dead one."""
        with self.db.session() as s:
            return list(s.scalars(select(AttemptRow.node).where(
                AttemptRow.state == "dialing").distinct()))

    def history_of(self, attempt_id: int) -> builtins.list[str]:
        with self.db.session() as s:
            attempt = s.get(AttemptRow, attempt_id)
            if attempt is None:
                return []
            contact = s.get(ContactRow, attempt.contact_id)
            return list(contact.history or []) if contact else []

    # -- caller IDs -----------------------------------------------------------------------------

    def reserve_caller_id(self, number: str, day: str, cap: int | None) -> bool:
        """Count one call for ``number`` on ``day`` unless it reached ``cap`` (atomic)."""
        with self.db.session() as s:
            row = s.scalar(select(CallerIdUsageRow).where(
                CallerIdUsageRow.number == number, CallerIdUsageRow.day == day))
            if row is None:
                s.add(CallerIdUsageRow(number=number, day=day, count=1))
                return True
            stmt = update(CallerIdUsageRow).where(CallerIdUsageRow.id == row.id)
            if cap is not None:
                stmt = stmt.where(CallerIdUsageRow.count < cap)
            res = s.execute(stmt.values(count=CallerIdUsageRow.count + 1))
            return bool(getattr(res, "rowcount", 0))

    def caller_id_counts(self, numbers: Sequence[str], day: str) -> dict[str, int]:
        with self.db.session() as s:
            rows = s.execute(select(CallerIdUsageRow.number, CallerIdUsageRow.count).where(
                CallerIdUsageRow.day == day, CallerIdUsageRow.number.in_(list(numbers))))
            return {r[0]: r[1] for r in rows}

    # -- reading for status and reports ---------------------------------------------------------

    def contact_counts(self, campaign_id: str) -> dict[str, int]:
        with self.db.session() as s:
            rows = s.execute(select(ContactRow.state, func.count()).where(
                ContactRow.campaign_id == campaign_id).group_by(ContactRow.state))
            return {r[0]: r[1] for r in rows}

    def reason_counts(self, campaign_id: str) -> dict[str, int]:
        """Skipped and deferred contacts by reason code."""
        with self.db.session() as s:
            rows = s.execute(select(ContactRow.reason_code, func.count()).where(
                ContactRow.campaign_id == campaign_id, ContactRow.reason_code != "",
                ContactRow.reason_code != "retry").group_by(ContactRow.reason_code))
            return {r[0]: r[1] for r in rows}

    def attempts(self, campaign_id: str) -> Iterator[AttemptRow]:
        """Every attempt, oldest first, read a page at a time (detached rows)."""
        yield from self._pages(AttemptRow, campaign_id)

    def contacts(self, campaign_id: str) -> Iterator[ContactRow]:
        """Every contact in upload order, read a page at a time (detached rows)."""
        yield from self._pages(ContactRow, campaign_id)

    def _pages(self, table: Any, campaign_id: str) -> Iterator[Any]:
        after = 0
        while True:
            with self.db.session() as s:
                rows = list(s.scalars(select(table).where(
                    table.campaign_id == campaign_id, table.id > after)
                    .order_by(table.id).limit(PAGE_ROWS)))
            yield from rows
            if len(rows) < PAGE_ROWS:
                return
            after = rows[-1].id

    def attempt_count(self, campaign_id: str, since: float = 0.0) -> int:
        with self.db.session() as s:
            return int(s.scalar(select(func.count()).select_from(AttemptRow).where(
                AttemptRow.campaign_id == campaign_id, AttemptRow.started_at >= since)) or 0)


def _still_pending(contact_id: int, attempts: int | None) -> list[Any]:
    """WHERE terms: the contact is pending (and had ``attempts`` attempts, when given)."""
    terms: list[Any] = [ContactRow.id == contact_id, ContactRow.state == "pending"]
    if attempts is not None:
        terms.append(ContactRow.attempts == attempts)
    return terms
