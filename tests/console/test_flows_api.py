"""Flows through the API: invalid drafts are saved and their problems named by node and port,
publishing makes immutable versions, diff, rollback, routes, stored test cases, the simulator."""

from __future__ import annotations

import io
import wave
from pathlib import Path
from typing import Any

import pytest

from tests.console_harness import running_console

pytestmark = pytest.mark.xdist_group("console")


def menu_flow(prompt: str = "Press 1 for sales.", **extra: Any) -> dict[str, Any]:
    return {"id": "main", "name": "Main", **extra, "nodes": [
        {"id": "start", "type": "start"},
        {"id": "menu", "type": "menu", "params": {"prompt": {"text": prompt}, "options": [
            {"port": "sales", "digits": ["1"]}]}},
        {"id": "sales", "type": "hangup", "params": {"prompt": {"text": "Sales is closed."}}},
        {"id": "bye", "type": "hangup", "params": {"prompt": {"text": "Goodbye."}}}],
        "edges": [{"from": "start", "port": "next", "to": "menu"},
                  {"from": "menu", "port": "sales", "to": "sales"},
                  {"from": "menu", "port": "no_input", "to": "bye"},
                  {"from": "menu", "port": "no_match", "to": "bye"}]}


async def test_draft_validate_publish_diff_rollback(tmp_path: Path) -> None:
    broken = menu_flow()
    broken["edges"] = broken["edges"][:2]  # no_input / no_match left dangling
    async with running_console(tmp_path) as con:
        con.add_user("dana", "designer")
        async with await con.client("dana") as c:
            status, draft = await c.call("POST", "/api/flows", json_body={"document": broken})
            assert status == 201 and draft["revision"] == 1
            assert {(p["node_id"], p["port"]) for p in draft["problems"]} == {
                ("menu", "no_input"), ("menu", "no_match"), ("bye", None)}  # bye unreachable
            status, refused = await c.call("POST", "/api/flows/main/publish", json_body={})
            assert status == 422 and refused["error"]["code"] == "flow_invalid"
            status, saved = await c.call("PUT", "/api/flows/main/draft", json_body={
                "document": menu_flow(), "revision": 1})
            assert status == 200 and saved["problems"] == []
            status, v1 = await c.call("POST", "/api/flows/main/publish", json_body={})
            assert (status, v1["version"], v1["created"]) == (201, 1, True)
            status, again = await c.call("POST", "/api/flows/main/publish", json_body={})
            assert (status, again["version"], again["created"]) == (200, 1, False)
            await c.call("PUT", "/api/flows/main/draft", json_body={
                "document": menu_flow("Press 1 for sales, 2 for support."), "revision": 2})
            _, d = await c.call("GET", "/api/flows/main/diff?from=latest&to=draft")
            assert d["nodes_changed"] == [{"id": "menu", "fields": ["params"]}] and not d["empty"]
            assert (await c.call("POST", "/api/flows/main/publish", json_body={}))[1][
                "version"] == 2
            _, back = await c.call("POST", "/api/flows/main/rollback", json_body={"version": 1})
            assert back["version"] == 3
            _, v3 = await c.call("GET", "/api/flows/main/versions/3")
            _, v1doc = await c.call("GET", "/api/flows/main/versions/1")
            assert v3["document"] == v1doc["document"]
            assert v3["content_hash"] == v1doc["content_hash"]
            _, versions = await c.call("GET", "/api/flows/main/versions")
            assert [v["version"] for v in versions["items"]] == [1, 2, 3]
            same = await c.call("POST", "/api/flows/main/rollback", json_body={"version": 1})
            assert same[0] == 409 and same[1]["error"]["code"] == "no_change"
            _, listed = await c.call("GET", "/api/flows")
            assert listed["items"][0]["latest_version"] == 3
            _, flow = await c.call("GET", "/api/flows/main")
            assert flow["draft"]["revision"] == 3
        _, audit = await (await con.client("dana")).call("GET", "/api/audit?action=flow.")
    # dana is a designer: no audit permission; the entries exist for ops
    assert audit["error"]["code"] == "forbidden"
    entries = con.services.audit.search(__import__("console.audit").audit.AuditQuery(
        action="flow."), tenants=__import__("storage.tenancy").tenancy.Tenants.one("default"))
    assert [e.action for e in reversed(entries.entries)] == [
        "flow.create", "flow.draft.save", "flow.publish", "flow.draft.save", "flow.publish",
        "flow.publish"]
    publishes = [e for e in reversed(entries.entries) if e.action == "flow.publish"]
    assert publishes[2].detail["rollback_to"] == 1
    assert publishes[2].after_digest == publishes[0].after_digest  # the same content again
    assert publishes[2].before_digest == publishes[1].after_digest


async def test_routes_test_cases_and_the_simulator(tmp_path: Path) -> None:
    suite = {"cases": [
        {"name": "sales", "steps": [{"expect_prompt": "Press 1"}, {"send_dtmf": "1"},
                                    {"expect_prompt": "closed"}, {"expect_end": "hangup"}]},
        {"name": "wrong", "steps": [{"send_dtmf": "1"}, {"expect_end": "transferred"}]}]}
    async with running_console(tmp_path) as con:
        con.add_user("cleo", "client", "acme")
        con.add_user("olga", "ops")
        async with await con.client("cleo") as c, await con.client("olga") as ops:
            await c.call("POST", "/api/flows", json_body={"document": menu_flow()})
            assert (await c.call("PUT", "/api/routes/4001", json_body={"flow_id": "main"}))[
                0] == 403  # numbers are the operator's to give
            assert (await ops.call("PUT", "/api/routes/4001?tenant=acme", json_body={
                "flow_id": "main"}))[1]["error"]["code"] == "not_published"
            await c.call("POST", "/api/flows/main/publish", json_body={})
            assert (await ops.call("PUT", "/api/routes/4001?tenant=acme",
                                   json_body={"flow_id": "main"}))[0] == 200
            taken = await ops.call("PUT", "/api/routes/4001", json_body={"flow_id": "main"})
            assert taken[0] in (409, 422)  # another tenant's number (or no such flow here)
            _, routes = await c.call("GET", "/api/routes")
            assert routes["items"] == [{"number": "4001", "flow_id": "main"}]
            assert (await c.call("PUT", "/api/flows/main/tests", json_body={
                "document": suite}))[0] == 200
            _, run = await c.call("POST", "/api/flows/main/tests/run", json_body={})
            assert (run["passed"], run["failed"]) == (1, 1)
            failed = next(r for r in run["results"] if not r["passed"])
            assert failed["name"] == "wrong" and "hangup" in failed["steps"][-1]["message"]
            bad = await c.call("PUT", "/api/flows/main/tests", json_body={"document": {
                "cases": [{"name": "x", "steps": [{"send_dtmf": "1", "say": "hi"}]}]}})
            assert bad[0] == 422 and bad[1]["error"]["field"].startswith("suite.cases")
            paths = await c.call("PUT", "/api/flows/main/tests", json_body={"document": {
                "flow": "/etc/passwd", "cases": suite["cases"]}})
            assert paths[0] == 422 and paths[1]["error"]["field"] == "suite.subflows"
            status, sim = await c.call("POST", "/api/simulations", json_body={
                "flow_id": "main", "target": "latest"})
            assert status == 201 and sim["waiting_for"] == "digits"
            assert [o["text"] for o in sim["outputs"] if o["kind"] == "say"] == [
                "Press 1 for sales."]
            # the prompt in the engine's own voice: a WAV of the sentence, not of anything else
            said = next(o for o in sim["outputs"] if o["kind"] == "say")
            status, wav = await c.call("GET", f"/api/simulations/{sim['id']}/prompts/{said['seq']}")
            assert status == 200 and isinstance(wav, bytes) and wav[:4] == b"RIFF", wav[:200]
            with wave.open(io.BytesIO(wav)) as w:
                assert w.getframerate() == 8000 and w.getnframes() / 8000 > 0.5
            node = next(o for o in sim["outputs"] if o["kind"] != "say")
            missing = await c.call("GET", f"/api/simulations/{sim['id']}/prompts/{node['seq']}")
            assert missing[0] == 404  # not a spoken prompt
            assert (await c.call("GET", f"/api/simulations/{sim['id']}/prompts/0"))[0] == 422
            _, after = await c.call("POST", f"/api/simulations/{sim['id']}/input",
                                    json_body={"kind": "digits", "value": "1"})
            assert [o["text"] for o in after["outputs"] if o["kind"] == "say"] == [
                "Sales is closed."]
            assert after["status"] == "ended" and after["result"]["status"] == "hangup"
            nodes = [o["node_id"] for o in after["outputs"] if o["kind"] == "flow.node"]
            assert nodes[-2:] == ["menu", "sales"]
            ended = await c.call("POST", f"/api/simulations/{sim['id']}/input",
                                 json_body={"kind": "digits", "value": "1"})
            assert ended[0] == 422 and ended[1]["error"]["code"] == "ended"
            assert (await c.call("DELETE", f"/api/simulations/{sim['id']}"))[0] == 204
            assert (await c.call("DELETE", "/api/routes/4001"))[0] == 403
            assert (await ops.call("DELETE", "/api/routes/4001?tenant=acme"))[0] == 204
