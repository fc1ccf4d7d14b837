"""Pacing budgets shared by every engine node of a cluster, in Redis (``cluster.redis_url``).

Without it each node paces on its own, so two nodes dial a campaign of ``calls_per_s: 10`` at
20 calls per second and with twice its ``max_concurrent`` — what a carrier's CPS limit or a
client's agent count does not forgive. With it, the campaign's, the trunk's, the campaign-on-
trunk's and the caller ID's budgets are the cluster's (the engine's own cap stays per node):

* **Rates** (GCRA, like ``Pacer.wait_turn`` but in one place): per budget a key holds the next
  free start time; a dial's start is the latest over its budgets, each then moves on by its own
  interval, atomically in one script, so nodes interleave their dials instead of both taking a
  second's worth.
* **Calls at once**: per budget a hash of node -> calls in progress; a take succeeds only if
  every budget's total is under its cap, and adds one for this node in each, atomically. A node
  that dies holding slots is forgotten by a survivor (``forget_node``, from the cluster's
  janitor) or by itself when it restarts.

Times are wall-clock seconds (the nodes' clocks are NTP-synchronised; the rate keys expire).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

KEY_PREFIX = "ivr:pace"
KEYS_SET = f"{KEY_PREFIX}:keys"  # every concurrency hash ever used (for forget_node)
RATE_TTL_MS = 60_000

TAKE_LUA = """
for i, key in ipairs(KEYS) do
  local total = 0
  for _, v in ipairs(redis.call('HVALS', key)) do total = total + tonumber(v) end
  if total >= tonumber(ARGV[i + 1]) then return 0 end
end
for _, key in ipairs(KEYS) do
  redis.call('HINCRBY', key, ARGV[1], 1)
  redis.call('SADD', ARGV[#ARGV], key)
end
return 1
"""
RELEASE_LUA = """
for _, key in ipairs(KEYS) do
  if redis.call('HINCRBY', key, ARGV[1], -1) <= 0 then redis.call('HDEL', key, ARGV[1]) end
end
return 1
"""
TURN_LUA = """
local start = tonumber(ARGV[1])
for _, key in ipairs(KEYS) do
  local nxt = tonumber(redis.call('GET', key) or '0')
  if nxt > start then start = nxt end
end
for i, key in ipairs(KEYS) do
  redis.call('SET', key, string.format('%.6f', start + tonumber(ARGV[i + 1])), 'PX', ARGV[#ARGV])
end
return string.format('%.6f', start)
"""


class SharedBudgets(Protocol):
    """What the pacer asks of a cluster-wide store of budgets."""

    async def take(self, caps: Sequence[tuple[str, int]]) -> bool:
        """One more call in every (budget, cap) if each has room (all or nothing)."""
        ...

    async def release(self, names: Sequence[str]) -> None: ...

    async def turn(self, intervals: Sequence[tuple[str, float]], now_wall: float) -> float:
        """This dial's start (wall time) in every (budget, seconds between dials)."""
        ...


class RedisBudgets:
    def __init__(self, redis: Any, node: str) -> None:
        self.redis = redis
        self.node = node
        self._take = redis.register_script(TAKE_LUA)
        self._release = redis.register_script(RELEASE_LUA)
        self._turn = redis.register_script(TURN_LUA)

    @staticmethod
    def _slots(name: str) -> str:
        return f"{KEY_PREFIX}:slots:{name}"

    async def take(self, caps: Sequence[tuple[str, int]]) -> bool:
        if not caps:
            return True
        keys = [self._slots(n) for n, _ in caps]
        return bool(await self._take(keys=keys,
                                     args=[self.node, *(c for _, c in caps), KEYS_SET]))

    async def release(self, names: Sequence[str]) -> None:
        if names:
            await self._release(keys=[self._slots(n) for n in names], args=[self.node])

    async def turn(self, intervals: Sequence[tuple[str, float]], now_wall: float) -> float:
        if not intervals:
            return now_wall
        keys = [f"{KEY_PREFIX}:next:{n}" for n, _ in intervals]
        got = await self._turn(keys=keys, args=[repr(now_wall), *(repr(s) for _, s in intervals),
                                                RATE_TTL_MS])
        return float(got.decode() if isinstance(got, bytes) else got)

    async def nodes_holding(self) -> list[str]:
        """Nodes that hold a slot in some budget (the janitor checks which are gone)."""
        nodes: set[str] = set()
        for key in await self.redis.smembers(KEYS_SET):
            nodes.update(_text(n) for n in await self.redis.hkeys(key))
        return sorted(nodes)

    async def forget_node(self, node: str) -> int:
        """Free every slot ``node`` held (it died, or it is this node restarting)."""
        freed = 0
        for key in await self.redis.smembers(KEYS_SET):
            held = await self.redis.hget(key, node)
            if held is not None:
                freed += max(0, int(held))
                await self.redis.hdel(key, node)
        return freed


def _text(v: Any) -> str:
    return v.decode() if isinstance(v, bytes) else str(v)
