"""One in-process bus for call events.

The console, metrics and the call-record builder subscribe here instead of being called from call
code. Publishing never blocks. Two kinds of consumer:

* a :class:`Subscription` (an async iterator) has a bounded queue; a slow subscriber loses its
  oldest events (counted in ``dropped``) rather than stalling the call path: live views, metrics;
* a listener (:meth:`EventBus.listen`) is called synchronously for every event, in publish order,
  and must be cheap and never raise or block: what must not miss an event, such as the record of
  a call.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

log = logging.getLogger("ivr.bus")


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


Listener = Callable[[BusEvent], None]


class EventBus:
    def __init__(self) -> None:
        self._subs: set[Subscription] = set()
        self._listeners: list[tuple[str, Listener]] = []

    def publish(self, topic: str, call_id: str | None = None, **data: Any) -> None:
        event = BusEvent(topic, call_id, data)
        for prefix, listener in self._listeners:
            if topic.startswith(prefix):
                try:
                    listener(event)
                except Exception:  # a listener bug must not break the publisher (a call)
                    log.exception("bus listener for %r failed on %s", prefix, topic)
        for sub in tuple(self._subs):
            sub.offer(event)

    def listen(self, prefix: str, listener: Listener) -> Callable[[], None]:
        """Call ``listener`` for every event whose topic starts with ``prefix``; returns a
        function that removes it."""
        entry = (prefix, listener)
        self._listeners.append(entry)

        def remove() -> None:
            if entry in self._listeners:
                self._listeners.remove(entry)

        return remove

    def subscribe(self, prefix: str = "", maxsize: int = 1000) -> Subscription:
        sub = Subscription(self, prefix, maxsize)
        self._subs.add(sub)
        return sub
