"""Live events for the console: the engine's bus, tagged with each call's tenant, fanned out to
every connected viewer that may see them.

One bus subscription feeds the hub (so publishing a call event costs the call one queue put,
however many people watch); the hub's task tags each event with its tenant and offers it to each
viewer's bounded queue. A viewer whose queue is full is too slow: it is dropped with the close
reason ``slow_consumer`` rather than slowing anyone else, and may reconnect with
``Last-Event-ID`` to replay what it missed from the hub's recent history.

Tenant tagging: an event that carries ``tenant`` (``call.invite`` of outbound calls,
``flow.start``, ``flow.end``) tells the hub the call's tenant. Inbound calls learn theirs when
the flow starts, after ``call.invite`` and ``call.answered``: those early events wait in a small
per-call buffer and are released, in order, once the tenant is known (or at ``call.ended``:
a call that never reached a flow belongs to the default tenant, as its record does).

The hub also keeps the calls in progress (:class:`LiveCalls`, from the same events): the
dashboard's live count per tenant and flow, with no second subscription to the bus.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections import OrderedDict, deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from core.bus import BusEvent, EventBus, Subscription
from core.tasks import TaskScope
from storage.tenancy import DEFAULT_TENANT, Tenants

log = logging.getLogger("ivr.console.live")

HUB_QUEUE = 20_000  # bus events waiting for the hub's task
VIEWER_QUEUE = 1_000  # events waiting for one viewer's connection
REPLAY = 2_000  # recent events kept for Last-Event-ID
PENDING_PER_CALL = 64  # early events of a call whose tenant is not known yet
PENDING_CALLS = 10_000
LIVE_CALLS = 100_000  # calls tracked as live at most (a call whose end never came is forgotten)
PUMP_BATCH = 25  # events handed out before the hub yields (to calls, then to writers)
DRAIN_YIELDS = 50  # loop turns the hub waits, at most, for viewers' backlogs to halve
TOPICS = ("call.", "flow.", "latency.", "campaign.")  # what the console shows


@dataclass(frozen=True, slots=True)
class LiveEvent:
    seq: int
    topic: str
    call_id: str | None
    tenant: str
    data: dict[str, Any]
    _wire: list[bytes] = field(default_factory=list, compare=False, repr=False)

    def sse(self) -> bytes:
        """The Server-Sent Events frame, serialised once however many viewers get it."""
        if not self._wire:
            body = json.dumps({"seq": self.seq, "topic": self.topic, "call_id": self.call_id,
                               "tenant": self.tenant, "data": self.data},
                              ensure_ascii=False, default=str, separators=(",", ":"))
            self._wire.append(f"id: {self.seq}\nevent: {self.topic}\ndata: {body}\n\n".encode())
        return self._wire[0]


@dataclass(slots=True)
class LiveCall:
    """A call the engine carries now, as the dashboard counts it."""

    direction: str
    tenant: str | None  # None until its flow starts (inbound) or the INVITE names it
    flow_id: str | None = None
    answered: bool = False


class LiveCalls:
    """The engine's calls in progress, from the bus events the hub already reads."""

    def __init__(self, limit: int = LIVE_CALLS) -> None:
        self.limit = limit
        self.calls: OrderedDict[str, LiveCall] = OrderedDict()

    def track(self, ev: BusEvent) -> None:
        cid, d = ev.call_id, ev.data
        if cid is None:
            return
        if ev.topic == "call.invite":
            tenant = d.get("tenant")
            self.calls[cid] = LiveCall(str(d.get("direction", "")),
                                       tenant if isinstance(tenant, str) and tenant else None)
            while len(self.calls) > self.limit:
                self.calls.popitem(last=False)
        elif ev.topic == "call.ended":
            self.calls.pop(cid, None)
        elif (call := self.calls.get(cid)) is not None:
            if ev.topic == "call.answered":
                call.answered = True
            elif ev.topic == "flow.start":
                call.tenant = str(d.get("tenant") or call.tenant or DEFAULT_TENANT)
                call.flow_id = d.get("flow_id")

    def count(self, tenants: Tenants, flow_id: str | None = None) -> dict[str, int]:
        """Live calls of ``tenants`` (a call whose tenant is not known yet, an inbound call
        before its flow starts, counts only for every tenant), optionally of one flow."""
        out = {"calls": 0, "inbound": 0, "outbound": 0, "answered": 0}
        for call in self.calls.values():
            if not (tenants.is_every or (call.tenant is not None
                                         and tenants.allows(call.tenant))):
                continue
            if flow_id is not None and call.flow_id != flow_id:
                continue
            out["calls"] += 1
            out["outbound" if call.direction == "outbound" else "inbound"] += 1
            out["answered"] += int(call.answered)
        return out


class Viewer:
    """One connected viewer: what it may see, and its bounded backlog."""

    def __init__(self, tenants: Tenants, topics: tuple[str, ...], call_id: str | None,
                 maxsize: int) -> None:
        self.tenants = tenants
        self.topics = topics
        self.call_id = call_id
        self.maxsize = maxsize
        self.backlog: deque[LiveEvent] = deque()
        self.wake = asyncio.Event()  # set when there is something to write (or to say)
        self.urgent = asyncio.Event()  # set when the backlog is half full: write now
        self.closed: str | None = None  # the reason, once dropped
        self.delivered = 0

    def wants(self, ev: LiveEvent) -> bool:
        if self.call_id is not None and ev.call_id != self.call_id:
            return False
        if not ev.topic.startswith(self.topics):
            return False
        return self.tenants.allows(ev.tenant)

    def offer(self, ev: LiveEvent, *, always: bool = False) -> None:
        if self.closed is not None or not (always or self.wants(ev)):
            return
        if len(self.backlog) >= self.maxsize:
            self.close("slow_consumer")  # the writer says why before its next event
            return
        self.backlog.append(ev)
        self.wake.set()
        if len(self.backlog) > self.maxsize // 2:
            self.urgent.set()

    def take(self, most: int) -> list[LiveEvent]:
        """Up to ``most`` waiting events, oldest first."""
        out = [self.backlog.popleft() for _ in range(min(most, len(self.backlog)))]
        if not self.backlog:
            self.wake.clear()
        if len(self.backlog) <= self.maxsize // 2:
            self.urgent.clear()
        return out

    def close(self, reason: str) -> None:
        """End the stream from the server's side (the writer wakes and says why)."""
        if self.closed is None:
            self.closed = reason
        self.backlog.clear()
        self.wake.set()
        self.urgent.set()


class EventHub:
    def __init__(self, bus: EventBus, *, viewer_queue: int = VIEWER_QUEUE,
                 hub_queue: int = HUB_QUEUE, replay: int = REPLAY) -> None:
        self.bus = bus
        self.viewer_queue = viewer_queue
        self.hub_queue = hub_queue
        self._viewers: set[Viewer] = set()
        self._recent: deque[LiveEvent] = deque(maxlen=replay)
        self._tenant_of: dict[str, str] = {}
        self._pending: OrderedDict[str, list[BusEvent]] = OrderedDict()
        self._seq = 0
        self._sub: Subscription | None = None
        self._lost_seen = 0
        self._tasks = TaskScope("console-live")
        self.live = LiveCalls()
        self.dropped_viewers = 0
        self.longest_slice_ms = 0.0  # the longest the hub held the loop without yielding
        self.handled = 0

    @property
    def viewers(self) -> int:
        return len(self._viewers)

    def start(self) -> None:
        self._sub = self.bus.subscribe("", maxsize=self.hub_queue)
        self._tasks.spawn(self._pump(self._sub), "console-live-hub")

    async def stop(self) -> None:
        await self._tasks.close(grace_s=1.0)
        if self._sub is not None:
            self._sub.close()
        for v in list(self._viewers):
            v.close("server_stopping")
        self._viewers.clear()

    def join(self, tenants: Tenants, topics: Iterable[str] | None = None,
             call_id: str | None = None, last_event_id: int | None = None) -> Viewer:
        wanted = tuple(t for t in (topics or TOPICS) if t.startswith(TOPICS) or
                       any(p.startswith(t) for p in TOPICS)) or TOPICS
        viewer = Viewer(tenants, wanted, call_id, self.viewer_queue)
        if last_event_id is not None:
            for ev in self._recent:
                if ev.seq > last_event_id:
                    viewer.offer(ev)
        self._viewers.add(viewer)
        return viewer

    def leave(self, viewer: Viewer) -> None:
        self._viewers.discard(viewer)
        if viewer.closed == "slow_consumer":
            self.dropped_viewers += 1

    async def _pump(self, sub: Subscription) -> None:
        started: float | None = None  # when the current slice of fan-out began
        async for ev in sub:
            if started is None:
                started = time.perf_counter()
            if sub.dropped != self._lost_seen:  # the loop itself fell behind the bus
                lost, self._lost_seen = sub.dropped - self._lost_seen, sub.dropped
                self._emit("stream.lost", None, "", {"events": lost}, everyone=True)
            self.handle(ev)
            self.handled += 1
            if self.handled % PUMP_BATCH == 0 or sub.queue.empty():
                # measured, not timed: how long this slice of fan-out held the loop
                held = (time.perf_counter() - started) * 1000
                self.longest_slice_ms = max(self.longest_slice_ms, held)
                started = None
                if self.handled % PUMP_BATCH == 0:
                    await self._let_writers_drain()

    async def _let_writers_drain(self) -> None:
        """Yield after each small batch: a burst of events is handed out in slices of about a
        millisecond, so the media tick never waits long behind the fan-out. While a viewer's
        backlog is over half full, give the writers more turns before handing out more (a
        viewer that keeps up is never dropped for a burst; the bus side queues meanwhile,
        the call path only appends). A viewer still half full after that is not keeping up."""
        for _ in range(DRAIN_YIELDS):
            await asyncio.sleep(0)
            if all(len(v.backlog) <= v.maxsize // 2 for v in self._viewers
                   if v.closed is None):
                return

    def handle(self, ev: BusEvent) -> None:
        """Tag one bus event with its tenant and deliver it (or hold it until known)."""
        if not ev.topic.startswith(TOPICS):
            return
        self.live.track(ev)
        cid = ev.call_id
        tenant = ev.data.get("tenant")
        if cid is None:
            self._emit(ev.topic, None, str(tenant or ""), ev.data)
            return
        if isinstance(tenant, str) and tenant and cid not in self._tenant_of:
            self._tenant_of[cid] = tenant
            for early in self._pending.pop(cid, []):
                self._emit(early.topic, cid, tenant, early.data)
        known = self._tenant_of.get(cid)
        if known is None:
            if ev.topic != "call.ended":
                self._hold(ev)
                return
            known = DEFAULT_TENANT  # never reached a flow: the default tenant's, like its CDR
            for early in self._pending.pop(cid, []):
                self._emit(early.topic, cid, known, early.data)
        self._emit(ev.topic, cid, known, ev.data)
        if ev.topic == "call.ended":
            self._tenant_of.pop(cid, None)

    def _hold(self, ev: BusEvent) -> None:
        assert ev.call_id is not None
        held = self._pending.setdefault(ev.call_id, [])
        if len(held) < PENDING_PER_CALL:
            held.append(ev)
        while len(self._pending) > PENDING_CALLS:  # calls that never end: forget the oldest
            self._pending.popitem(last=False)

    def _emit(self, topic: str, call_id: str | None, tenant: str, data: dict[str, Any],
              everyone: bool = False) -> None:
        self._seq += 1
        ev = LiveEvent(self._seq, topic, call_id, tenant, data)
        self._recent.append(ev)
        for viewer in tuple(self._viewers):
            viewer.offer(ev, always=everyone)
