"""The dashboard against a real engine and a real SIPp caller on loopback: while the call waits
in a menu, acme's live count shows it and globex's does not; after it ends, acme's statistics
count one answered call whose flow completed at its hang-up node, and the live count is back to
zero. Prompts are tones (ToneSpeech): the test is about counting, not voices."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from app.config import load_settings
from app.engine import Engine
from storage.tenancy import Tenants
from tests.console_harness import running_console
from tests.integration.engine_harness import ToneSpeech
from tests.integration.test_console_sipp import FIXTURES, engine_env
from tests.netutil import free_port, wait_until
from tests.sipp import run_sipp_async

pytestmark = [pytest.mark.sipp, pytest.mark.xdist_group("sipp")]

FLOW: dict[str, Any] = {"id": "acme_main", "name": "Acme main", "nodes": [
    {"id": "start", "type": "start"},
    {"id": "menu", "type": "menu", "params": {
        "prompt": {"text": "Press 1."}, "options": [{"port": "one", "digits": ["1"]}],
        "timeout_s": 3, "max_retries": 0}},
    {"id": "bye", "type": "hangup", "params": {"prompt": {"text": "Goodbye."}}}],
    "edges": [{"from": "start", "port": "next", "to": "menu"},
              {"from": "menu", "port": "one", "to": "bye"},
              {"from": "menu", "port": "no_input", "to": "bye"},
              {"from": "menu", "port": "no_match", "to": "bye"}]}


async def test_live_calls_and_statistics_of_a_real_sipp_call(tmp_path: Path) -> None:
    settings = load_settings(environ=engine_env(tmp_path))
    engine = Engine(settings, speech=ToneSpeech())  # type: ignore[arg-type]
    await engine.start()
    try:
        async with running_console(tmp_path, settings=settings, bus=engine.bus) as con:
            con.add_user("cleo", "client", "acme")
            con.add_user("gina", "client", "globex")
            con.add_user("olga", "ops")
            async with await con.client("cleo") as c, await con.client("gina") as g, \
                    await con.client("olga") as o:
                assert (await c.call("POST", "/api/flows", json_body={"document": FLOW}))[0] \
                    == 201
                assert (await c.call("POST", "/api/flows/acme_main/publish",
                                     json_body={}))[0] == 201
                assert (await o.call("PUT", "/api/routes/4001?tenant=acme",
                                     json_body={"flow_id": "acme_main"}))[0] == 200
                host, port = engine.addresses["udp"]
                caller = asyncio.ensure_future(run_sipp_async(
                    f"{host}:{port}", FIXTURES / "uac_wait_bye.xml", local_port=free_port(),
                    workdir=tmp_path, extra=["-s", "4001", "-m", "1"], limit_s=30))
                hub = con.services.hub
                assert hub is not None
                await wait_until(lambda: hub.live.count(Tenants.one("acme"))["answered"] == 1,
                                 timeout_s=10, what="the call live in acme's flow")
                _, live_acme = await c.call("GET", "/api/stats/live")
                _, live_globex = await g.call("GET", "/api/stats/live")
                _, live_all = await o.call("GET", "/api/stats/live", params={"tenant": "*"})
                _, live_flow = await c.call("GET", "/api/stats/live",
                                            params={"flow_id": "other"})
                result = await caller
                await engine.wait_idle()
                await wait_until(lambda: hub.live.count(Tenants.every())["calls"] == 0,
                                 timeout_s=5, what="the call gone from the live count")
                _, after = await c.call("GET", "/api/stats/calls")
                _, theirs = await g.call("GET", "/api/stats/calls")
    finally:
        await engine.stop(drain_s=1.0)
    assert result.successful == 1, result.stdout[-1500:]
    assert live_acme["available"] is True
    assert (live_acme["calls"], live_acme["inbound"], live_acme["answered"]) == (1, 1, 1)
    assert live_globex["calls"] == 0 and live_all["calls"] == 1 and live_flow["calls"] == 0
    t = after["totals"]
    assert (t["calls"], t["inbound"], t["answered"], t["answer_rate"]) == (1, 1, 1, 1.0)
    assert (t["flow_calls"], t["completed"], t["completion_rate"]) == (1, 1, 1.0)
    assert [(e["flow_id"], e["node"], e["status"]) for e in after["exits"]] == [
        ("acme_main", "bye", "hangup")]
    assert after["live"] == {**after["live"], "available": True, "calls": 0}
    assert theirs["totals"]["calls"] == 0 and theirs["exits"] == []
