"""What engine nodes share through Redis (``cluster.redis_url``): who is alive, which calls each
carries, the events of every node, and the records of a node that died.

* **Heartbeat.** Each node refreshes ``ivr:node:<id>`` (a TTL key) every ``HEARTBEAT_S``.
* **Live calls.** ``ivr:calls`` maps call id -> node while a call runs (the console lists live
  calls across nodes from it).
* **Events.** Every bus event goes to the Redis stream ``ivr:events`` (capped), tagged with the
  node, so a console on any node sees every node's calls live (``read_events``).
* **Orphans.** A node killed mid-call leaves records ``in_progress`` and campaign attempts
  ``dialing``. It settles its own when it restarts; when it does not come back, the first
  surviving node to see its heartbeat gone for ``ORPHAN_AFTER_S`` settles them: records marked
  ``node_lost`` (so a SIGKILLed node's calls never stay open), attempts ``interrupted`` (the
  campaign's retry policy decides what follows), each once even if two survivors race
  (conditional updates). Every kind of orphan is an :class:`OrphanOwner`.

Without ``cluster.redis_url`` none of this runs: a single node needs none of it.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from core.bus import BusEvent, EventBus
from core.clock import Clock
from core.tasks import TaskScope

log = logging.getLogger("ivr.cluster")

HEARTBEAT_S = 2.0
NODE_TTL_S = 6.0  # three missed heartbeats and a node counts as gone
ORPHAN_AFTER_S = 10.0
JANITOR_S = 5.0
EVENTS_KEY = "ivr:events"
EVENTS_MAXLEN = 100_000
CALLS_KEY = "ivr:calls"
SKIP_IN_STREAM = ("trace", "media", "variables")  # bulky or private: records carry them


def node_key(node: str) -> str:
    return f"ivr:node:{node}"


@dataclass(frozen=True, slots=True)
class OrphanOwner:
    """One kind of work a dead node can leave unfinished: ``unfinished_nodes`` names the nodes
    that left some (wrap a blocking database query in :func:`off_loop`); ``settle(node)``
    settles theirs and returns how many."""

    what: str
    unfinished_nodes: Callable[[], Awaitable[list[str]]]
    settle: Callable[[str], Awaitable[int]]


def off_loop(fn: Callable[[], list[str]]) -> Callable[[], Awaitable[list[str]]]:
    """A blocking query run in the default executor, as an OrphanOwner wants it."""

    async def run() -> list[str]:
        return await asyncio.get_running_loop().run_in_executor(None, fn)

    return run


class Cluster:
    """One node's membership. ``unfinished_nodes`` and ``mark_orphans`` are the call records'
    (run in an executor: they block); more owners with :meth:`add_orphan_owner`."""

    def __init__(self, redis: Any, node: str, bus: EventBus, clock: Clock, *,
                 unfinished_nodes: Callable[[], list[str]],
                 mark_orphans: Callable[[str, float], int]) -> None:
        self.redis = redis
        self.node = node
        self.bus = bus
        self.clock = clock

        async def mark_records(dead: str) -> int:
            return await asyncio.get_running_loop().run_in_executor(
                None, mark_orphans, dead, self.clock.wall())

        self._owners = [OrphanOwner("calls marked node_lost", off_loop(unfinished_nodes),
                                    mark_records)]
        self._tasks = TaskScope("cluster")
        self._queue: asyncio.Queue[BusEvent] = asyncio.Queue(maxsize=10_000)
        self._remove: Callable[[], None] | None = None
        self._missing_since: dict[str, float] = {}
        self.events_dropped = 0
        self.orphans_marked = 0

    async def start(self) -> None:
        await self._beat()
        self._remove = self.bus.listen("", self._on_event)
        self._tasks.spawn(self._heartbeat(), "heartbeat")
        self._tasks.spawn(self._ship_events(), "events")
        self._tasks.spawn(self._janitor(), "janitor")

    def add_orphan_owner(self, owner: OrphanOwner) -> None:
        self._owners.append(owner)

    async def stop(self) -> None:
        if self._remove is not None:
            self._remove()
        await self._tasks.close(grace_s=2.0)
        try:
            await self.redis.delete(node_key(self.node))
        except Exception as e:  # Redis gone at shutdown: the TTL ends the key anyway
            log.warning("cluster: could not remove this node's heartbeat: %s", e)

    async def _beat(self) -> None:
        await self.redis.set(node_key(self.node), str(self.clock.wall()),
                             ex=max(1, int(NODE_TTL_S)))

    async def _heartbeat(self) -> None:
        while True:
            await self.clock.sleep(HEARTBEAT_S)
            try:
                await self._beat()
            except Exception as e:  # keep serving calls while Redis is away
                log.warning("cluster heartbeat failed: %s", e)

    # -- events and the live-call registry ---------------------------------------------------

    def _on_event(self, ev: BusEvent) -> None:
        """Bus listener (synchronous, never blocks): queue for the shipping task."""
        try:
            self._queue.put_nowait(ev)
        except asyncio.QueueFull:
            self.events_dropped += 1  # Redis is slow or away: the calls go on

    async def _ship_events(self) -> None:
        while True:
            ev = await self._queue.get()
            data = {k: v for k, v in ev.data.items() if k not in SKIP_IN_STREAM}
            fields = {"topic": ev.topic, "call_id": ev.call_id or "", "node": self.node,
                      "data": json.dumps(data, default=str, ensure_ascii=False)}
            try:
                pipe = self.redis.pipeline(transaction=False)
                pipe.xadd(EVENTS_KEY, fields, maxlen=EVENTS_MAXLEN, approximate=True)
                if ev.topic == "call.started" and ev.call_id:
                    pipe.hset(CALLS_KEY, ev.call_id, self.node)
                elif ev.topic == "call.ended" and ev.call_id:
                    pipe.hdel(CALLS_KEY, ev.call_id)
                await pipe.execute()
            except Exception as e:
                self.events_dropped += 1
                log.debug("cluster: event not shipped: %s", e)

    # -- orphans -------------------------------------------------------------------------------

    async def _janitor(self) -> None:
        while True:
            await self.clock.sleep(JANITOR_S)
            try:
                await self._sweep()
            except Exception as e:  # the janitor must outlive a database or Redis hiccup
                log.warning("cluster janitor: %s", e)

    async def _sweep(self) -> None:
        owners: dict[str, list[OrphanOwner]] = {}
        for owner in self._owners:
            for node in await owner.unfinished_nodes():
                owners.setdefault(node, []).append(owner)
        now = self.clock.now()
        for node, theirs in owners.items():
            if node == self.node or await self.redis.exists(node_key(node)):
                self._missing_since.pop(node, None)
                continue
            since = self._missing_since.setdefault(node, now)
            if now - since < ORPHAN_AFTER_S:
                continue
            for owner in theirs:
                n = await owner.settle(node)
                if n:
                    self.orphans_marked += n
                    log.warning("node %s is gone: %d %s", node, n, owner.what)
            self._missing_since.pop(node, None)
            await self._forget_calls_of(node)

    async def _forget_calls_of(self, node: str) -> None:
        calls = await self.redis.hgetall(CALLS_KEY)
        dead = [k for k, v in calls.items() if _text(v) == node]
        if dead:
            await self.redis.hdel(CALLS_KEY, *dead)


def _text(v: Any) -> str:
    return v.decode() if isinstance(v, bytes) else str(v)


async def live_calls(redis: Any) -> dict[str, str]:
    """Call id -> node, for every call running on any node."""
    return {_text(k): _text(v) for k, v in (await redis.hgetall(CALLS_KEY)).items()}


async def read_events(redis: Any, last_id: str = "$", block_ms: int = 5000,
                      ) -> AsyncIterator[tuple[str, BusEvent, str]]:
    """Every node's events as they come: (stream id, event, node). Resume from ``last_id``."""
    while True:
        got = await redis.xread({EVENTS_KEY: last_id}, block=block_ms, count=500)
        for _key, entries in got or []:
            for entry_id, fields in entries:
                last_id = _text(entry_id)
                f = {_text(k): _text(v) for k, v in fields.items()}
                yield last_id, BusEvent(f["topic"], f["call_id"] or None,
                                        json.loads(f["data"])), f["node"]
