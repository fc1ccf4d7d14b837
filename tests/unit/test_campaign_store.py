"""The campaign store's per-dial statements (claim, finish_attempt) on SQLite and a real
PostgreSQL: they are prebuilt Core statements with RETURNING (cheap enough for 50 dials/s),
so both databases must give the same rows, the same JSON and the same refusals."""

from __future__ import annotations

import pytest

from campaigns.contacts import Contact
from campaigns.model import AttemptRow, ContactRow
from campaigns.store import CampaignStore
from storage import open_database
from tests.campaign_fakes import spec


def make_store(db_url: str) -> tuple[CampaignStore, str, list[int]]:
    store = CampaignStore(open_database(db_url))
    contacts = [Contact("+8613800138000", "13800138000", 2, {"name": "张三"}),
                Contact("+8613900139000", "13900139000", 3, {"name": "李四"})]
    c = store.create(spec(), contacts, flow_id="f", flow_version=1, now=1.0)
    store.set_state(c.id, "running", 1.0)
    due = store.due_contacts(c.id, 10.0, 10)
    return store, c.id, [d.id for d in due]


def rows(store: CampaignStore, contact_id: int) -> tuple[ContactRow, list[AttemptRow]]:
    with store.db.session() as s:
        contact = s.get(ContactRow, contact_id)
        attempts = s.query(AttemptRow).filter_by(contact_id=contact_id).order_by(
            AttemptRow.attempt_no).all()
        s.expunge_all()
    assert contact is not None
    return contact, attempts


def test_claim_retry_and_finish_write_the_rows(db_url: str) -> None:
    store, cid, (first, _) = make_store(db_url)
    claim = store.claim(cid, first, node="n1", caller_id="+8601012345678", trunk="t", now=2.0)
    assert claim is not None and claim.attempt_no == 1
    assert store.claim(cid, first, node="n2", caller_id="", trunk="t", now=2.1) is None

    assert store.finish_attempt(
        claim.attempt_id, outcome={"disposition": "busy", "cause": "486", "sip_status": 486,
                                   "result": {"说": "忙"}},
        disposition="busy", state="done", next_at=60.0, reason="retry busy in 58 s", now=2.5)
    contact, attempts = rows(store, first)
    assert (contact.state, contact.next_at, contact.reason_code) == ("pending", 60.0, "retry")
    assert contact.history == ["busy"] and contact.last_disposition == "busy"
    assert contact.result == {}  # only an answered call's result is kept on the contact
    assert [(a.attempt_no, a.state, a.node, a.sip_status, a.ended_at, a.result)
            for a in attempts] == [(1, "done", "n1", 486, 2.5, {"说": "忙"})]

    again = store.claim(cid, first, node="n1", caller_id="", trunk="t", now=61.0)
    assert again is not None and again.attempt_no == 2
    store.finish_attempt(again.attempt_id, outcome={"disposition": "answered",
                                                    "ended_at": 70.0},
                         disposition="answered", state="done", next_at=None, reason="",
                         now=71.0, result={"confirmed": "1"})
    contact, attempts = rows(store, first)
    assert (contact.state, contact.reason_code, contact.history) == (
        "done", "", ["busy", "answered"])
    assert contact.result == {"confirmed": "1"}
    assert [a.ended_at for a in attempts] == [2.5, 70.0]


def test_an_orphan_is_settled_once_and_bad_input_is_refused(db_url: str) -> None:
    store, cid, (_, second) = make_store(db_url)
    claim = store.claim(cid, second, node="dead", caller_id="", trunk="t", now=2.0)
    assert claim is not None
    settle = {"outcome": {"disposition": "failed", "cause": "node_lost"},
              "disposition": "interrupted", "state": "done", "next_at": None,
              "reason": "node lost", "now": 5.0, "only_if_dialing": True}
    assert store.finish_attempt(claim.attempt_id, **settle)
    assert not store.finish_attempt(claim.attempt_id, **settle)  # the second survivor
    assert rows(store, second)[0].history == ["interrupted"]

    with pytest.raises(KeyError, match="not attempt columns: \\['colour'\\]"):
        store.finish_attempt(claim.attempt_id, outcome={"colour": "red"}, disposition="x",
                             state="done", next_at=None, reason="", now=6.0)
    with pytest.raises(LookupError, match="attempt 999999 does not exist"):
        store.finish_attempt(999999, outcome={}, disposition="x", state="done", next_at=None,
                             reason="", now=6.0)
    assert rows(store, second)[0].history == ["interrupted"]  # nothing half-written
