"""Per-tenant sending rate: a token bucket per tenant on the injected clock.

The per-number limits are the compliance caps (counted atomically, in Redis when the cluster
has it); this is the other kind of limit an SMS platform sets (Alibaba/Tencent: messages per
second per account), so one tenant's big campaign cannot starve another's hang-up messages.
In-process: each engine node enforces its own share.
"""

from __future__ import annotations

from core.clock import Clock


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
