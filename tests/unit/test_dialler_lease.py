"""One dialling node per database without Redis (campaigns/dialler_lease.py), on SQLite and a
real PostgreSQL: the lease itself, then two campaign runners on one database.

Why: without ``cluster.redis_url`` two nodes each paced a campaign alone (twice its rate,
twice the trunk's) and prepared the same contacts; the docs asked operators to switch the
dialler off on all but one node, and nothing enforced it."""

from __future__ import annotations

from pathlib import Path

from campaigns.dialler_lease import DiallerLease
from storage import open_database
from tests.campaign_fakes import Answer, Rig, spec


def test_one_holder_renewal_expiry_release_and_restart(db_url: str) -> None:
    db = open_database(db_url)
    a, b = DiallerLease(db, "node-a", ttl_s=15), DiallerLease(db, "node-b", ttl_s=15)
    assert a.take(100.0) and not b.take(100.0)
    assert b.holder(100.0) == "node-a"
    assert a.take(110.0)  # renewed (past half the period): now until 125
    assert not b.take(124.0)
    assert b.take(126.0) and not a.take(127.0)  # a stopped renewing: b takes over
    assert b.taken_from == "node-a" and a.taken_from is None  # b settles what a left
    assert a.holder(127.0) == "node-b"
    b.release()
    assert a.holder(128.0) is None
    assert a.take(128.0)  # at once, not a lease period later
    assert a.taken_from == "node-b"
    restarted = DiallerLease(db, "node-a", ttl_s=15)
    assert restarted.take(129.0)  # a node's own lease comes back with it
    assert restarted.taken_from is None
    assert not b.take(129.0)
    db.engine.dispose()


async def test_two_runners_on_one_database_dial_from_one_node(tmp_path: Path) -> None:
    """Both runners start; only the lease holder dials, and when it stops the other node
    takes over and finishes the campaign."""
    rig = Rig(tmp_path, script=lambda n, k: Answer("no_answer", ring_s=1.0))
    rig.runner = rig.make_runner("node-a", lease=DiallerLease(rig.db, "node-a"))
    b = rig.make_runner("node-b", lease=DiallerLease(rig.db, "node-b"))
    rig.others = [b]
    numbers = [f"+86138001381{i:02d}" for i in range(12)]
    rig.create(numbers, spec(retry={"max_attempts": 1, "on": {}},
                             pacing={"calls_per_s": 1, "max_concurrent": 2}))
    a = rig.runner
    await a.start()
    await b.start()
    try:
        await rig.run_until(lambda: len(rig.dialler.placed) >= 4, step_s=0.25, limit_s=600)
        (first,) = {at.node for at in rig.store.attempts("spring")}  # one node dials
        holder, waiter = (a, b) if first == "node-a" else (b, a)
        assert (holder.holds_lease, waiter.holds_lease) == (True, False)
        await holder.stop()
        rig.runner, rig.others = waiter, []
        await rig.run_until(lambda: rig.state() == "finished", step_s=0.25, limit_s=600)
    finally:
        await a.stop()
        await b.stop()
    nodes = [at.node for at in rig.store.attempts("spring")]
    assert set(nodes) == {"node-a", "node-b"} and waiter.holds_lease
    assert nodes.index(waiter.node) > max(i for i, n in enumerate(nodes) if n == first)
    assert sorted(p.target for p in rig.dialler.placed) == sorted(
        f"sip:{n}@127.0.0.1:5099" for n in numbers)  # each once
