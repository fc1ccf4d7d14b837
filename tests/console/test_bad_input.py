"""Bad input gets a clear error naming the field, and nothing is half-written: malformed JSON,
wrong types, unknown fields, wrong content types, oversized bodies, CSVs with bad rows,
concurrent edits, blocked words at publish, and Chinese text all the way through."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from tests.console_harness import running_console

pytestmark = pytest.mark.xdist_group("console")

FLOW = {"id": "f1", "name": "F1", "nodes": [
    {"id": "start", "type": "start"},
    {"id": "bye", "type": "hangup", "params": {"prompt": {"text": "Goodbye."}}}],
    "edges": [{"from": "start", "port": "next", "to": "bye"}]}


def err(body: dict) -> tuple[str, str | None]:
    return body["error"]["code"], body["error"]["field"]


async def test_malformed_and_mistyped_requests_name_the_field(tmp_path: Path) -> None:
    async with running_console(tmp_path) as con:
        con.add_user("olga", "ops")
        async with await con.client("olga") as c:
            cases = {
                "malformed": await c.call("POST", "/api/lists", data=b'{"number": ',
                                          headers={"Content-Type": "application/json"}),
                "not utf-8": await c.call("POST", "/api/lists", data=b'{"number": "\xff"}',
                                          headers={"Content-Type": "application/json"}),
                "empty": await c.call("POST", "/api/lists", data=b"",
                                      headers={"Content-Type": "application/json"}),
                "wrong type": await c.call("POST", "/api/lists", json_body={"number": 123}),
                "unknown field": await c.call("POST", "/api/lists", json_body={
                    "number": "+8613800138000", "colour": "red"}),
                "bad enum": await c.call("POST", "/api/lists", json_body={
                    "number": "+8613800138000", "kind": "grey"}),
                "not a number": await c.call("POST", "/api/lists", json_body={
                    "number": "call me maybe"}),
                "form post": await c.call("POST", "/api/lists", data="number=1",
                                          headers={"Content-Type":
                                                   "application/x-www-form-urlencoded"}),
                "query type": await c.call("GET", "/api/calls?limit=lots"),
                "query range": await c.call("GET", "/api/calls?limit=100000"),
                "bad cursor": await c.call("GET", "/api/calls?cursor=not-a-cursor"),
                "path type": await c.call("GET", "/api/flows/f1/versions/one"),
                "bad tenant": await c.call("GET", "/api/flows?tenant=a:b"),
            }
            listed = (await c.call("GET", "/api/lists"))[1]["items"]
    got = {k: (status, *err(body)) for k, (status, body) in cases.items()}
    assert got == {
        "malformed": (400, "malformed_json", "body"),
        "not utf-8": (400, "malformed_json", "body"),
        "empty": (400, "body_required", "body"),
        "wrong type": (422, "invalid", "body.number"),
        "unknown field": (422, "invalid", "body.colour"),
        "bad enum": (422, "invalid", "body.kind"),
        "not a number": (422, "invalid", "number"),
        "form post": (415, "unsupported_media_type", "body"),
        "query type": (422, "invalid", "query.limit"),
        "query range": (422, "invalid", "query.limit"),
        "bad cursor": (422, "invalid", "cursor"),
        "path type": (422, "invalid", "version"),
        "bad tenant": (422, "invalid", "query.tenant"),
    }
    assert listed == []  # none of the refused requests stored anything


async def test_oversized_bodies_are_refused_whole(tmp_path: Path) -> None:
    async with running_console(tmp_path, IVR_CONSOLE__MAX_BODY_BYTES="20000",
                               IVR_CONSOLE__MAX_UPLOAD_BYTES="50000") as con:
        con.add_user("olga", "ops")
        big_flow = {**FLOW, "description": "x" * 30_000}
        rows = "".join(f"+86138{i:08d}\n" for i in range(5_000))  # ~75 kB
        async with await con.client("olga") as c:
            body = await c.call("POST", "/api/flows", json_body={"document": big_flow})
            upload = await c.call("POST", "/api/lists/import", data=rows,
                                  headers={"Content-Type": "text/csv"})
            flows = (await c.call("GET", "/api/flows"))[1]["items"]
            entries = (await c.call("GET", "/api/lists"))[1]["items"]
    assert body[0] == 413 and err(body[1]) == ("too_large", "body")
    assert upload[0] == 413 and err(upload[1]) == ("too_large", "body")
    assert flows == [] and entries == []


async def test_a_csv_with_bad_rows_reports_them_and_imports_the_rest(tmp_path: Path) -> None:
    csv_text = ("number,list,reason,expires\n"
                "+8613800138000,black,complaint,\n"
                "not-a-number,black,complaint,\n"
                "+8613800138001,grey,complaint,\n"
                "+8613800138002,white,vip,2030-01-01\n"
                "+8613800138003,black,because,\n"
                "+8613800138004,black,complaint,someday\n")
    words = ("term,category,severity,action\n"
             "诈骗,fraud,5,block\n坏词,abuse,9,block\n傻瓜,abuse,2,mask\n")
    async with running_console(tmp_path) as con:
        con.add_user("cleo", "client", "acme")
        async with await con.client("cleo") as c:
            status, report = await c.call("POST", "/api/lists/import", data=csv_text,
                                          headers={"Content-Type": "text/csv"})
            entries = (await c.call("GET", "/api/lists"))[1]["items"]
            other = await c.call("POST", "/api/lists/import",
                                 data="number,tenant\n+8613800138005,globex\n+8613800138006,\n",
                                 headers={"Content-Type": "text/csv"})
            wstatus, wreport = await c.call("POST", "/api/words/import", data=words.encode(),
                                            headers={"Content-Type": "text/csv"})
            scan = (await c.call("POST", "/api/words/test",
                                 json_body={"text": "这是诈骗电话，你这个傻瓜"}))[1]
    # a free-text reason ("because") is kept as the entry's note with reason "other"
    assert status == 200 and report["imported"] == 3
    assert [(e["line"], e["column"]) for e in report["errors"]] == [
        (3, "number"), (4, "list"), (7, "expires")]
    assert sorted(e["number"] for e in entries) == ["+8613800138000", "+8613800138002",
                                                    "+8613800138003"]
    assert all(e["tenant"] == "acme" for e in entries)
    assert other[1]["imported"] == 1 and other[1]["errors"][0]["line"] == 2
    assert "tenant" in other[1]["errors"][0]["message"]
    assert wstatus == 200 and wreport["imported"] == 2 and len(wreport["errors"]) == 1
    assert scan["blocked"] is True
    assert {h["term"] for h in scan["hits"]} == {"诈骗", "傻瓜"}
    assert "傻瓜" not in scan["masked_text"]


async def test_concurrent_edits_the_second_writer_gets_409(tmp_path: Path) -> None:
    async with running_console(tmp_path) as con:
        con.add_user("dana", "designer")
        con.add_user("dave", "designer")
        async with await con.client("dana") as a, await con.client("dave") as b:
            assert (await a.call("POST", "/api/flows", json_body={"document": FLOW}))[0] == 201
            _, seen_a = await a.call("GET", "/api/flows/f1")
            _, seen_b = await b.call("GET", "/api/flows/f1")
            rev = seen_a["draft"]["revision"]
            first, second = await asyncio.gather(
                a.call("PUT", "/api/flows/f1/draft", json_body={
                    "document": {**FLOW, "name": "Dana's"}, "revision": rev}),
                b.call("PUT", "/api/flows/f1/draft", json_body={
                    "document": {**FLOW, "name": "Dave's"}},
                    headers={"If-Match": f'"r{seen_b["draft"]["revision"]}"'}))
            winner = first if first[0] == 200 else second
            loser = second if winner is first else first
            _, now = await a.call("GET", "/api/flows/f1")
            stale_publish = await b.call("POST", "/api/flows/f1/publish",
                                         json_body={"revision": rev})
    assert sorted([first[0], second[0]]) == [200, 409]
    assert err(loser[1]) == ("conflict", "revision")
    assert loser[1]["error"]["details"] == [{"current": 2}]
    assert now["draft"]["revision"] == 2
    assert now["draft"]["document"]["name"] == winner[1]["document"]["name"]
    assert stale_publish[0] == 409


async def test_publishing_blocked_words_stores_nothing_and_names_the_node(
        tmp_path: Path) -> None:
    blocked = {**FLOW, "name": "促销", "nodes": [
        {"id": "start", "type": "start"},
        {"id": "bye", "type": "hangup", "params": {"prompt": {"text": "本行不是诈骗，再见"}}}]}
    async with running_console(tmp_path) as con:
        con.add_user("olga", "ops")
        con.add_user("cleo", "client", "acme")
        async with await con.client("olga") as ops:  # the operator's global word
            status, _ = await ops.call("POST", "/api/words", json_body={
                "term": "诈骗", "global": True})
            assert status == 201
        async with await con.client("cleo") as c:
            assert (await c.call("POST", "/api/flows", json_body={"document": blocked}))[0] == 201
            status, body = await c.call("POST", "/api/flows/f1/publish", json_body={})
            versions = await c.call("GET", "/api/flows/f1/versions")
            _, draft = await c.call("GET", "/api/flows/f1")
            audit = (await c.call("GET", "/api/audit?action=flow.publish"))[1]["items"]
    assert status == 422 and err(body) == ("blocked_words", "document")
    assert body["error"]["details"][0]["node_id"] == "bye"
    assert "诈骗" in body["error"]["details"][0]["message"]
    assert versions[0] == 200 and versions[1]["items"] == []
    assert draft["draft"]["document"]["name"] == "促销"  # the draft (Chinese) is kept as saved
    assert audit == []
