"""Per-tenant sending rate: parts per second per tenant, on the injected clock.

The per-number limits are the compliance caps (counted atomically, in Redis when the cluster
has it); this is the other kind of limit an SMS platform sets (Alibaba/Tencent: messages per
second per account), so one tenant's big campaign cannot starve another's hang-up messages.
:class:`TokenBuckets` holds it in-process (one engine node); :class:`RedisTenantRate` shares
it between every node of a cluster (``compliance.redis_url``).
"""

from __future__ import annotations

import math
from typing import Any, Protocol

from core.clock import Clock

REDIS_PREFIX = "ivr:sms:rate"
# One counter per tenant and second: take n if the second's count stays within the rate, else
# take nothing and say so (atomic, so two nodes cannot both squeeze in).
RATE_LUA = """
local c = tonumber(redis.call('GET', KEYS[1]) or '0')
local n = tonumber(ARGV[1])
if c > 0 and c + n > tonumber(ARGV[2]) then return 0 end
redis.call('INCRBY', KEYS[1], n)
redis.call('EXPIRE', KEYS[1], 5)
return 1
"""


class TenantRate(Protocol):
    async def acquire(self, tenant: str, n: int) -> float:
        """Take ``n`` parts' worth of the tenant's rate, waiting if needed; seconds waited."""
        ...


class TokenBuckets:
    def __init__(self, clock: Clock, rate_per_s: float, burst: int) -> None:
        if rate_per_s <= 0 or burst < 1:
            raise ValueError("tenant_rate_per_s and tenant_burst must be positive")
        self.clock = clock
        self.rate = rate_per_s
        self.burst = float(burst)
        self._state: dict[str, tuple[float, float]] = {}  # tenant -> (tokens, at)

    def _refill(self, tenant: str) -> float:
        now = self.clock.now()
        tokens, at = self._state.get(tenant, (self.burst, now))
        tokens = min(self.burst, tokens + (now - at) * self.rate)
        self._state[tenant] = (tokens, now)
        return tokens

    async def acquire(self, tenant: str, n: int) -> float:
        """Take ``n`` tokens (a message's parts), waiting on the clock if needed; returns the
        seconds waited. More than the burst is allowed to go into debt (a 12-part message)."""
        if n <= 0:
            return 0.0
        waited = 0.0
        tokens = self._refill(tenant)
        need = min(float(n), self.burst)
        if tokens < need:
            waited = (need - tokens) / self.rate
            await self.clock.sleep(waited)
            tokens = self._refill(tenant)
        self._state[tenant] = (tokens - n, self.clock.now())
        return waited


class RedisTenantRate:
    """The tenant rate shared by every engine node: fixed one-second windows in Redis (a
    message bigger than the rate still goes, alone in its second)."""

    def __init__(self, redis: Any, clock: Clock, rate_per_s: float) -> None:
        if rate_per_s <= 0:
            raise ValueError("tenant_rate_per_s must be positive")
        self.redis = redis
        self.clock = clock
        self.rate = rate_per_s
        self._script = redis.register_script(RATE_LUA)

    @classmethod
    def from_url(cls, url: str, clock: Clock, rate_per_s: float) -> RedisTenantRate:
        from redis.asyncio import Redis  # noqa: PLC0415 - optional: only in Redis mode

        return cls(Redis.from_url(url), clock, rate_per_s)

    async def reserve(self, tenant: str, n: int) -> bool:
        """Take ``n`` in the current second if it fits; never waits."""
        second = math.floor(self.clock.wall())
        key = f"{REDIS_PREFIX}:{tenant}:{second}"
        return bool(await self._script(keys=[key], args=[n, self.rate]))

    async def acquire(self, tenant: str, n: int) -> float:
        waited = 0.0
        while n > 0 and not await self.reserve(tenant, n):
            pause = math.floor(self.clock.wall()) + 1 - self.clock.wall()
            await self.clock.sleep(pause)
            waited += pause
        return waited
