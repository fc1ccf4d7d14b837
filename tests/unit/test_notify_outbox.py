"""The durable outbox on a real SQLite file: status moves, idempotency, receipts in any order,
and what a restart does with messages a killed engine had in flight."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from core.clock import FakeClock
from core.tasks import spawn
from notify.limits import TokenBuckets
from notify.outbox import DuplicateKey, Outbox
from storage import open_database


def fields(key: str, **kw: Any) -> dict[str, Any]:
    base: dict[str, Any] = dict(
        id=key.ljust(32, "0")[:32], idempotency_key=key, tenant="acme", call_id="c1",
        campaign=None, template_id=None, rule=None, purpose="notification",
        to_number="+8613800138000", sender="10690000", text="您好", coding="ucs2", parts=2,
        reference=7, gateway="smpp", status="queued", reason="", attempts=0, checked=0,
        due_at=100.0, expires_at=1000.0, created_at=100.0, done_at=None, parts_delivered=0)
    base.update(kw)
    return base


@pytest.fixture
def outbox(tmp_path: Path) -> Outbox:
    return Outbox(open_database(f"sqlite:///{tmp_path}/o.sqlite"))


def test_an_idempotency_key_is_used_once(outbox: Outbox) -> None:
    first = outbox.add(fields("k1"))
    with pytest.raises(DuplicateKey) as e:
        outbox.add(fields("k1", id="x" * 32, text="second"))
    assert e.value.existing.id == first.id and e.value.existing.text == "您好"


def test_claim_takes_due_messages_once(outbox: Outbox) -> None:
    outbox.add(fields("a", due_at=100.0))
    outbox.add(fields("b", due_at=200.0))
    assert [r.idempotency_key for r in outbox.claim_due(150.0, 10)] == ["a"]
    assert outbox.claim_due(150.0, 10) == []
    (b,) = outbox.claim_due(250.0, 10, gateway="kannel")
    assert b.status == "sending" and b.attempts == 1 and b.gateway == "kannel"


def test_parts_then_receipts_deliver_the_message(outbox: Outbox) -> None:
    rec = outbox.add(fields("a"))
    outbox.claim_due(100.0, 1)
    outbox.part_accepted(rec.id, 0, "g0", 101.0)
    outbox.part_accepted(rec.id, 1, "g1", 101.0)
    assert outbox.set_status(rec.id, "submitted", 101.0).status == "submitted"  # type: ignore[union-attr]
    assert outbox.apply_receipt("smpp", "g0", "delivered", "DELIVRD", now=102.0) == (True, None)
    known, changed = outbox.apply_receipt("smpp", "g1", "delivered", "DELIVRD", now=103.0)
    assert known and changed is not None and changed.status == "delivered"
    assert outbox.apply_receipt("smpp", "g1", "delivered", "DELIVRD", now=104.0) == (True, None)
    assert outbox.apply_receipt("smpp", "nope", "delivered", "DELIVRD", now=104.0) == (False, None)
    assert outbox.get(rec.id).accepted == {0: "g0", 1: "g1"}  # type: ignore[union-attr]


def test_receipts_that_overtake_the_submitted_mark(outbox: Outbox) -> None:
    rec = outbox.add(fields("a", parts=1))
    outbox.claim_due(100.0, 1)
    outbox.part_accepted(rec.id, 0, "g0", 101.0)
    outbox.apply_receipt("smpp", "g0", "delivered", "DELIVRD", now=101.5)
    assert outbox.set_status(rec.id, "submitted", 102.0).status == "delivered"  # type: ignore[union-attr]
    other = outbox.add(fields("b", id="b" * 32, parts=1))
    outbox.claim_due(100.0, 1)
    outbox.part_accepted(other.id, 0, "h0", 101.0)
    outbox.apply_receipt("smpp", "h0", "failed", "UNDELIV", now=101.5)
    assert outbox.set_status(other.id, "submitted", 102.0) is None  # failed stands
    assert outbox.get(other.id).status == "failed"  # type: ignore[union-attr]


def test_a_message_level_receipt_covers_every_part(outbox: Outbox) -> None:
    rec = outbox.add(fields("a", gateway="kannel", parts=3))
    outbox.claim_due(100.0, 1)
    outbox.part_accepted(rec.id, 0, "x:0", 101.0)  # the other parts' rows are not written yet
    known, changed = outbox.apply_receipt("kannel", "", "delivered", "DELIVRD", now=101.2,
                                          message_id=rec.id)
    assert known and changed is None
    assert outbox.set_status(rec.id, "submitted", 101.3).status == "delivered"  # type: ignore[union-attr]


def test_expired_receipt_and_expired_queue(outbox: Outbox) -> None:
    rec = outbox.add(fields("a", parts=1))
    outbox.claim_due(100.0, 1)
    outbox.part_accepted(rec.id, 0, "g0", 101.0)
    outbox.set_status(rec.id, "submitted", 101.0)
    _, changed = outbox.apply_receipt("smpp", "g0", "expired", "EXPIRED", now=200.0)
    assert changed is not None and changed.status == "expired" and "EXPIRED" in changed.reason
    outbox.add(fields("b", id="b" * 32, due_at=5000.0, expires_at=900.0))
    (gone,) = outbox.expire_queued(950.0)
    assert gone.status == "expired"


def test_restart_marks_this_nodes_in_flight_messages_unknown(outbox: Outbox) -> None:
    mine = outbox.add(fields("a"))
    theirs = outbox.add(fields("b", id="b" * 32))
    waiting = outbox.add(fields("c", id="c" * 32, due_at=900.0))
    outbox.claim_due(100.0, 1, node="n1")
    outbox.claim_due(100.0, 1, node="n2")
    assert outbox.recover(300.0, node="n1") == 1
    assert outbox.get(mine.id).status == "unknown"  # type: ignore[union-attr]
    assert outbox.get(theirs.id).status == "sending"  # type: ignore[union-attr]
    assert outbox.get(waiting.id).status == "queued"  # type: ignore[union-attr]


def test_bad_status_is_refused(outbox: Outbox) -> None:
    rec = outbox.add(fields("a"))
    with pytest.raises(ValueError, match="status"):
        outbox.set_status(rec.id, "sent", 1.0)


async def test_tenant_rate_waits_on_the_clock(fake_clock: FakeClock) -> None:
    buckets = TokenBuckets(fake_clock, rate_per_s=10, burst=5)
    assert await buckets.acquire("acme", 5) == 0.0
    assert await buckets.acquire("beta", 5) == 0.0  # tenants do not share
    waiter = spawn(buckets.acquire("acme", 2), "acquire")
    await asyncio.sleep(0)
    assert not waiter.done()
    await fake_clock.advance(0.2)
    assert await waiter == pytest.approx(0.2)
