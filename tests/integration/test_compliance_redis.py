"""Redis-backed lists and caps against a real redis-server: two services stand for two engine
nodes and must see the same lists and share the same cap counters."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from redis.asyncio import Redis

from compliance.caps import CapRule
from compliance.listio import import_table
from compliance.lists import ListEntry, ListKind, ListReason, Scope
from compliance.redis_store import RedisCapCounter, RedisListStore
from compliance.service import ComplianceService

pytestmark = pytest.mark.redis
MON_10 = datetime(2026, 11, 30, 10, 0, tzinfo=ZoneInfo("Asia/Shanghai"))
N = "+8613800138000"


@pytest.fixture
async def redis(redis_url: str) -> AsyncIterator[Redis]:
    r = Redis.from_url(redis_url)
    await r.flushdb()
    yield r
    await r.aclose()


def node(r: Redis, rules: list[CapRule] | None = None) -> ComplianceService:
    return ComplianceService(RedisListStore(r), RedisCapCounter(r), cap_rules=rules or [])


async def test_lists_shared_between_nodes(redis: Redis) -> None:
    a, b = node(redis), node(Redis(connection_pool=redis.connection_pool))
    await a.lists.add([
        ListEntry(ListKind.BLACK, N, scope=Scope("acme"), reason=ListReason.COMPLAINT,
                  source="ops"),
        ListEntry(ListKind.BLACK, "86139", is_prefix=True, reason=ListReason.REGULATOR),
        ListEntry(ListKind.WHITE, "+8613700000000", scope=Scope("acme"), reason=ListReason.VIP),
        ListEntry(ListKind.BLACK, "+8613600000000", expires=MON_10 - timedelta(seconds=1)),
    ])
    d = await b.check("138 0013 8000", "marketing", "acme", "c1", MON_10)
    assert not d.allowed and d.reasons[0].entry is not None
    assert d.reasons[0].entry.source == "ops"
    assert (await b.check(N, "marketing", "other", None, MON_10)).allowed
    assert [r.code for r in (await b.check("13900000001", "x", "t", None, MON_10)).reasons] == [
        "blacklisted"]
    assert await b.is_vip("13700000000", "acme", MON_10)
    assert (await b.check("13600000000", "x", "t", None, MON_10)).allowed  # expired
    exported = [e async for e in b.lists.export()]
    assert len(exported) == 4
    assert await b.lists.remove(ListKind.BLACK, Scope("acme"), N, False)
    assert (await a.check(N, "marketing", "acme", "c1", MON_10)).allowed


async def test_opt_out_on_one_node_blocks_on_the_other(redis: Redis) -> None:
    a, b = node(redis), node(redis)
    await a.opt_out(N, "acme", "c1", source="call:7")
    d = await b.check(N, "marketing", "acme", "c2", MON_10)
    assert d.reasons[0].code == "blacklisted" and d.reasons[0].entry is not None
    assert d.reasons[0].entry.reason is ListReason.OPT_OUT


async def test_caps_atomic_across_nodes(redis: Redis) -> None:
    rules = [CapRule("marketing", 1, "day"), CapRule("marketing", 3, "week")]
    nodes = [node(redis, rules), node(Redis(connection_pool=redis.connection_pool), rules)]
    results = await asyncio.gather(*[nodes[i % 2].check(N, "marketing", "acme", f"c{i}", MON_10,
                                                        count=True) for i in range(20)])
    assert sum(d.allowed for d in results) == 1
    denied = next(d for d in results if not d.allowed)
    assert denied.reasons[0].code == "frequency_cap"
    keys = [k async for k in redis.scan_iter(match="ivr:compliance:cap:*")]
    assert len(keys) == 2
    for k in keys:
        ttl = await redis.ttl(k)
        assert 0 < ttl <= 8 * 86_400 + 86_400
    assert (await nodes[1].check(N, "marketing", "acme", "c1", MON_10 + timedelta(days=1),
                                 count=True)).allowed


async def test_csv_import_into_redis_with_bad_rows(redis: Redis) -> None:
    store = RedisListStore(redis)
    lines = ["number,list,reason\n"] + [f"1380013{i:04d},black,complaint\n" for i in range(500)]
    lines.insert(10, "bogus,black,complaint\n")
    report = await import_table(store, "".join(lines).encode(),
                                default=ListEntry(ListKind.BLACK, ""))
    assert report.imported == 500 and [e.line for e in report.errors] == [11]
    hits = await store.match(ListKind.BLACK, "+8613800130499", [Scope()], MON_10)
    assert hits[0].reason is ListReason.COMPLAINT


async def test_unique_key_space(redis: Redis) -> None:
    """Nothing outside ivr:compliance:* is written (other areas share the Redis)."""
    svc = node(redis, [CapRule("*", 5, "day")])
    await svc.opt_out(N, f"t-{uuid.uuid4().hex[:6]}")
    await svc.check(N, "survey", "t", None, MON_10, count=True)
    keys = [k.decode() async for k in redis.scan_iter()]
    assert keys and all(k.startswith("ivr:compliance:") for k in keys)


async def test_redis_store_scopes_prefixes_expiry(redis: Redis) -> None:
    """The lookups every store must give (tests/unit/test_compliance_lists.py), on Redis."""
    from tests.unit.test_compliance_lists import scopes_prefixes_expiry

    await scopes_prefixes_expiry(RedisListStore(redis))


async def test_a_released_reservation_is_given_back_once(redis: Redis) -> None:
    """An attempt counted but not placed gives its count back on the shared counter; giving
    back twice (or more than was taken) never goes below zero or frees another's count."""
    rules = [CapRule("marketing", 1, "day")]
    a, b = node(redis, rules), node(redis, rules)
    first = await a.check(N, "marketing", "acme", "c1", MON_10, count=True)
    assert first.allowed and first.reserved
    assert not (await b.check(N, "marketing", "acme", "c2", MON_10, count=True)).allowed
    await a.release(first)
    await a.release(first)  # the decision forgets what it gave back
    again = await b.check(N, "marketing", "acme", "c2", MON_10, count=True)
    assert again.allowed
    assert not (await a.check(N, "marketing", "acme", "c1", MON_10, count=True)).allowed
    (key,) = [k async for k in redis.scan_iter(match="ivr:compliance:cap:*")]
    assert int(await redis.get(key)) == 1 and await redis.ttl(key) > 0
