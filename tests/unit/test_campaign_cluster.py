"""Campaign pacing shared by the nodes of a cluster (a real redis-server), and the settling of
a dead node's attempts by survivors racing each other (real SQLite)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from pathlib import Path

import pytest
from redis.asyncio import Redis

from campaigns.pacing import Limiter, Pacer
from campaigns.shared_pacing import RedisBudgets
from core.clock import FakeClock
from tests.campaign_fakes import Rig, spec
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


async def test_two_survivors_settle_a_dead_nodes_attempt_once(tmp_path: Path) -> None:
    ghost = Rig(tmp_path, node="node-ghost")
    ghost.create(["+8613800138001"], spec())
    contact = next(iter(ghost.store.contacts("spring")))
    claim = ghost.store.claim("spring", contact.id, node="node-ghost", caller_id="",
                              trunk="carrier", now=ghost.clock.wall())
    assert claim is not None
    survivors = [Rig(tmp_path, node=n) for n in ("node-a", "node-b")]
    assert ghost.store.dialing_nodes() == ["node-ghost"]
    settled = await asyncio.gather(*(s.runner.settle_node("node-ghost") for s in survivors))
    assert sorted(settled) == [0, 1]
    row = next(iter(ghost.store.contacts("spring")))
    assert row.history == ["interrupted"] and row.state == "done"
    assert ghost.store.dialing_nodes() == []
