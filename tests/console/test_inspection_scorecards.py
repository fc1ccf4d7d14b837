"""More than one scorecard per tenant, over a real console server and the real post-call queue:
a tenant-wide default, one scoped to a flow and one to a campaign; calls of two flows (and a
campaign's call on one of them) are each scored by the most specific card (InspectionWorker,
whisper on a real recording); a bad scope is refused naming the field (an unknown flow, another
tenant's campaign, a claim another active card already makes); retiring a card sends its calls
to the next fitting one, and every change is in the inspection trail."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from audio.resample import to_8k
from audio.tones import silence
from audio.wavio import read_wav, write_stereo_wav
from console.roles import Principal
from console.services.base import Actor
from core.clock import SystemClock
from engine.cdr import CallRecord
from inspection.inspector import Inspector
from inspection.queue import JobQueue
from inspection.worker import InspectionWorker
from tests.console_harness import running_console
from tests.speech_data import REAL_DIR

pytestmark = [pytest.mark.xdist_group("console"), pytest.mark.models]


def _flow(flow_id: str) -> dict[str, Any]:
    return {"id": flow_id, "name": flow_id, "nodes": [
        {"id": "start", "type": "start"},
        {"id": "bye", "type": "hangup", "params": {"prompt": {"text": "Goodbye."}}}],
        "edges": [{"from": "start", "port": "next", "to": "bye"}]}


def _card(card_id: str, scope: dict[str, Any] | None, item: str) -> dict[str, Any]:
    doc: dict[str, Any] = {"id": card_id, "sections": [{"name": "S", "items": [
        {"id": item, "rule": {"type": "phrase", "speaker": "caller",
                              "phrases": ["go forward"]}}]}]}
    if scope is not None:
        doc["scope"] = scope
    return doc


def _call(call_id: str, wav: Path, flow_id: str, campaign_id: str | None = None) -> CallRecord:
    now = time.time()
    return CallRecord(f"sip-{call_id}", "inbound", "13800138000", "4000", id=call_id,
                      tenant="acme", invite_at=now - 9, answer_at=now - 8, end_at=now - 2,
                      disposition="answered", recording_path=str(wav), flow_id=flow_id,
                      flow_version=1, campaign_id=campaign_id)


async def _run_queue(db: Any, call_ids: list[str]) -> None:
    queue = JobQueue(db)
    for call_id in call_ids:
        queue.enqueue(call_id, "acme", time.time(), force=True)
    worker = InspectionWorker(queue, Inspector(db), SystemClock(), owner="scorecard-test",
                              poll_s=0.1)
    await worker.start()
    try:
        assert await worker.drain(120.0), queue.jobs()
    finally:
        await worker.stop()
    assert worker.failed == 0


async def test_each_call_is_scored_by_its_most_specific_scorecard(tmp_path: Path) -> None:
    async with running_console(tmp_path) as con:
        con.add_user("cleo", "client", "acme")
        con.add_user("quinn", "qa")
        con.add_user("gina", "client", "globex")
        setup = Actor(Principal.cli("setup"))
        for tenant, flow_id in (("acme", "sales"), ("acme", "service"), ("globex", "gflow")):
            con.services.flows.publish_document(setup, tenant, _flow(flow_id))
        cleo, quinn, gina = [await con.client(n) for n in ("cleo", "quinn", "gina")]
        try:
            for c, cid, flow_id in ((cleo, "promo", "sales"), (gina, "gpromo", "gflow")):
                status, body = await c.call("POST", "/api/campaigns", json_body={"spec": {
                    "id": cid, "name": cid, "flow": {"id": flow_id}}})
                assert status == 201, body

            async def put(doc: dict[str, Any]) -> tuple[int, Any]:
                return await cleo.call("POST", "/api/scorecards", json_body={"document": doc})

            for doc in (_card("general", None, "g"),
                        _card("sales_card", {"flows": ["sales"]}, "s"),
                        _card("promo_card", {"campaigns": ["promo"]}, "p")):
                status, body = await put(doc)
                assert status == 201, body

            # bad scoping is refused, naming the field
            refused = [
                (_card("x", {"flows": ["sales", "nope"]}, "x"), 422, "body.scope.flows[1]"),
                (_card("x", {"campaigns": ["gpromo"]}, "x"), 422, "body.scope.campaigns[0]"),
                (_card("x", {"queues": ["q1"]}, "x"), 422, "body.scope.queues"),
                (_card("x", {"flows": ["bad id!"]}, "x"), 422, "body.scope.flows[0]"),
                (_card("x", {"flows": ["service", "sales"]}, "x"), 409, "body.scope.flows[1]"),
                (_card("x", None, "x"), 409, "body.scope"),  # a second default
            ]
            for doc, code, field in refused:
                status, body = await put(doc)
                assert (status, body["error"]["field"]) == (code, field), (doc, body)
            assert "'general'" in body["error"]["message"]  # who already has the claim
            # the same card again (a new version) does not clash with itself
            status, body = await put(_card("sales_card", {"flows": ["sales"]}, "s2"))
            assert status == 201 and body["version"] == 2

            pcm, rate = read_wav(REAL_DIR / "ps_goforward.wav")
            said = np.concatenate([silence(0.5), to_8k(pcm, rate), silence(0.5)])
            wav = tmp_path / "recordings" / "go.wav"
            wav.parent.mkdir(parents=True, exist_ok=True)
            write_stereo_wav(wav, said, np.zeros(len(said), np.int16))
            con.services.calls.save_many([
                _call("c-sales", wav, "sales"), _call("c-service", wav, "service"),
                _call("c-promo", wav, "sales", "promo"), _call("c-other", wav, "other")])
            db = con.services.inspection.db  # type: ignore[union-attr]
            await _run_queue(db, ["c-sales", "c-service", "c-promo", "c-other"])

            async def scored(call_id: str) -> tuple[str, int, list[str]]:
                status, r = await cleo.call("GET", f"/api/inspections/{call_id}")
                assert status == 200, r
                return r["scorecard"], r["scorecard_version"], [i["id"] for i in r["items"]]

            assert await scored("c-sales") == ("sales_card", 2, ["s2"])
            assert await scored("c-service") == ("general", 1, ["g"])
            assert await scored("c-promo") == ("promo_card", 1, ["p"])  # campaign beats flow
            assert await scored("c-other") == ("general", 1, ["g"])
            status, r = await cleo.call("GET", "/api/inspections/c-promo")
            assert r["campaign_id"] == "promo" and r["items"][0]["status"] == "pass", r
            status, stats = await cleo.call("GET", "/api/inspection/stats")
            assert stats["campaigns"] == {"promo": {"calls": 1, "mean_score": 100.0,
                                                    "passed": 1, "needs_review": 0}}

            # retired, its calls fall to the next fitting card; brought back, it is checked
            status, body = await cleo.call("PATCH", "/api/scorecards/sales_card",
                                           json_body={"active": False})
            assert status == 200 and body["active"] is False, body
            status, body = await put(_card("sales_b", {"flows": ["sales"]}, "b"))
            assert status == 201, body  # the claim is free again
            status, body = await cleo.call("PATCH", "/api/scorecards/sales_card",
                                           json_body={"active": True})
            assert (status, body["error"]["field"]) == (409, "body.scope.flows[0]"), body
            status, body = await cleo.call("PATCH", "/api/scorecards/sales_b",
                                           json_body={"active": False})
            assert status == 200
            status, body = await gina.call("PATCH", "/api/scorecards/general",
                                           json_body={"active": False})
            assert status == 404  # another tenant's card is not there for globex
            assert (await cleo.call("POST", "/api/inspections/c-sales/rerun"))[0] == 202
            await _run_queue(db, [])
            assert await scored("c-sales") == ("general", 1, ["g"])

            status, trail = await quinn.call("GET", "/api/inspection/audit", params={
                "tenant": "acme", "action": "inspection.scorecard."})
            actions = [(e["action"].rsplit(".", 1)[1], e["resource"].split(":")[1])
                       for e in reversed(trail["items"])]
            assert actions == [("import", "general"), ("import", "sales_card"),
                               ("import", "promo_card"), ("import", "sales_card"),
                               ("retire", "sales_card"), ("import", "sales_b"),
                               ("retire", "sales_b")], actions
        finally:
            for c in (cleo, quinn, gina):
                await c.close()
