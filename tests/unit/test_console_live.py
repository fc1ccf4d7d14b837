"""The live-event hub: tenant tagging (early events of an inbound call wait for its tenant),
fan-out filtered by tenant and call, a slow viewer dropped without slowing anyone, and replay
from Last-Event-ID."""

from __future__ import annotations

import asyncio

from console.live import EventHub, Viewer
from core.bus import EventBus
from storage.tenancy import Tenants


def inbound_call(bus: EventBus, call_id: str, tenant: str | None) -> None:
    bus.publish("call.invite", call_id, direction="inbound", caller="1", callee="2", at=1.0)
    bus.publish("call.answered", call_id, at=1.5, codec="PCMU", direction="inbound")
    if tenant is not None:
        bus.publish("flow.start", call_id, tenant=tenant, flow_id="f", flow_version=1)
        bus.publish("flow.node", call_id, node_id="start", outcome="next")
    bus.publish("call.ended", call_id, disposition="answered", at=2.0)


def drain(v: Viewer) -> list[tuple[str, str | None, str]]:
    return [(ev.topic, ev.call_id, ev.tenant) for ev in v.take(10_000)]


async def test_early_events_wait_for_the_tenant_and_arrive_in_order() -> None:
    bus = EventBus()
    hub = EventHub(bus)
    acme = hub.join(Tenants.one("acme"))
    globex = hub.join(Tenants.one("globex"))
    staff = hub.join(Tenants.every())
    # feed the hub directly, in publish order (what its task does)
    events = []
    bus.listen("", events.append)
    inbound_call(bus, "a1", "acme")
    inbound_call(bus, "g1", "globex")
    inbound_call(bus, "x1", None)  # rejected before any flow: the default tenant's
    for ev in events:
        hub.handle(ev)
    topics = ["call.invite", "call.answered", "flow.start", "flow.node", "call.ended"]
    assert drain(acme) == [(t, "a1", "acme") for t in topics]
    assert drain(globex) == [(t, "g1", "globex") for t in topics]
    assert [(t, c) for t, c, _ in drain(staff)] == (
        [(t, "a1") for t in topics] + [(t, "g1") for t in topics]
        + [("call.invite", "x1"), ("call.answered", "x1"), ("call.ended", "x1")])


async def test_a_slow_viewer_is_dropped_and_the_others_keep_everything() -> None:
    bus = EventBus()
    hub = EventHub(bus, viewer_queue=10)
    hub.start()
    slow = hub.join(Tenants.every())
    fast = hub.join(Tenants.every())
    got: list[int] = []

    async def consume() -> None:
        while True:
            await fast.wake.wait()
            got.extend(ev.seq for ev in fast.take(5))

    reader = asyncio.ensure_future(consume())
    for i in range(50):
        bus.publish("call.invite", f"c{i}", tenant="acme", at=1.0)
        await asyncio.sleep(0)
    await asyncio.sleep(0.05)
    reader.cancel()
    await hub.stop()
    assert slow.closed == "slow_consumer" and not slow.backlog  # dropped, backlog released
    assert len(got) == 50 and got == sorted(got)


async def test_reconnecting_with_last_event_id_replays_what_was_missed() -> None:
    bus = EventBus()
    hub = EventHub(bus)
    events = []
    bus.listen("", events.append)
    for i in range(5):
        bus.publish("call.invite", f"c{i}", tenant="acme" if i % 2 else "globex", at=1.0)
    for ev in events:
        hub.handle(ev)
    back = hub.join(Tenants.one("acme"), last_event_id=2)
    assert [e.call_id for e in back.take(10)] == ["c3"]
    only_one = hub.join(Tenants.every(), call_id="c4", last_event_id=0)
    assert len(only_one.backlog) == 1


async def test_topics_filter_what_a_viewer_gets() -> None:
    bus = EventBus()
    hub = EventHub(bus)
    v = hub.join(Tenants.every(), topics=["flow.node"])
    events = []
    bus.listen("", events.append)
    inbound_call(bus, "a1", "acme")
    for ev in events:
        hub.handle(ev)
    assert [t for t, _, _ in drain(v)] == ["flow.node"]
