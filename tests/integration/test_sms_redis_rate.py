"""The tenant rate in Redis mode: two engine nodes (two limiters on one real redis-server)
share one tenant's parts per second; another tenant is not held up."""

from __future__ import annotations

import pytest
from redis.asyncio import Redis

from core.clock import FakeClock
from notify.limits import RedisTenantRate

pytestmark = [pytest.mark.redis]


async def test_two_nodes_share_one_tenant_rate(redis_url: str, fake_clock: FakeClock) -> None:
    r, r2 = Redis.from_url(redis_url), Redis.from_url(redis_url)
    try:
        await r.flushdb()
        node_a = RedisTenantRate(r, fake_clock, rate_per_s=10)
        node_b = RedisTenantRate(r2, fake_clock, rate_per_s=10)
        assert await node_a.reserve("acme", 6)
        assert await node_b.reserve("acme", 4)
        assert not await node_a.reserve("acme", 1)  # the second is full across both nodes
        assert not await node_b.reserve("acme", 1)
        assert await node_b.reserve("beta", 10)  # tenants do not share
        await fake_clock.advance(1.0)
        assert await node_a.reserve("acme", 3)  # a new second
        assert await node_a.reserve("big", 25)  # bigger than the rate: alone in its second
        assert not await node_b.reserve("big", 1)
    finally:
        await r.aclose()
        await r2.aclose()
