"""Two engine nodes sharing a real redis-server and one real PostgreSQL database (app/cluster.py),
as a cluster runs: every node's events reach the shared stream, live calls are listed across
nodes, and a node that vanishes (its heartbeat stops) has its unfinished calls marked node_lost
by the survivor. (A node's own restart on the single-box SQLite default: test_node_lost.py.)"""

from __future__ import annotations

import asyncio
import time
from contextlib import AsyncExitStack
from pathlib import Path

import pytest
from redis.asyncio import Redis

from app.cluster import CALLS_KEY, EVENTS_KEY, live_calls, node_key, read_events
from core.call import CallHungUp
from core.clock import FakeClock
from engine.cdr import CallRecord
from engine.sipcall import SipCall
from storage.tenancy import EVERY_TENANT
from tests.conftest import fresh_pg_database
from tests.integration.engine_harness import running_engine, sip_target
from tests.netutil import free_port
from tests.sipp import run_sipp_async

pytestmark = [pytest.mark.redis, pytest.mark.postgres, pytest.mark.sipp,
              pytest.mark.xdist_group("sipp")]


async def _hold(call: SipCall) -> None:
    """Answer and stay until the caller hangs up (at most 30 s)."""
    try:
        await call.answer()
        await asyncio.wait({call.ended}, timeout=30)
    except CallHungUp:
        pass


async def test_events_and_live_calls_are_shared(tmp_path: Path, redis_url: str,
                                               postgres_url: str) -> None:
    redis = Redis.from_url(redis_url)
    await redis.delete(EVENTS_KEY, CALLS_KEY)
    async with AsyncExitStack() as stack:
        db = stack.enter_context(fresh_pg_database(postgres_url))
        a = await stack.enter_async_context(running_engine(
            tmp_path / "a", lambda c: _hold, IVR_STORAGE__URL=db,
            IVR_CLUSTER__REDIS_URL=redis_url, IVR_CLUSTER__NODE_ID="node-a"))
        await stack.enter_async_context(running_engine(
            tmp_path / "b", lambda c: _hold, IVR_STORAGE__URL=db,
            IVR_CLUSTER__REDIS_URL=redis_url, IVR_CLUSTER__NODE_ID="node-b"))
        assert await redis.exists(node_key("node-a")) and await redis.exists(node_key("node-b"))
        sipp = asyncio.ensure_future(run_sipp_async(
            sip_target(a), "uac", local_port=free_port(), workdir=tmp_path,
            extra=["-m", "1", "-d", "3000"], limit_s=30))
        seen: dict[str, str] = {}
        deadline = time.monotonic() + 15
        while not seen and time.monotonic() < deadline:
            seen = await live_calls(redis)
            await asyncio.sleep(0.05)
        res = await sipp
        assert a.records is not None
        await a.wait_idle()
        events = []
        async for _id, ev, node in read_events(redis, "0", block_ms=100):
            events.append((ev.topic, node))
            if ev.topic == "call.ended":
                break
        after = await live_calls(redis)
    await redis.aclose()
    assert res.successful == 1
    assert list(seen.values()) == ["node-a"]  # the call was listed live, on its node
    assert after == {}  # and is gone once it ended
    topics = [t for t, n in events if n == "node-a"]
    assert topics[:2] == ["call.invite", "call.started"] and topics[-1] == "call.ended"


async def test_a_vanished_nodes_calls_are_marked_by_the_survivor(
        tmp_path: Path, redis_url: str, postgres_url: str) -> None:
    """node-ghost wrote an answered call and died (no heartbeat ever again): the survivor's
    janitor marks it node_lost once the node has been gone ORPHAN_AFTER_S (fake clock)."""
    clock = FakeClock()
    async with AsyncExitStack() as stack:
        db = stack.enter_context(fresh_pg_database(postgres_url))
        engine = await stack.enter_async_context(running_engine(
            tmp_path, lambda c: _hold, clock=clock, IVR_STORAGE__URL=db,
            IVR_CLUSTER__REDIS_URL=redis_url, IVR_CLUSTER__NODE_ID="survivor"))
        assert engine.records is not None and engine.cluster is not None
        ghost = CallRecord(sip_call_id="g@x", direction="inbound", from_number="1",
                           to_number="2", node="node-ghost", disposition="in_progress",
                           answer_at=clock.wall())
        own = CallRecord(sip_call_id="s@x", direction="inbound", from_number="1",
                         to_number="2", node="survivor", disposition="in_progress")
        engine.records.save_many([ghost, own])
        # janitor rounds (fake time): the first sees the ghost gone, later ones wait it out;
        # each round's queries take real time, so move on only as the janitor keeps up
        deadline = time.monotonic() + 30
        rounds = 0
        while engine.records.get(ghost.id, tenants=EVERY_TENANT).hangup_cause != "node_lost":
            assert time.monotonic() < deadline, "the ghost's call was not marked"
            await clock.advance(5.0)
            rounds += 1
            await asyncio.sleep(0.05)  # the executor thread
        marked = engine.records.get(ghost.id, tenants=EVERY_TENANT)
        still_open = engine.records.get(own.id, tenants=EVERY_TENANT)
    assert marked is not None and marked.disposition == "answered"
    assert rounds >= 3  # not before the ghost had been gone ORPHAN_AFTER_S
    assert still_open is not None and still_open.end_at is None  # its own live calls untouched
