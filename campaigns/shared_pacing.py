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
* **Fair shares of a full budget.** A node whose call ends asks for the freed slot at once
  (its next contact waits on a local condition), while another node only asks again every
  ``pacing.SHARED_RETRY_S``. First come, first served, the node that started dialling first
  kept every slot for the whole campaign and a node that started later never dialled. So a
  node refused for want of room registers as waiting on that budget (a sorted set, node ->
  when it last asked), and a take is refused while another node waiting on the budget holds
  fewer of its calls: the freed slot waits for that node's next ask (at most SHARED_RETRY_S)
  and the shares even out. A waiter counts for WANT_FRESH_MS after it last asked (a node that
  stopped asking, or died, never stalls the others for longer), in Redis's own time (one
  clock for all nodes). A node refused by several budgets at once registers on none of them:
  it could not use the room it would hold back in one.
* **Contacts in hand.** Every node reads the same due contacts in the same order and
  prepares several at once (compliance, caller ID, its turn in the rates) before the
  conditional claim. Without more, two nodes prepared the same contact: each spent a slot and
  a turn of the cluster's rate on it (the loser's claim fails: half the budget gone), and a
  cap of one call a day let the loser's check meet the winner's reservation and *skip* the
  contact the winner was about to dial. So a node leases a contact (``lease``: SET NX with
  LEASE_TTL_MS) before its checks, and another node passes it by until the claim is done.

Times are wall-clock seconds (the nodes' clocks are NTP-synchronised; the rate keys expire).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

KEY_PREFIX = "ivr:pace"
KEYS_SET = f"{KEY_PREFIX}:keys"  # every concurrency hash ever used (for forget_node)
RATE_TTL_MS = 60_000
WANT_FRESH_MS = 1000  # a node waiting for a slot counts as waiting this long after it asked
LEASE_PREFIX = "ivr:campaign:lease"
# Covers a contact's checks and its wait for a turn in the rates; a lease outlives its node by
# at most this (a survivor frees a dead node's leases: forget_node).
LEASE_TTL_MS = 300_000

TAKE_LUA = """
local n = #KEYS / 2
local node = ARGV[1]
local fresh_ms = tonumber(ARGV[n + 2])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local refused = {}
for i = 1, n do
  local want = KEYS[n + i]
  redis.call('ZREMRANGEBYSCORE', want, '-inf', now - fresh_ms)
  local held = redis.call('HGETALL', KEYS[i])
  local total, by = 0, {}
  for j = 1, #held, 2 do
    local v = tonumber(held[j + 1])
    total = total + v
    by[held[j]] = v
  end
  local mine = by[node] or 0
  local ok = total < tonumber(ARGV[i + 1])
  if ok then
    for _, other in ipairs(redis.call('ZRANGE', want, 0, -1)) do
      if other ~= node and (by[other] or 0) < mine then
        ok = false
        break
      end
    end
  end
  if not ok then refused[#refused + 1] = want end
end
if #refused == 1 and ARGV[n + 3] == '1' then
  redis.call('ZADD', refused[1], now, node)
  redis.call('PEXPIRE', refused[1], fresh_ms * 10)
end
if #refused > 0 then return 0 end
for i = 1, n do
  redis.call('HINCRBY', KEYS[i], node, 1)
  redis.call('SADD', ARGV[#ARGV], KEYS[i])
  redis.call('ZREM', KEYS[n + i], node)
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

LEASE_LUA = """
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then
  redis.call('SADD', KEYS[2], KEYS[1])
  redis.call('PEXPIRE', KEYS[2], ARGV[2])
  return 1
end
return 0
"""
UNLEASE_LUA = """
for _, key in ipairs(KEYS) do
  if redis.call('GET', key) == ARGV[1] then redis.call('DEL', key) end
end
redis.call('SREM', ARGV[2], unpack(KEYS))
return 1
"""


class SharedBudgets(Protocol):
    """What the pacer asks of a cluster-wide store of budgets."""

    async def take(self, caps: Sequence[tuple[str, int]], *, wait: bool = True) -> bool:
        """One more call in every (budget, cap) if each has room (all or nothing). ``wait``:
        a refused caller asks again soon, so it counts as waiting for its fair share."""
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
        self._lease = redis.register_script(LEASE_LUA)
        self._unlease = redis.register_script(UNLEASE_LUA)

    @staticmethod
    def _slots(name: str) -> str:
        return f"{KEY_PREFIX}:slots:{name}"

    @staticmethod
    def _want(name: str) -> str:
        return f"{KEY_PREFIX}:want:{name}"

    async def take(self, caps: Sequence[tuple[str, int]], *, wait: bool = True) -> bool:
        if not caps:
            return True
        keys = [self._slots(n) for n, _ in caps] + [self._want(n) for n, _ in caps]
        return bool(await self._take(keys=keys, args=[self.node, *(c for _, c in caps),
                                                      WANT_FRESH_MS, int(wait), KEYS_SET]))

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

    @staticmethod
    def _leases_of(node: str) -> str:
        return f"{LEASE_PREFIX}s:{node}"

    async def lease(self, what: str) -> bool:
        """Hold ``what`` (a contact) for this node unless another node holds it."""
        return bool(await self._lease(keys=[f"{LEASE_PREFIX}:{what}", self._leases_of(self.node)],
                                      args=[self.node, LEASE_TTL_MS]))

    async def unlease(self, what: str) -> None:
        await self._unlease_keys(self.node, [f"{LEASE_PREFIX}:{what}"])

    async def _unlease_keys(self, node: str, keys: Sequence[str]) -> None:
        if keys:
            await self._unlease(keys=list(keys), args=[node, self._leases_of(node)])

    async def nodes_holding(self) -> list[str]:
        """Nodes that hold a slot in some budget (the janitor checks which are gone)."""
        nodes: set[str] = set()
        for key in await self.redis.smembers(KEYS_SET):
            nodes.update(_text(n) for n in await self.redis.hkeys(key))
        return sorted(nodes)

    async def forget_node(self, node: str) -> int:
        """Free every slot and lease ``node`` held (it died, or it is this node restarting);
        returns the slots freed."""
        freed = 0
        for key in await self.redis.smembers(KEYS_SET):
            held = await self.redis.hget(key, node)
            if held is not None:
                freed += max(0, int(held))
                await self.redis.hdel(key, node)
            name = _text(key).removeprefix(f"{KEY_PREFIX}:slots:")
            await self.redis.zrem(self._want(name), node)
        leases = [_text(k) for k in await self.redis.smembers(self._leases_of(node))]
        await self._unlease_keys(node, leases)
        return freed


def _text(v: Any) -> str:
    return v.decode() if isinstance(v, bytes) else str(v)
