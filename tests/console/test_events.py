"""The live stream over real HTTP: a viewer that stops reading is dropped (and told why, if it
ever reads again) while a viewer that keeps up gets every event; a burst larger than a viewer's
queue does not drop viewers that keep up."""

from __future__ import annotations

import asyncio
from pathlib import Path

import aiohttp
import pytest

from core.bus import EventBus
from tests.console_harness import read_events, running_console
from tests.netutil import wait_until

pytestmark = pytest.mark.xdist_group("console")


async def test_a_stalled_viewer_is_dropped_and_the_others_get_everything(tmp_path: Path) -> None:
    bus = EventBus()
    async with running_console(tmp_path, bus=bus) as con:
        hub = con.services.hub
        assert hub is not None
        hub.viewer_queue = 200
        con.services.options.events_write_timeout_s = 1.0
        con.add_user("olga", "ops")
        token = con.token("olga")
        async with await con.client() as fast, aiohttp.ClientSession() as stalled_session:
            fast.use_token(token)
            n = 400
            reader = asyncio.ensure_future(read_events(fast, "/api/events", count=n,
                                                       timeout_s=60))
            stalled = await stalled_session.get(  # opened, never read
                con.url + "/api/events", headers={"Authorization": f"Bearer {token}"})
            await wait_until(lambda: hub.viewers == 2, what="both viewers joined")
            blob = "x" * 60_000  # big events: the stalled socket's buffers fill quickly
            for i in range(n):
                bus.publish("call.invite", f"c{i}", tenant="default", note=blob)
                if i % 20 == 0:
                    await asyncio.sleep(0.01)
            got = await reader
            await wait_until(lambda: hub.dropped_viewers == 1, timeout_s=20,
                             what="the stalled viewer dropped")
            stalled.close()
    assert [e["data"]["call_id"] for e in got] == [f"c{i}" for i in range(n)]
    assert hub.viewers == 0


async def test_a_burst_beyond_the_queue_does_not_drop_viewers_that_keep_up(
        tmp_path: Path) -> None:
    bus = EventBus()
    async with running_console(tmp_path, bus=bus) as con:
        hub = con.services.hub
        assert hub is not None
        hub.viewer_queue = 300
        con.add_user("olga", "ops")
        async with await con.client() as c:
            c.use_token(con.token("olga"))
            reader = asyncio.ensure_future(read_events(c, "/api/events", count=3000,
                                                       timeout_s=60))
            await wait_until(lambda: hub.viewers == 1, what="viewer joined")
            for i in range(3000):  # 10 queues' worth, published without a pause
                bus.publish("flow.node", f"c{i % 200}", tenant="default", node_id="n")
            got = await reader
    assert len(got) == 3000 and hub.dropped_viewers == 0
