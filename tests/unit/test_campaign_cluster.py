"""Campaign work shared by the nodes of a cluster: pacing budgets and contact leases in a real
redis-server, claims and the settling of a dead node's attempts in one real PostgreSQL
database (as a cluster runs; the single-box SQLite default: test_campaign_runner.py)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest
from redis.asyncio import Redis

from campaigns.contacts import Contact
from campaigns.pacing import Limiter, Pacer
from campaigns.shared_pacing import WANT_FRESH_MS, RedisBudgets
from campaigns.store import CampaignStore
from compliance.caps import CapRule
from core.clock import FakeClock
from storage import open_database
from tests.campaign_fakes import MONDAY_10AM, Answer, Rig, spec
from tests.conftest import fresh_pg_database
from tests.netutil import free_port

pytestmark = pytest.mark.redis


async def _fresh(redis_url: str) -> Redis:
    redis = Redis.from_url(redis_url)
    await redis.flushdb()
    return redis


async def _run(clock: FakeClock, *aws: Awaitable[object], limit_s: float = 60.0) -> list:
    """Await ``aws`` while moving the fake clock in 10 ms steps (Redis answers in between)."""
    tasks = [asyncio.ensure_future(a) for a in aws]
    start = clock.now()
    while not all(t.done() for t in tasks):
        assert clock.now() - start < limit_s, "not done in time"
        await asyncio.sleep(0.002)
        await clock.advance(0.01)
    return [t.result() for t in tasks]


async def _starts(pacers: list[Pacer], clock: FakeClock, per_pacer: int, cps: float) -> list[float]:
    async def dial(p: Pacer) -> float:
        return await p.wait_turn([p.limiter("campaign:spring", cps, None)])

    got = await _run(clock, *(dial(p) for p in pacers for _ in range(per_pacer)))
    return sorted(got)


async def test_two_nodes_share_one_calls_per_second_budget(redis_url: str) -> None:
    redis = await _fresh(redis_url)
    clock = FakeClock(wall_start=1_800_000_000.0)
    shared = [Pacer(clock, RedisBudgets(redis, n)) for n in ("node-a", "node-b")]
    starts = await _starts(shared, clock, per_pacer=10, cps=10.0)
    gaps = [b - a for a, b in zip(starts, starts[1:], strict=False)]
    assert len(starts) == 20 and min(gaps) >= 0.1 - 1e-6  # 10/s for the cluster, not per node
    assert starts[-1] - starts[0] == pytest.approx(1.9, abs=0.05)
    # the measure can fail: two nodes pacing alone dial together (20/s)
    alone = await _starts([Pacer(clock), Pacer(clock)], clock, per_pacer=10, cps=10.0)
    assert min(b - a for a, b in zip(alone, alone[1:], strict=False)) < 0.01


async def test_calls_at_once_are_capped_across_nodes_and_a_dead_nodes_slots_freed(
        redis_url: str) -> None:
    redis = await _fresh(redis_url)
    clock = FakeClock()
    a_budgets, b_budgets = RedisBudgets(redis, "node-a"), RedisBudgets(redis, "node-b")
    a, b = Pacer(clock, a_budgets), Pacer(clock, b_budgets)

    def cap(p: Pacer) -> list[Limiter]:
        return [p.limiter("trunk:carrier", None, 3), p.limiter("engine", None, 100)]

    await _run(clock, a.take_slots(cap(a)), a.take_slots(cap(a)), b.take_slots(cap(b)))
    blocked = asyncio.ensure_future(b.take_slots(cap(b)))
    for _ in range(20):
        await asyncio.sleep(0.002)
        await clock.advance(0.05)
    assert not blocked.done()  # three calls in the cluster: the fourth waits (on node b)
    await a.release(cap(a))
    await _run(clock, blocked)
    assert await b_budgets.nodes_holding() == ["node-a", "node-b"]
    # node-a dies holding one slot: a survivor frees it, and b may hold all three
    assert await b_budgets.forget_node("node-a") == 1
    await _run(clock, b.take_slots(cap(b)))
    assert b.limiters["trunk:carrier"].in_use == 3
    assert await b_budgets.nodes_holding() == ["node-b"]
    assert not await b.try_take_slots([b.limiter("trunk:carrier", None, 3)])


async def test_no_dial_while_the_shared_store_is_unreachable() -> None:
    """Redis away: the pacer waits (and says so in the log), it does not dial on a guess."""
    clock = FakeClock()
    gone = Redis.from_url(f"redis://127.0.0.1:{free_port()}/0", socket_connect_timeout=0.2)
    p = Pacer(clock, RedisBudgets(gone, "node-a"))
    take = asyncio.ensure_future(p.take_slots([p.limiter("campaign:x", None, 2)]))
    turn = asyncio.ensure_future(p.wait_turn([p.limiter("campaign:y", 5.0, None)]))
    for _ in range(10):
        await asyncio.sleep(0.05)
        await clock.advance(1.0)
    assert not take.done() and not turn.done()
    take.cancel()
    turn.cancel()
    await asyncio.gather(take, turn, return_exceptions=True)


@pytest.mark.postgres
async def test_two_nodes_on_one_list_dial_every_contact_once_and_skip_none(
        tmp_path: Path, redis_url: str, postgres_url: str) -> None:
    """Two nodes read the same due contacts and each prepares several at once. Both used to
    prepare the same contact: each took a slot and a turn of the shared rate for it (half the
    cluster's budget spent on claims that then failed), and with a cap of one call per number
    a day the second node's check met the first node's reservation and skipped the contact
    the first was about to dial, which was then never dialled. A contact is now leased to one
    node while it is prepared."""
    redis = await _fresh(redis_url)
    numbers = [f"+86138001380{i:02d}" for i in range(16)]
    with fresh_pg_database(postgres_url) as db_url:
        rig = Rig(tmp_path, cap_rules=[CapRule("marketing", 1, "day")],
                  script=lambda n, k: Answer("no_answer", ring_s=0.5), db_url=db_url)
        rig.runner = rig.make_runner("node-a", RedisBudgets(redis, "node-a"))
        rig.others = [rig.make_runner("node-b", RedisBudgets(redis, "node-b"))]
        rig.create(numbers, spec(purpose="marketing", retry={"max_attempts": 1, "on": {}},
                                 pacing={"calls_per_s": 4, "max_concurrent": 4}))
        runners = [rig.runner, *rig.others]
        for r in runners:
            await r.start()
        try:
            await rig.run_until(lambda: rig.state() == "finished", step_s=0.05, limit_s=120)
        finally:
            for r in runners:
                await r.stop()
        contacts = list(rig.store.contacts("spring"))
        by_node = {a.node for a in rig.store.attempts("spring")}
        rig.db.engine.dispose()
    assert [c.number for c in contacts if c.state != "done"] == []
    assert sorted(p.target for p in rig.dialler.placed) == sorted(
        f"sip:{n}@127.0.0.1:5099" for n in numbers)
    assert by_node == {"node-a", "node-b"}
    # every turn of the rate went to a call: 16 dials at 4 a second take 3.75 s, not twice
    starts = sorted(p.now for p in rig.dialler.placed)
    assert starts[-1] - starts[0] < 15 / 4 + 1.0


def test_a_stale_due_list_neither_dials_a_retry_early_nor_skips_it(db_url: str) -> None:
    """Node b read both contacts as due; meanwhile node a dialled them (busy: a retry in
    30 minutes). b's list is stale: its claim must not dial the retry now, and a cap or
    window it then finds (a's call counted) must not skip or defer the contact's retry."""
    store = CampaignStore(open_database(db_url))
    now = MONDAY_10AM
    store.create(spec(), [Contact(n, n, i + 2, {}) for i, n in enumerate(
        ("+8613800138001", "+8613800138002"))], flow_id="campaign_hello", flow_version=1,
        now=now)
    store.set_state("spring", "running", now)
    stale = store.due_contacts("spring", now, 50)
    for contact in stale:
        claim = store.claim("spring", contact.id, node="node-a", caller_id="",
                            trunk="carrier", now=now, attempts=contact.attempts)
        assert claim is not None
        store.finish_attempt(claim.attempt_id, outcome={"disposition": "busy"},
                             disposition="busy", state="done", next_at=now + 1800,
                             reason="busy: again in 30 min", now=now + 2)
    first, second = stale
    assert store.claim("spring", first.id, node="node-b", caller_id="", trunk="carrier",
                       now=now + 5, attempts=first.attempts) is None
    store.skip(second.id, "frequency_cap", "cap reached", now + 5, attempts=second.attempts)
    store.defer(first.id, now + 7200, "outside_window", "closed", now + 5,
                attempts=first.attempts)
    rows = {c.id: c for c in store.contacts("spring")}
    assert all(r.state == "pending" and r.next_at == now + 1800 and r.attempts == 1
               and r.reason_code == "retry" for r in rows.values())
    # when the retry is due, its own claim goes through (once)
    assert store.claim("spring", first.id, node="node-b", caller_id="", trunk="carrier",
                       now=now + 1800, attempts=1) is not None
    assert store.claim("spring", first.id, node="node-a", caller_id="", trunk="carrier",
                       now=now + 1800, attempts=1) is None
    store.db.engine.dispose()


@pytest.mark.postgres
async def test_two_survivors_settle_a_dead_nodes_attempt_once(
        tmp_path: Path, postgres_url: str) -> None:
    """Three nodes on one PostgreSQL database: two survivors race to settle the dead one's
    attempt (each in its own connection and transaction); one of them does it."""
    with fresh_pg_database(postgres_url) as db_url:
        ghost = Rig(tmp_path, node="node-ghost", db_url=db_url)
        ghost.create(["+8613800138001"], spec())
        contact = next(iter(ghost.store.contacts("spring")))
        claim = ghost.store.claim("spring", contact.id, node="node-ghost", caller_id="",
                                  trunk="carrier", now=ghost.clock.wall())
        assert claim is not None
        survivors = [Rig(tmp_path, node=n, db_url=db_url) for n in ("node-a", "node-b")]
        assert ghost.store.dialing_nodes() == ["node-ghost"]
        settled = await asyncio.gather(*(s.runner.settle_node("node-ghost")
                                         for s in survivors))
        row = next(iter(ghost.store.contacts("spring")))
        dialing = ghost.store.dialing_nodes()
        for rig in (ghost, *survivors):
            await rig.runner.stop()
            rig.db.engine.dispose()
    assert sorted(settled) == [0, 1]
    assert row.history == ["interrupted"] and row.state == "done"
    assert dialing == []


async def _turns(clock: FakeClock, n: int = 5) -> None:
    for _ in range(n):
        await asyncio.sleep(0.002)
        await clock.advance(0.05)


async def test_freed_slots_go_to_the_waiting_node_until_the_shares_are_even(
        redis_url: str) -> None:
    """Node b started dialling first and holds every slot of the campaign; node a waits. The
    node whose call ends used to take its slot straight back (its waiter asks Redis right
    after the release, the other node only every SHARED_RETRY_S), so a node that started late
    never dialled at all. Now a freed slot goes to the waiting node holding fewer, until the
    two hold as many."""
    redis = await _fresh(redis_url)
    clock = FakeClock()
    a, b = (Pacer(clock, RedisBudgets(redis, n)) for n in ("node-a", "node-b"))

    def cap(p: Pacer) -> list[Limiter]:
        return [p.limiter("campaign:spring", None, 4)]

    def held() -> tuple[int, int]:
        return (a.limiters["campaign:spring"].in_use, b.limiters["campaign:spring"].in_use)

    await _run(clock, *(b.take_slots(cap(b)) for _ in range(4)))
    waiting = [asyncio.ensure_future(p.take_slots(cap(p))) for p in (a, a, a, b, b, b)]
    await _turns(clock)
    assert held() == (0, 4) and not any(w.done() for w in waiting)
    for expected in ((1, 3), (2, 2), (2, 2)):  # a, a, then b (a no longer holds fewer)
        await b.release(cap(b))
        await _until(clock, held, expected)
        await _turns(clock)
        assert held() == expected
    assert sum(w.done() for w in waiting[:3]) == 2 and sum(w.done() for w in waiting[3:]) == 1
    for w in waiting:
        w.cancel()
    await asyncio.gather(*waiting, return_exceptions=True)


async def _until(clock: FakeClock, probe: Callable[[], object], want: object,
                 limit_s: float = 5.0) -> None:
    start = clock.now()
    while probe() != want:
        assert clock.now() - start < limit_s, "not reached in time"
        await asyncio.sleep(0.002)
        await clock.advance(0.01)


async def test_a_waiter_that_went_away_stops_holding_the_others_back(redis_url: str) -> None:
    """Fairness must not stall: a node that asked for a slot and then stopped asking (its
    campaign paused, it died) stops counting as waiting WANT_FRESH_MS after its last ask."""
    redis = await _fresh(redis_url)
    clock = FakeClock()
    a, b = (Pacer(clock, RedisBudgets(redis, n)) for n in ("node-a", "node-b"))

    def cap(p: Pacer) -> list[Limiter]:
        return [p.limiter("campaign:spring", None, 2)]

    await _run(clock, b.take_slots(cap(b)), b.take_slots(cap(b)))
    gone = asyncio.ensure_future(a.take_slots(cap(a)))
    await _turns(clock)
    gone.cancel()
    await asyncio.gather(gone, return_exceptions=True)
    await b.release(cap(b))
    assert not await b.try_take_slots(cap(b))  # a (none held) asked a moment ago
    await asyncio.sleep(WANT_FRESH_MS / 1000 + 0.1)
    assert await b.try_take_slots(cap(b))
    # a try (a caller ID of the pool: refused, the runner picks another) is no waiter
    await b.release(cap(b))
    assert not await a.try_take_slots([a.limiter("campaign:spring", None, 1)])
    assert await b.try_take_slots(cap(b))


async def test_a_contact_is_leased_to_one_node_and_a_dead_nodes_leases_freed(
        redis_url: str) -> None:
    redis = await _fresh(redis_url)
    a, b = RedisBudgets(redis, "node-a"), RedisBudgets(redis, "node-b")
    assert await a.lease("spring:1") and await a.lease("spring:2")
    assert not await b.lease("spring:1")
    await b.unlease("spring:2")  # not b's: stays a's
    assert not await b.lease("spring:2")
    await a.unlease("spring:1")
    assert await b.lease("spring:1")
    await b.forget_node("node-a")  # a died holding spring:2
    assert await b.lease("spring:2")
    assert await redis.smembers("ivr:campaign:leases:node-a") == set()
