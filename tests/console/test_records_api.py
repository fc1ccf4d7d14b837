"""Calls (search with filters and cursors, detail, recording with HTTP Range), words, lists and
voiceprints through the API."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from audio.wavio import write_wav
from engine.cdr import CallRecord
from speaker_id.store import Voiceprint
from tests.console_harness import running_console

pytestmark = pytest.mark.xdist_group("console")


async def test_call_search_pages_filters_and_plays_recordings(tmp_path: Path) -> None:
    async with running_console(tmp_path) as con:
        rec_dir = Path(con.settings.storage.recordings_dir)
        rec_dir.mkdir(parents=True)  # noqa: ASYNC240 - test setup, before any call
        wav = rec_dir / "c.wav"
        write_wav(wav, (np.sin(np.arange(8000) / 8000 * 2 * np.pi * 440) * 8000)
                  .astype(np.int16), 8000)
        records = [CallRecord(f"sip-{i}", "inbound" if i % 2 else "outbound",
                              f"+86138000000{i:02d}", "4001" if i < 20 else "4002",
                              tenant="acme", invite_at=1_700_000_000 + i,
                              disposition="answered" if i % 3 else "no_answer",
                              flow_id="main" if i < 10 else "other",
                              trace=[{"kind": "turn", "at": 1.0, "total_ms": 420}])
                   for i in range(25)]
        for r in records[20:23]:
            r.campaign_id = "spring-notice"
        records[5].recording_path = str(wav)
        records[6].recording_path = "/etc/passwd"  # a record must not point at other files
        records[7].tenant = "globex"
        con.services.calls.save_many(records)
        con.add_user("cleo", "client", "acme")
        con.add_user("olga", "ops")
        async with await con.client("cleo") as c:
            pages, cursor = [], None
            while True:
                _, page = await c.call("GET", "/api/calls", params={
                    "limit": "10", **({"cursor": cursor} if cursor else {})})
                pages.append([r["sip_call_id"] for r in page["items"]])
                cursor = page["next_cursor"]
                if cursor is None:
                    break
            _, by_number = await c.call("GET", "/api/calls", params={"number": "4002"})
            _, prefix = await c.call("GET", "/api/calls", params={"number": "+861380000001*"})
            _, filtered = await c.call("GET", "/api/calls", params={
                "flow_id": "main", "disposition": "no_answer", "direction": "outbound"})
            _, by_campaign = await c.call("GET", "/api/calls",
                                          params={"campaign_id": "spring-notice"})
            _, window = await c.call("GET", "/api/calls", params={
                "since": "1700000003", "until": "1700000005"})
            _, detail = await c.call("GET", f"/api/calls/{records[5].id}")
            async with c.session.get(c.base + detail["recording_url"],
                                     headers={"Range": "bytes=0-99"}) as resp:
                part = (resp.status, resp.headers["Content-Range"], len(await resp.read()))
            _, sneaky = await c.call("GET", f"/api/calls/{records[6].id}")
            none = await c.call("GET", f"/api/calls/{records[6].id}/recording")
        async with await con.client("olga") as o:
            _, everyone = await o.call("GET", "/api/calls?tenant=*&limit=200")
    flat = [cid for page in pages for cid in page]
    assert [len(p) for p in pages] == [10, 10, 4]
    assert flat == [f"sip-{i}" for i in range(24, -1, -1) if i != 7]  # newest first, no gaps
    assert {r["to_number"] for r in by_number["items"]} == {"4002"}
    assert len(by_number["items"]) == 5
    assert sorted(r["sip_call_id"] for r in prefix["items"]) == [
        f"sip-{i}" for i in range(10, 20)]
    assert [r["sip_call_id"] for r in filtered["items"]] == ["sip-6", "sip-0"]
    assert [r["sip_call_id"] for r in window["items"]] == ["sip-4", "sip-3"]
    assert [(r["sip_call_id"], r["campaign_id"]) for r in by_campaign["items"]] == [
        (f"sip-{i}", "spring-notice") for i in (22, 21, 20)]
    assert {r["campaign_id"] for r in everyone["items"] if r["sip_call_id"] == "sip-0"} == {None}
    assert detail["latency"] == [{"kind": "turn", "at": 1.0, "total_ms": 420}]
    assert part == (206, f"bytes 0-99/{wav.stat().st_size}", 100)
    assert sneaky["recording_url"] is None and none[0] == 404
    assert len(everyone["items"]) == 25


async def test_words_lists_and_voiceprints(tmp_path: Path) -> None:
    async with running_console(tmp_path) as con:
        con.add_user("cleo", "client", "acme")
        con.add_user("olga", "ops")
        assert con.services.voiceprints is not None
        store = con.services.voiceprints.service.store
        for person in ("alice", "bob"):
            store.save("acme", person, Voiceprint(np.ones(8, np.float32), "resemblyzer", 3, 6.0,
                                                  None),
                       consent_method="ivr", consent_text="yes", actor="ivr", now=100.0)
        async with await con.client("cleo") as c, await con.client("olga") as o:
            assert (await o.call("POST", "/api/words", json_body={
                "term": "赌博", "global": True, "category": "fraud"}))[0] == 201
            assert (await c.call("POST", "/api/words", json_body={
                "term": "赌博", "global": True}))[0] == 403  # global is the operator's
            assert (await c.call("POST", "/api/words", json_body={"term": "竞争对手"}))[0] == 201
            _, mine = await c.call("GET", "/api/words")
            _, scan = await c.call("POST", "/api/words/test", json_body={
                "text": "别去赌博，也别提竞争对手"})
            _, other = await o.call("POST", "/api/words/test", json_body={
                "text": "别提竞争对手"})  # the default tenant has no such word
            assert (await c.call("DELETE", "/api/words", params={"term": "竞争对手"}))[0] == 204
            _, added = await c.call("POST", "/api/lists", json_body={
                "number": "13800138000", "reason": "complaint", "campaign": "spring"})
            await c.call("POST", "/api/lists", json_body={"number": "+86168*"})
            _, entries = await c.call("GET", "/api/lists")
            _, one = await c.call("GET", "/api/lists", params={"q": "138001"})
            _, decision = await c.call("POST", "/api/lists/check", json_body={
                "number": "13800138000", "purpose": "marketing", "campaign": "spring",
                "at": "2026-03-02T10:00:00+08:00"})
            _, other_campaign = await c.call("POST", "/api/lists/check", json_body={
                "number": "13800138000", "purpose": "marketing", "campaign": "autumn",
                "at": "2026-03-02T10:00:00+08:00"})
            _, people = await c.call("GET", "/api/voiceprints")
            assert (await c.call("DELETE", "/api/voiceprints/alice"))[0] == 204
            gone = await c.call("DELETE", "/api/voiceprints/alice")
            _, log = await c.call("GET", "/api/voiceprints/alice/audit")
            _, left = await c.call("GET", "/api/voiceprints")
    assert [w["term"] for w in mine["items"]] == ["竞争对手"]
    assert scan["blocked"] and {h["term"] for h in scan["hits"]} == {"赌博", "竞争对手"}
    assert not other["blocked"]
    assert [e["number"] for e in added["items"]] == ["+8613800138000"]
    assert added["items"][0]["campaign"] == "spring"
    assert {e["number"] for e in entries["items"]} == {"+8613800138000", "+86168*"}
    assert [e["number"] for e in one["items"]] == ["+8613800138000"]
    assert not decision["allowed"] and decision["reasons"][0]["code"] == "blacklisted"
    assert other_campaign["allowed"]  # the entry is the spring campaign's only
    assert [p["person_id"] for p in people["items"]] == ["alice", "bob"]
    assert people["items"][0]["consent_given_at"] == 100.0
    assert gone[0] == 404
    assert [(e["action"], e["actor"], e["outcome"]) for e in log["items"]] == [
        ("delete", "cleo", "deleted"), ("delete", "cleo", "not_enrolled")]
    assert [p["person_id"] for p in left["items"]] == ["bob"]


def test_the_api_offers_exactly_the_word_categories_the_filter_knows() -> None:
    from typing import get_args

    from compliance.words import CATEGORIES
    from console.api.compliance_schemas import WordCategory

    assert get_args(WordCategory) == CATEGORIES
