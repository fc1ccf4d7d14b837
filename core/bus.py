"""One in-process bus for call events.

The console, metrics and CDR writers subscribe here instead of being called from call code.
Publishing never blocks: each subscriber has a bounded queue and a slow subscriber loses its
oldest events (counted in ``dropped``) rather than stalling the call path.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class BusEvent:
    topic: str  # e.g. "call.started", "call.ended", "flow.node", "latency.turn"
    call_id: str | None
    data: dict[str, Any] = field(default_factory=dict)


class Subscription:
    def __init__(self, bus: EventBus, prefix: str, maxsize: int) -> None:
        self._bus = bus
        self.prefix = prefix
        self.queue: asyncio.Queue[BusEvent] = asyncio.Queue(maxsize)
        self.dropped = 0

    def offer(self, event: BusEvent) -> None:
        if not event.topic.startswith(self.prefix):
            return
        if self.queue.full():
            self.queue.get_nowait()
            self.dropped += 1
        self.queue.put_nowait(event)

    async def __aiter__(self) -> AsyncIterator[BusEvent]:
        while True:
            yield await self.queue.get()

    def close(self) -> None:
        self._bus._subs.discard(self)


class EventBus:
    def __init__(self) -> None:
        self._subs: set[Subscription] = set()

    def publish(self, topic: str, call_id: str | None = None, **data: Any) -> None:
        event = BusEvent(topic, call_id, data)
        for sub in tuple(self._subs):
            sub.offer(event)

    def subscribe(self, prefix: str = "", maxsize: int = 1000) -> Subscription:
        sub = Subscription(self, prefix, maxsize)
        self._subs.add(sub)
        return sub
