"""The inspection API over a real console server: a real recording inspected with whisper,
tenant scoping, scorecard import errors, the review workflow to a final score (override,
second level by another reviewer confirming it on one call and overriding it on another),
calibration agreement, CSV export, and the audit trail: every step in it, readable by QA staff
through the inspection trail only (not the whole audit log)."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest

from audio.resample import to_8k
from audio.tones import silence
from audio.wavio import read_wav, write_stereo_wav
from console.roles import Principal
from console.services.base import Actor
from engine.cdr import CallRecord
from inspection.inspector import Inspector
from tests.console_harness import running_console
from tests.speech_data import REAL_DIR

pytestmark = [pytest.mark.xdist_group("console"), pytest.mark.models]

CARD = {"id": "qa1", "name": "质检一号", "pass_score": 90, "sections": [
    {"name": "Script", "weight": 1, "items": [
        {"id": "greeting", "points": 1, "rule": {
            "type": "phrase", "speaker": "engine", "phrases": ["thank you for calling"]}}]},
    {"name": "Conduct", "weight": 1, "items": [
        {"id": "selfish", "points": 1, "rule": {
            "type": "phrase", "speaker": "caller", "expect": "absent",
            "phrases": ["rather selfish"]}}]}]}
FLOW = {"id": "hello", "name": "Hello", "nodes": [
    {"id": "start", "type": "start"},
    {"id": "bye", "type": "hangup", "params": {"prompt": {"text": "Goodbye."}}}],
    "edges": [{"from": "start", "port": "next", "to": "bye"}]}


def _recording(path: Path) -> None:
    pcm, rate = read_wav(REAL_DIR / "ps_librivox_0890.wav")
    said = np.concatenate([silence(0.5), to_8k(pcm, rate), silence(0.5)])
    write_stereo_wav(path, said, np.zeros(len(said), np.int16))


async def test_review_workflow_through_the_api(tmp_path: Path) -> None:
    async with running_console(tmp_path) as con:
        for name, role, tenant in (("acme-boss", "client", "acme"), ("q1", "qa", "default"),
                                   ("q2", "qa", "default"), ("beta-boss", "client", "beta")):
            con.add_user(name, role, tenant)
        acme, q1, q2, beta = [await con.client() for _ in range(4)]
        for c, name in ((acme, "acme-boss"), (q1, "q1"), (q2, "q2"), (beta, "beta-boss")):
            c.use_token(con.token(name))
        try:
            con.services.flows.publish_document(Actor(Principal.cli("setup")), "acme", FLOW)
            bad = {**CARD, "sections": [{"name": "A", "items": [{"id": "x", "rule": {
                "type": "silence"}}]}]}
            status, body = await acme.call("POST", "/api/scorecards", json_body={
                "document": bad})
            assert status == 422
            assert body["error"]["field"] == "body.sections[0].items[0].rule.max_gap_ms"
            status, body = await acme.call("POST", "/api/scorecards", json_body={
                "document": CARD})
            assert status == 201 and body["version"] == 1 and body["tenant"] == "acme"

            wav = tmp_path / "recordings" / "c1.wav"
            wav.parent.mkdir(parents=True, exist_ok=True)
            _recording(wav)
            now = time.time()
            db = con.services.inspection.db  # type: ignore[union-attr]
            con.services.calls.save_many([CallRecord(
                "sip-c1", "inbound", "13800138000", "4000", id="c1", tenant="acme",
                invite_at=now - 20, answer_at=now - 19, end_at=now - 5,
                disposition="answered", recording_path=str(wav))])
            Inspector(db).inspect("c1")  # real whisper on the real recording

            status, body = await acme.call("GET", "/api/inspections", params={"q": "selfish"})
            assert status == 200 and [r["call_id"] for r in body["items"]] == ["c1"]
            assert body["items"][0]["score"] == 0.0  # no greeting, and the phrase was said
            status, body = await beta.call("GET", "/api/inspections/c1")
            assert status == 404
            status, body = await beta.call("GET", "/api/inspections", params={"tenant": "acme"})
            assert status == 403 and body["error"]["code"] == "tenant_forbidden"
            status, detail = await acme.call("GET", "/api/inspections/c1")
            (selfish,) = [i for i in detail["items"] if i["id"] == "selfish"]
            (hit,) = selfish["evidence"]
            assert hit["speaker"] == "caller" and 500 < hit["start_ms"] < 6000
            status, call = await acme.call("GET", "/api/calls/c1")
            assert status == 200 and "selfish" in " ".join(t["text"] for t in call["transcript"])

            status, queue = await q1.call("GET", "/api/reviews", params={"tenant": "acme"})
            assert [r["call_id"] for r in queue["items"]] == ["c1"]
            status, review = await q1.call("POST", "/api/reviews", params={"tenant": "acme"},
                                           json_body={"call_id": "c1"})
            assert status == 201 and review["level"] == 1 and review["reviewer"] == "q1"
            path = f"/api/reviews/{review['id']}/verdict"
            status, body = await q1.call("POST", path, params={"tenant": "acme"},
                                         json_body={"verdict": "override", "score": 60})
            assert status == 422 and body["error"]["field"] == "body.comment"
            status, body = await q2.call("POST", path, params={"tenant": "acme"},
                                         json_body={"verdict": "agree"})
            assert status == 422 and body["error"]["field"] == "body.reviewer"
            status, body = await q1.call("POST", path, params={"tenant": "acme"}, json_body={
                "verdict": "override", "score": 60, "comment": "读的是小说，不是投诉"})
            assert status == 200 and body["review_state"] == "escalated"
            status, body = await q1.call("POST", "/api/reviews", params={"tenant": "acme"},
                                         json_body={"call_id": "c1"})
            assert status == 422 and body["error"]["field"] == "body.reviewer"
            status, second = await q2.call("POST", "/api/reviews", params={"tenant": "acme"},
                                           json_body={"call_id": "c1"})
            assert status == 201 and second["level"] == 2
            status, body = await q2.call("POST", f"/api/reviews/{second['id']}/verdict",
                                         params={"tenant": "acme"},
                                         json_body={"verdict": "agree"})
            assert status == 200 and body["review_state"] == "final"
            # level 2 agrees with level 1's verdict: the override (60) is what stands, not
            # the automatic 0
            assert (body["score"], body["final_score"]) == (60.0, 60.0)
            status, detail = await acme.call("GET", "/api/inspections/c1")
            assert (detail["final_score"], detail["score"]) == (60.0, 0.0)
            decision = detail["decision"]
            assert (decision["id"], decision["level"], decision["reviewer"],
                    decision["verdict"]) == (second["id"], 2, "q2", "agree")

            # the second call: level 2 disagrees with level 1 and replaces its score
            con.services.calls.save_many([CallRecord(
                "sip-c2", "inbound", "13800138001", "4000", id="c2", tenant="acme",
                invite_at=now - 18, answer_at=now - 17, end_at=now - 3,
                disposition="answered", recording_path=str(wav))])
            Inspector(db).inspect("c2")
            status, first = await q1.call("POST", "/api/reviews", params={"tenant": "acme"},
                                          json_body={"call_id": "c2"})
            assert status == 201, first
            status, body = await q1.call("POST", f"/api/reviews/{first['id']}/verdict",
                                         params={"tenant": "acme"}, json_body={
                                             "verdict": "override", "score": 70,
                                             "comment": "the caller quotes a book"})
            assert body["review_state"] == "escalated" and body["final_score"] == 70.0
            status, second = await q2.call("POST", "/api/reviews", params={"tenant": "acme"},
                                           json_body={"call_id": "c2"})
            path = f"/api/reviews/{second['id']}/verdict"
            status, body = await q2.call("POST", path, params={"tenant": "acme"},
                                         json_body={"verdict": "override", "score": 85})
            assert status == 422 and body["error"]["field"] == "body.comment"
            status, body = await q2.call("POST", path, params={"tenant": "acme"}, json_body={
                "verdict": "override", "score": 85, "comment": "greeting was fine: 85"})
            assert status == 200 and body["review_state"] == "final"
            assert (body["score"], body["final_score"]) == (85.0, 85.0)
            status, detail = await q1.call("GET", "/api/inspections/c2",
                                           params={"tenant": "acme"})
            assert detail["final_score"] == 85.0
            assert (detail["decision"]["level"], detail["decision"]["verdict"]) == \
                (2, "override")

            # reviewers are console users who may review this tenant's calls; a refused
            # session leaves nothing behind (the listing below has cal-1 only)
            for reviewers, field, why in ((["q1", "q3"], "body.reviewers[1]", "not a console"),
                                          (["beta-boss", "q1"], "body.reviewers[0]",
                                           "belongs to tenant 'beta'")):
                status, body = await q1.call(
                    "POST", "/api/calibrations", params={"tenant": "acme"},
                    json_body={"session": "cal-0", "call_ids": ["c1"], "reviewers": reviewers})
                assert status == 422, body
                assert body["error"]["field"] == field and why in body["error"]["message"]
            status, rows = await q1.call("POST", "/api/calibrations", params={"tenant": "acme"},
                                         json_body={"session": "cal-1", "call_ids": ["c1"],
                                                    "reviewers": ["q1", "q2"]})
            assert status == 201 and len(rows["items"]) == 2
            for c, r, score in ((q1, rows["items"][0], 50), (q2, rows["items"][1], 95)):
                status, body = await c.call("POST", f"/api/reviews/{r['id']}/verdict",
                                            params={"tenant": "acme"}, json_body={
                                                "verdict": "override", "score": score,
                                                "comment": "calibration"})
                assert status == 200, body
            status, agree = await q1.call("GET", "/api/calibrations/cal-1",
                                          params={"tenant": "acme"})
            assert agree == {"session": "cal-1", "calls": 1, "reviews": 2,
                             "verdict_agreement": 1.0, "pass_agreement": 0.0,
                             "mean_score_spread": 45.0, "reviewers": 2,
                             "kappa_method": "cohen", "kappa_calls": 1,
                             "verdict_kappa": None,  # one verdict only: kappa undefined
                             "pass_kappa": 0.0}
            status, sessions = await q1.call("GET", "/api/calibrations",
                                             params={"tenant": "acme"})
            assert status == 200 and [(x["session"], x["done"]) for x in sessions["items"]] == \
                [("cal-1", 2)]
            status, body = await beta.call("GET", "/api/calibrations")
            assert status == 200 and body["items"] == []

            status, stats = await acme.call("GET", "/api/inspection/stats")
            assert stats["items"]["selfish"]["fail"] == 2  # c1 and c2
            assert stats["reviewers"]["q1"]["overrides"] == 3  # c1, c2, calibration
            async with acme.session.get(con.url + "/api/inspection/export", headers={
                    "Authorization": f"Bearer {acme.token}"}) as resp:
                text = await resp.text()
            assert resp.status == 200 and text.startswith("\ufeffcall_id,")
            assert "c1,acme," in text and "greeting selfish" in text

            status, audit = await acme.call("GET", "/api/audit", params={"limit": 100})
            actions = [e["action"] for e in audit["items"]]
            for action in ("inspection.scorecard.import", "inspection.review.assign",
                           "inspection.review.decide", "inspection.calibration.start"):
                assert action in actions, actions
            assert "flow.publish" in actions  # the client's own change, not inspection's

            # QA staff: the whole audit log is refused, the inspection trail is theirs
            status, body = await q1.call("GET", "/api/audit", params={"tenant": "acme"})
            assert status == 403 and body["error"]["code"] == "forbidden", body
            status, trail = await q1.call("GET", "/api/inspection/audit",
                                          params={"tenant": "acme", "call_id": "c2"})
            assert status == 200, trail
            steps = [(e["action"], e["actor"].split(" ")[0], e["detail"].get("level"),
                      e["detail"].get("verdict"), e["detail"].get("final_score"))
                     for e in reversed(trail["items"])]
            assert steps == [("inspection.review.assign", "q1", 1, None, None),
                             ("inspection.review.decide", "q1", 1, "override", 70.0),
                             ("inspection.review.assign", "q2", 2, None, None),
                             ("inspection.review.decide", "q2", 2, "override", 85.0)], steps
            status, trail = await q1.call("GET", "/api/inspection/audit",
                                          params={"tenant": "acme", "limit": 200})
            got = {e["action"] for e in trail["items"]}
            assert "inspection.scorecard.import" in got and "inspection.calibration.start" in got
            assert all(a.startswith("inspection.") for a in got), got
            assert {e["tenant"] for e in trail["items"]} == {"acme"}  # no operator-wide ones
            status, body = await q1.call("GET", "/api/inspection/audit",
                                         params={"tenant": "acme", "action": "flow.publish"})
            assert status == 422 and body["error"]["field"] == "query.action", body
            # another tenant's client: none of acme's trail
            status, body = await beta.call("GET", "/api/inspection/audit",
                                           params={"call_id": "c2"})
            assert status == 200 and body["items"] == []
            status, body = await beta.call("GET", "/api/inspection/audit",
                                           params={"tenant": "acme"})
            assert status == 403 and body["error"]["code"] == "tenant_forbidden"
        finally:
            for c in (acme, q1, q2, beta):
                await c.close()
