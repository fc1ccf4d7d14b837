"""The persisted store behind the CLI: SQL stores directly, then the real ``ivr`` commands in
separate processes (import in one, check in the next)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from compliance.lists import ListEntry, ListKind, ListReason, Scope
from compliance.pinyin import PinyinMode
from compliance.sql_store import SqlListStore, SqlWordStore
from compliance.wordlist import WordRegistry
from compliance.words import Action, Term
from storage.db import open_database

NOW = datetime(2026, 11, 30, 2, 0, tzinfo=UTC)


async def test_sql_list_store(tmp_path: Path) -> None:
    store = SqlListStore(open_database(f"sqlite:///{tmp_path}/c.sqlite"))
    n = "+8613800138000"
    await store.add([
        ListEntry(ListKind.BLACK, n, scope=Scope("acme"), reason=ListReason.COMPLAINT,
                  source="s", expires=NOW + timedelta(days=1)),
        ListEntry(ListKind.BLACK, "86138", is_prefix=True),
        ListEntry(ListKind.BLACK, n, scope=Scope("acme"), reason=ListReason.OPT_OUT),  # upsert
    ])
    hits = await store.match(ListKind.BLACK, n, Scope("acme").chain(), NOW)
    assert sorted((e.target, e.reason) for e in hits) == [
        ("+8613800138000", ListReason.OPT_OUT), ("86138", ListReason.OTHER)]
    assert len([e async for e in store.export()]) == 2
    assert await store.remove(ListKind.BLACK, Scope(), "86138", True)
    assert await store.match(ListKind.BLACK, n, [Scope()], NOW) == []


def test_sql_word_store_hot_reload(tmp_path: Path) -> None:
    db = open_database(f"sqlite:///{tmp_path}/w.sqlite")
    store = SqlWordStore(db)
    reg = WordRegistry(store)
    assert not reg.filter_for().scan("赌博").hits
    store.add_terms([Term("赌博", "custom", 2, Action.FLAG, None, False)])
    other_process_view = SqlWordStore(open_database(f"sqlite:///{tmp_path}/w.sqlite"))
    assert other_process_view.version() == 1
    assert reg.filter_for().scan("赌博").hits
    store.add_terms([Term("赌博", "fraud", 5, Action.BLOCK, None, True)])  # update in place
    (t,) = store.all_terms()
    assert (t.category, t.severity, t.action, t.pinyin) == (
        "fraud", 5, Action.BLOCK, PinyinMode.HOMOPHONE)
    assert reg.filter_for().scan("赌博").blocked
    assert store.remove_term("赌博", None) and not store.remove_term("赌博", None)


def ivr(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "IVR_STORAGE__URL": f"sqlite:///{tmp_path}/cli.sqlite"}
    env.pop("IVR_COMPLIANCE__REDIS_URL", None)
    return subprocess.run([sys.executable, "-m", "app.cli.main", *args], capture_output=True,
                          text=True, env=env, cwd=Path(__file__).parents[2], timeout=60,
                          check=False)


@pytest.mark.slow
def test_cli_import_then_check_in_separate_processes(tmp_path: Path) -> None:
    lists = tmp_path / "lists.csv"
    lists.write_text("number,list,reason\n138 0013 8000,black,complaint\nnope,black,\n"
                     "+86 139 0000 0000,white,vip\n", "utf-8")
    r = ivr(tmp_path, "lists", "import", str(lists), "--errors-file", str(tmp_path / "err.csv"))
    assert r.returncode == 0 and "imported 2" in r.stdout and "lists.csv:3: number" in r.stderr
    bad_rows = (tmp_path / "err.csv").read_text("utf-8-sig").splitlines()
    assert bad_rows[1].startswith("lists.csv,3,number,nope,")
    at = "2026-11-30T10:00:00+08:00"
    r = ivr(tmp_path, "lists", "check", "008613800138000", "--at", at, "--json")
    out = json.loads(r.stdout)
    assert r.returncode == 1 and not out["allowed"]
    assert out["reasons"][0]["code"] == "blacklisted"
    r = ivr(tmp_path, "lists", "check", "+86 139 0000 0000", "--at", at)
    assert r.returncode == 0 and "ALLOW" in r.stdout and "VIP" in r.stdout
    assert ivr(tmp_path, "lists", "add", "13700000000", "--reason", "opt-out").returncode == 0
    assert ivr(tmp_path, "lists", "check", "13700000000", "--at", at).returncode == 1
    assert ivr(tmp_path, "lists", "remove", "13700000000").returncode == 0
    assert ivr(tmp_path, "lists", "check", "13700000000", "--at", at).returncode == 0
    exported = ivr(tmp_path, "lists", "export").stdout.splitlines()
    assert exported[0].startswith("number,list") and len(exported) == 3

    words = tmp_path / "words.txt"
    words.write_text("傻逼\n刷单返利\n", "utf-8")
    r = ivr(tmp_path, "words", "import", str(words), "--category", "abuse")
    assert "imported 2" in r.stdout
    r = ivr(tmp_path, "words", "check", "你 傻.逼 吧", "--json")
    out = json.loads(r.stdout)
    assert r.returncode == 1 and out["blocked"] and out["masked_text"] == "你 *** 吧"
    assert out["hits"][0]["category"] == "abuse"
    assert ivr(tmp_path, "words", "check", "你好").returncode == 0
    assert ivr(tmp_path, "words", "export", "--format", "txt").stdout == "傻逼\n刷单返利\n"
