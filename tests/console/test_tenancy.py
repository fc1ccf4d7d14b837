"""Cross-tenant access is refused for every resource: read, list, update, delete and the event
stream. Tenant ``globex`` owns one of everything; a client user of tenant ``acme`` tries to
reach each of them, by id, by listing, by naming ``globex`` outright, and by watching events;
afterwards globex's data is checked to be untouched."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from console.roles import Principal
from console.services.base import Actor
from core.bus import EventBus
from engine.cdr import CallRecord
from flows.validator import CompiledFlow
from speaker_id.store import Voiceprint
from tests.console_harness import read_events, running_console

pytestmark = pytest.mark.xdist_group("console")

FLOW = {"id": "gx", "name": "Globex main", "nodes": [
    {"id": "start", "type": "start"},
    {"id": "menu", "type": "menu", "params": {"prompt": {"text": "Press 1."}, "options": [
        {"port": "one", "digits": ["1"]}]}},
    {"id": "bye", "type": "hangup", "params": {"prompt": {"text": "Goodbye."}}}],
    "edges": [{"from": "start", "port": "next", "to": "menu"},
              {"from": "menu", "port": "one", "to": "bye"},
              {"from": "menu", "port": "no_input", "to": "bye"},
              {"from": "menu", "port": "no_match", "to": "bye"}]}
SUITE = {"cases": [{"name": "c", "steps": [{"send_dtmf": "1"}, {"expect_end": "hangup"}]}]}


class NoSipPlacer:
    """No SIP here: this test is about who may see a test call, not about placing one (the
    SIPp test places real ones). The call 'rings' until the test ends."""

    async def place(self, target: str, flow: CompiledFlow, **_: Any) -> dict[str, Any]:
        await asyncio.Event().wait()
        return {}


async def test_a_client_cannot_reach_another_tenants_anything(tmp_path: Path) -> None:
    bus = EventBus()
    async with running_console(tmp_path, bus=bus, placer=NoSipPlacer()) as con:
        svc = con.services
        con.add_user("c-acme", "client", "acme")
        con.add_user("c-globex", "client", "globex")
        actor = Actor(Principal.cli("setup"))
        # --- globex's things ---
        svc.flows.save_draft(actor, "globex", "gx", FLOW, None)
        svc.flows.publish(actor, "globex", "gx")
        svc.flows.save_tests(actor, "globex", "gx", SUITE, None)
        svc.flows.set_route(actor, "globex", "7000", "gx")
        rec_dir = Path(con.settings.storage.recordings_dir)
        rec_dir.mkdir(parents=True, exist_ok=True)  # noqa: ASYNC240 - test setup
        (rec_dir / "g.wav").write_bytes(b"RIFF0000WAVE")
        call = CallRecord("sip-g", "inbound", "+8613800000001", "7000", tenant="globex",
                          disposition="answered", recording_path=str(rec_dir / "g.wav"))
        svc.calls.save_many([call])
        assert svc.words is not None and svc.lists is not None and svc.voiceprints is not None
        from compliance.lists import ListKind
        from console.services.compliance import ListSpec, make_term

        svc.words.add(actor, [make_term("globexsecret", tenant="globex")])
        await svc.lists.add(actor, ListSpec("+8613911112222", ListKind.BLACK, "globex"))
        svc.voiceprints.service.store.save(
            "globex", "p1", Voiceprint(np.ones(8, np.float32), "x", 1, 3.0, None),
            consent_method="test", consent_text="ok", actor="test", now=1.0)
        async with await con.client("c-globex") as g:
            status, sim = await g.call("POST", "/api/simulations", json_body={"flow_id": "gx"})
            assert status == 201
            status, tcall = await g.call("POST", "/api/testcalls", json_body={
                "flow_id": "gx", "to": "sip:bob@127.0.0.1:5999"})
            assert status == 403  # clients may not place test calls: staff place one
        con.add_user("o-globex", "ops", "globex")
        async with await con.client("o-globex") as o:
            status, tcall = await o.call("POST", "/api/testcalls", json_body={
                "flow_id": "gx", "to": "sip:bob@127.0.0.1:5999"})
            assert status == 202, tcall
        sid, tid = sim["id"], tcall["call_id"]

        # --- acme's client tries everything ---
        refused: list[str] = []
        async with await con.client("c-acme") as a:
            async def expect(method: str, path: str, want: tuple[int, ...],
                             **kw: Any) -> Any:
                status, body = await a.call(method, path, **kw)
                if status not in want:
                    refused.append(f"{method} {path}: {status} {body}")
                return body

            for path in ("/api/flows/gx", "/api/flows/gx/versions", "/api/flows/gx/versions/1",
                         "/api/flows/gx/diff?from=1&to=latest", "/api/flows/gx/tests",
                         f"/api/calls/{call.id}", f"/api/calls/{call.id}/recording",
                         f"/api/calls/{call.sip_call_id}", f"/api/simulations/{sid}",
                         f"/api/testcalls/{tid}"):
                await expect("GET", path, (404,))
            listed = {
                "/api/flows": lambda b: [f["flow_id"] for f in b["items"]],
                "/api/routes": lambda b: [r["number"] for r in b["items"]],
                "/api/calls": lambda b: [c["id"] for c in b["items"]],
                "/api/words": lambda b: [w["term"] for w in b["items"]],
                "/api/lists": lambda b: [e["number"] for e in b["items"]],
                "/api/voiceprints": lambda b: [v["person_id"] for v in b["items"]],
                "/api/voiceprints/p1/audit": lambda b: b["items"],
                "/api/audit": lambda b: [e["tenant"] for e in b["items"]],
                "/api/testcalls": lambda b: b["items"],
            }
            for path, pick in listed.items():
                body = await expect("GET", path, (200,))
                if body and pick(body):
                    refused.append(f"GET {path} shows {pick(body)}")
            await expect("PUT", "/api/flows/gx/draft", (409,),
                         json_body={"document": {**FLOW, "name": "hijacked"}, "revision": 1})
            await expect("POST", "/api/flows/gx/publish", (404,), json_body={})
            await expect("POST", "/api/flows/gx/rollback", (404,), json_body={"version": 1})
            await expect("PUT", "/api/flows/gx/tests", (404,), json_body={"document": SUITE})
            await expect("POST", "/api/flows/gx/tests/run", (404,), json_body={})
            await expect("POST", f"/api/simulations/{sid}/input", (404,),
                         json_body={"kind": "digits", "value": "1"})
            await expect("POST", "/api/simulations", (404,), json_body={"flow_id": "gx"})
            for path, kw in (("/api/flows/gx/draft", {}), ("/api/routes/7000", {}),
                             (f"/api/simulations/{sid}", {}),
                             ("/api/words", {"params": {"term": "globexsecret"}}),
                             ("/api/lists", {"params": {"number": "+8613911112222"}}),
                             ("/api/voiceprints/p1", {})):
                await expect("DELETE", path, (403, 404), **kw)
            for method, path, kw in (
                    ("GET", "/api/flows", {}), ("GET", "/api/flows/gx", {}),
                    ("GET", "/api/calls", {}), ("GET", f"/api/calls/{call.id}", {}),
                    ("GET", "/api/words", {}), ("GET", "/api/lists", {}),
                    ("GET", "/api/voiceprints", {}), ("GET", "/api/audit", {}),
                    ("GET", "/api/routes", {}), ("GET", "/api/testcalls", {}),
                    ("GET", "/api/events", {}),
                    ("POST", "/api/words", {"json_body": {"term": "x"}}),
                    ("POST", "/api/lists", {"json_body": {"number": "+8613800000002"}}),
                    ("DELETE", "/api/voiceprints/p1", {}),
                    ("POST", "/api/flows", {"json_body": {"document": FLOW}})):
                status, body = await a.call(method, path + "?tenant=globex", **kw)
                if status != 403 or body["error"]["code"] != "tenant_forbidden":
                    refused.append(f"{method} {path}?tenant=globex: {status}")
            for path in ("/api/calls?tenant=*", "/api/audit?tenant=*", "/api/events?tenant=*"):
                status, _ = await a.call("GET", path)
                if status != 403:
                    refused.append(f"GET {path}: {status}")
            # the event stream: a globex call, then an acme call; acme sees only its own
            watcher = asyncio.ensure_future(read_events(a, "/api/events", count=2))
            await asyncio.sleep(0.3)
            for tenant, cid in (("globex", "call-g"), ("acme", "call-a")):
                bus.publish("call.invite", cid, direction="inbound", caller="1", callee="2",
                            at=1.0)
                bus.publish("flow.start", cid, tenant=tenant, flow_id="f", flow_version=1)
                bus.publish("call.ended", cid, disposition="answered", at=2.0)
            seen = await watcher
        assert not refused, "\n".join(refused)
        assert [(e["event"], e["data"]["call_id"]) for e in seen] == [
            ("call.invite", "call-a"), ("flow.start", "call-a")]

        # --- globex's things are as they were ---
        async with await con.client("c-globex") as g:
            status, flow = await g.call("GET", "/api/flows/gx")
            assert flow["draft"]["document"]["name"] == "Globex main"
            assert flow["summary"]["routes"] == ["7000"]
            assert (await g.call("GET", f"/api/simulations/{sid}"))[0] == 200
            words = (await g.call("GET", "/api/words"))[1]["items"]
            assert [w["term"] for w in words] == ["globexsecret"]
            entries = (await g.call("GET", "/api/lists"))[1]["items"]
            assert [e["number"] for e in entries] == ["+8613911112222"]
            people = (await g.call("GET", "/api/voiceprints"))[1]["items"]
            assert [p["person_id"] for p in people] == ["p1"]
