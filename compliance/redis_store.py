"""Redis-backed lists and cap counters, so every engine node sees the same state.

Lists: one hash per (list, scope) for exact numbers and one for prefixes; a lookup is a single
pipelined round trip (HGET for the number, HMGET for its up-to-15 prefixes, per scope). Caps: one
Lua script checks every counter of an attempt and increments them all only if all are under
their limit, which is what makes the cap hold when two nodes dial the same number at once.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime
from typing import Any

from redis.asyncio import Redis

from compliance.lists import ListEntry, ListKind, ListReason, Scope

PREFIX = "ivr:compliance"
PIPELINE_CHUNK = 10_000

RESERVE_LUA = """
local n = #KEYS
local full = {}
for i = 1, n do
  local c = tonumber(redis.call('GET', KEYS[i]) or '0')
  if c >= tonumber(ARGV[i]) then full[#full + 1] = i - 1 end
end
if #full > 0 then return full end
for i = 1, n do
  redis.call('INCR', KEYS[i])
  redis.call('EXPIRE', KEYS[i], tonumber(ARGV[n + i]))
end
return {}
"""

RELEASE_LUA = """
for i = 1, #KEYS do
  local c = tonumber(redis.call('GET', KEYS[i]) or '0')
  if c > 0 then redis.call('DECR', KEYS[i]) end
end
return 0
"""


def _hash(kind: ListKind, scope: Scope, prefixes: bool) -> str:
    return f"{PREFIX}:list:{kind.value}:{scope.key}:{'p' if prefixes else 'n'}"


def _encode(e: ListEntry) -> str:
    return json.dumps({"r": e.reason.value, "s": e.source,
                       "x": int(e.expires.timestamp()) if e.expires else 0, "n": e.note},
                      ensure_ascii=False)


def _decode(kind: ListKind, target: str, is_prefix: bool, scope: Scope, raw: Any) -> ListEntry:
    d = json.loads(raw)
    expires = datetime.fromtimestamp(d["x"], UTC) if d["x"] else None
    return ListEntry(kind, target, is_prefix, scope, ListReason(d["r"]), d["s"], expires,
                     d.get("n", ""))


class RedisListStore:
    def __init__(self, redis: Redis) -> None:
        self._r = redis

    @classmethod
    def from_url(cls, url: str) -> RedisListStore:
        return cls(Redis.from_url(url))

    async def add(self, entries: Sequence[ListEntry]) -> int:
        for i in range(0, len(entries), PIPELINE_CHUNK):
            pipe = self._r.pipeline(transaction=False)
            for e in entries[i : i + PIPELINE_CHUNK]:
                field = e.target if e.is_prefix else e.target.lstrip("+")
                pipe.hset(_hash(e.kind, e.scope, e.is_prefix), field, _encode(e))
            await pipe.execute()
        return len(entries)

    async def remove(self, kind: ListKind, scope: Scope, target: str, is_prefix: bool) -> bool:
        field = target if is_prefix else target.lstrip("+")
        return bool(await self._r.hdel(_hash(kind, scope, is_prefix), field))

    async def match(self, kind: ListKind, e164: str, scopes: Sequence[Scope],
                    at: datetime) -> list[ListEntry]:
        return (await self.match_kinds([kind], e164, scopes, at))[kind]

    async def match_kinds(self, kinds: Sequence[ListKind], e164: str, scopes: Sequence[Scope],
                          at: datetime) -> dict[ListKind, list[ListEntry]]:
        digits = e164.lstrip("+")
        prefixes = [digits[:i] for i in range(1, len(digits) + 1)]
        pipe = self._r.pipeline(transaction=False)
        asked = [(kind, scope) for kind in kinds for scope in scopes]
        for kind, scope in asked:
            pipe.hget(_hash(kind, scope, False), digits)
            pipe.hmget(_hash(kind, scope, True), prefixes)
        replies = await pipe.execute()
        out: dict[ListKind, list[ListEntry]] = {kind: [] for kind in kinds}
        for i, (kind, scope) in enumerate(asked):
            exact, pref = replies[2 * i], replies[2 * i + 1]
            if exact is not None:
                out[kind].append(_decode(kind, e164, False, scope, exact))
            for p, raw in zip(prefixes, pref, strict=True):
                if raw is not None:
                    out[kind].append(_decode(kind, p, True, scope, raw))
        return {kind: [e for e in entries if e.active(at)] for kind, entries in out.items()}

    async def export(self, kind: ListKind | None = None) -> AsyncIterator[ListEntry]:
        pattern = f"{PREFIX}:list:{kind.value if kind else '*'}:*"
        async for key in self._r.scan_iter(match=pattern, count=1000):
            name = key.decode() if isinstance(key, bytes) else key
            _, _, _, kind_s, rest = name.split(":", 4)
            scope_key, _, np_ = rest.rpartition(":")
            scope, k, is_prefix = Scope.from_key(scope_key), ListKind(kind_s), np_ == "p"
            async for field, raw in self._r.hscan_iter(name, count=1000):
                f = field.decode() if isinstance(field, bytes) else field
                yield _decode(k, f if is_prefix else f"+{f}", is_prefix, scope, raw)


class RedisCapCounter:
    def __init__(self, redis: Redis) -> None:
        self._r = redis
        self._script = redis.register_script(RESERVE_LUA)
        self._release = redis.register_script(RELEASE_LUA)

    @classmethod
    def from_url(cls, url: str) -> RedisCapCounter:
        return cls(Redis.from_url(url))

    @staticmethod
    def _key(key: str) -> str:
        return f"{PREFIX}:cap:{key}"

    async def counts(self, keys: Sequence[str]) -> list[int]:
        if not keys:
            return []
        values = await self._r.mget([self._key(k) for k in keys])
        return [int(v) if v is not None else 0 for v in values]

    async def reserve(self, keys: Sequence[str], limits: Sequence[int],
                      ttls: Sequence[int], now: float) -> list[int]:
        """``now`` is unused: Redis expires keys on its own clock."""
        if not keys:
            return []
        full = await self._script(keys=[self._key(k) for k in keys],
                                  args=[*limits, *ttls])
        return [int(i) for i in full]

    async def release(self, keys: Sequence[str]) -> None:
        """One DECR per key that is above zero, in one script (the key keeps its expiry)."""
        if keys:
            await self._release(keys=[self._key(k) for k in keys], args=[])
