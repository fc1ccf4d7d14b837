"""Two engine nodes behind Kamailio's dispatcher (the shipped deploy/kamailio/kamailio.cfg):
SIPp calls the public address, calls are split over both nodes, and one node is drained in the
middle of the run without a single call failing: its probes turn 503, Kamailio stops sending
it calls, the calls it already has finish, and an INVITE that reached it while it was leaving is
retried on the other node."""

from __future__ import annotations

import asyncio
from contextlib import AsyncExitStack
from pathlib import Path

import pytest

from core.call import CallHungUp
from engine.sipcall import SipCall
from tests.integration.engine_harness import running_engine
from tests.kamailio import Kamailio
from tests.netutil import free_port, wait_until
from tests.sipp import run_sipp_async

pytestmark = [pytest.mark.sipp, pytest.mark.slow, pytest.mark.xdist_group("sipp")]
FIXTURES = Path(__file__).parent.parent / "fixtures" / "sipp"


def answering(counts: dict[str, int], node: str) -> object:
    async def app(call: SipCall) -> None:
        counts[node] += 1
        try:
            await call.answer()
            await asyncio.sleep(30)  # until the caller hangs up
        except CallHungUp:
            pass

    return lambda _call: app


async def test_calls_split_over_two_nodes_and_a_drain_fails_no_call(tmp_path: Path) -> None:
    counts = {"a": 0, "b": 0}
    async with AsyncExitStack() as stack:
        a = await stack.enter_async_context(
            running_engine(tmp_path / "a", answering(counts, "a"),  # type: ignore[arg-type]
                           IVR_SIP__DRAIN_S="20"))
        b = await stack.enter_async_context(
            running_engine(tmp_path / "b", answering(counts, "b"),  # type: ignore[arg-type]
                           IVR_SIP__DRAIN_S="20"))
        kam = await stack.enter_async_context(
            Kamailio([a.addresses["udp"], b.addresses["udp"]], tmp_path / "kamailio"))
        sipp = asyncio.ensure_future(run_sipp_async(
            kam.address, FIXTURES / "uac_via_proxy.xml", local_port=free_port(),
            workdir=tmp_path, extra=["-m", "60", "-r", "6", "-l", "20", "-d", "1500",
                                     "-s", "100",
                                     # Kamailio's two workers may deliver a 180 after the 200
                                     # (legal; phones ignore it): do not abort the call on it
                                     "-default_behaviors", "pingreply,bye"], limit_s=90))
        await wait_until(lambda: counts["a"] >= 5 and counts["b"] >= 5, 30, "both nodes busy")
        assert a.ua is not None
        a.ua.stop_accepting()  # node a drains (what SIGTERM starts)
        at_drain = dict(counts)
        await wait_until(lambda: counts["b"] >= at_drain["b"] + 15, 30, "b taking the calls")
        res = await sipp
        after = dict(counts)
    assert res.successful == 60 and res.failed == 0, res.stdout[-1500:] + res.errors
    assert at_drain["a"] >= 5 and at_drain["b"] >= 5  # split over both nodes
    assert after["a"] <= at_drain["a"] + 2  # at most what was already on its way to it
    assert after["a"] + after["b"] == 60
