"""A token bucket: how many things per second, with a burst, on whatever clock is passed in.

Sans-IO: the caller passes ``now`` (from the injected :class:`core.clock.Clock`), so admission
pacing of INVITEs, a tenant's SMS rate and a campaign's dial rate all run the same arithmetic
and test on a fake clock without sleeping.
"""

from __future__ import annotations


class TokenBucket:
    """``rate_per_s`` tokens a second, holding at most ``burst``; full at the start."""

    __slots__ = ("_at", "_tokens", "burst", "rate")

    def __init__(self, rate_per_s: float, burst: float) -> None:
        if rate_per_s <= 0:
            raise ValueError(f"rate: {rate_per_s} per second is not positive")
        if burst < 1:
            raise ValueError(f"burst: {burst} is less than one")
        self.rate = float(rate_per_s)
        self.burst = float(burst)
        self._tokens = self.burst
        self._at: float | None = None

    def level(self, now: float) -> float:
        """Tokens available at ``now`` (refilled since the last call; may be negative after a
        debt taken with :meth:`take_debt`)."""
        if self._at is not None and now > self._at:
            self._tokens = min(self.burst, self._tokens + (now - self._at) * self.rate)
        if self._at is None or now > self._at:
            self._at = now
        return self._tokens

    def try_take(self, now: float, n: float = 1.0) -> float:
        """Take ``n`` if they are there and return 0.0; else take nothing and return the
        seconds until they would be (what a 503's Retry-After or a pacing sleep needs)."""
        tokens = self.level(now)
        if tokens >= n:
            self._tokens = tokens - n
            return 0.0
        return (n - tokens) / self.rate

    def take_debt(self, now: float, n: float) -> float:
        """Take ``n`` now even if that goes below zero (a 12-part SMS bigger than the burst);
        returns the seconds the caller should wait first to stay within the rate: the time
        until ``min(n, burst)`` tokens would have been there."""
        tokens = self.level(now)
        need = min(n, self.burst)
        wait = max(0.0, (need - tokens) / self.rate)
        self._tokens = tokens - n
        return wait
