"""Frequency caps: at most N calls of a purpose per number per day/week/month, per tenant or
across all tenants, counted in the callee's calendar.

Counters are fixed calendar buckets (``2026-11-29``, ``2026-W48``, ``2026-11``) rather than
sliding windows: one integer per key, an expiry that cleans up by itself, and one atomic
check-and-increment over all the keys of a dial attempt (a Lua script in Redis), so two engine
nodes dialling the same number in the same second cannot both get under the cap.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Literal, Protocol

Period = Literal["day", "week", "month"]
CapScope = Literal["tenant", "global"]
TTL_SLACK_S = 86_400  # keep a bucket a day past its end (time zones, clock skew)


@dataclass(frozen=True, slots=True)
class CapRule:
    purpose: str  # "marketing", ... or "*" for every purpose
    limit: int
    period: Period = "day"
    scope: CapScope = "tenant"

    def __post_init__(self) -> None:
        if self.limit < 0:
            raise ValueError(f"limit: {self.limit} is negative")
        if self.period not in ("day", "week", "month"):
            raise ValueError(f"period: {self.period!r} is not day, week or month")
        if self.scope not in ("tenant", "global"):
            raise ValueError(f"scope: {self.scope!r} is not tenant or global")

    def applies(self, purpose: str) -> bool:
        return self.purpose in ("*", purpose)

    def describe(self) -> str:
        where = "for this tenant" if self.scope == "tenant" else "across all tenants"
        return f"{self.limit} {self.purpose} call(s) per {self.period} {where}"


def bucket(period: Period, local: datetime) -> tuple[str, datetime]:
    """The bucket name for ``local`` and the local time the bucket ends."""
    d = local.date()
    if period == "day":
        end = d + timedelta(days=1)
        name = d.isoformat()
    elif period == "week":
        iso = d.isocalendar()
        end = d + timedelta(days=8 - iso.weekday)
        name = f"{iso.year}-W{iso.week:02d}"
    else:
        end = date(d.year + d.month // 12, d.month % 12 + 1, 1)
        name = f"{d.year}-{d.month:02d}"
    return name, datetime(end.year, end.month, end.day, tzinfo=local.tzinfo)


def cap_key(
    rule: CapRule, tenant: str, purpose: str, e164: str, local: datetime
) -> tuple[str, int]:
    """Counter key and its TTL in seconds."""
    name, end = bucket(rule.period, local)
    owner = f"t:{tenant}" if rule.scope == "tenant" else "global"
    ttl = int((end - local).total_seconds()) + TTL_SLACK_S
    return f"{owner}|{rule.purpose}|{rule.period}|{name}|{e164}", ttl


class CapCounter(Protocol):
    async def counts(self, keys: Sequence[str]) -> list[int]: ...

    async def reserve(self, keys: Sequence[str], limits: Sequence[int],
                      ttls: Sequence[int], now: float) -> list[int]:
        """Atomically: if every key is under its limit, add one to each and return [];
        else change nothing and return the indexes of the keys at their limit."""
        ...

    async def release(self, keys: Sequence[str]) -> None:
        """Give back one reservation on each key (never below zero): an attempt was counted
        but never placed (no caller ID left, another node claimed the contact)."""
        ...


class InMemoryCapCounter:
    """Single-process counters; ``now`` (unix seconds) drives expiry so tests need no sleeps."""

    def __init__(self) -> None:
        self._counts: dict[str, tuple[int, float]] = {}
        self._now = 0.0

    def _get(self, key: str) -> int:
        value = self._counts.get(key)
        if value is None or value[1] <= self._now:
            return 0
        return value[0]

    async def counts(self, keys: Sequence[str]) -> list[int]:
        return [self._get(k) for k in keys]

    async def reserve(self, keys: Sequence[str], limits: Sequence[int],
                      ttls: Sequence[int], now: float) -> list[int]:
        self._now = now
        full = [i for i, (k, lim) in enumerate(zip(keys, limits, strict=True))
                if self._get(k) >= lim]
        if full:
            return full
        for k, ttl in zip(keys, ttls, strict=True):
            self._counts[k] = (self._get(k) + 1, now + ttl)
        return []

    async def release(self, keys: Sequence[str]) -> None:
        for k in keys:
            count = self._get(k)
            if count > 0:
                self._counts[k] = (count - 1, self._counts[k][1])
