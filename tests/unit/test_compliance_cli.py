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


def test_old_databases_get_the_new_columns(tmp_path: Path) -> None:
    """A database created before notes, pinyin modes and initials existed still opens, keeps
    its rows (an old ``pinyin`` flag still means homophones) and takes the new fields."""
    import sqlite3

    path = tmp_path / "old.sqlite"
    with sqlite3.connect(path) as con:
        con.execute("CREATE TABLE compliance_words (id INTEGER PRIMARY KEY, tenant VARCHAR(64), "
                    "term VARCHAR(256), category VARCHAR(32), severity INTEGER, action VARCHAR(8),"
                    " pinyin BOOLEAN, allow BOOLEAN, UNIQUE (tenant, term))")
        insert = "INSERT INTO compliance_words VALUES (?, '', ?, ?, ?, 'block', ?, 0)"
        con.execute(insert, (1, "傻逼", "abuse", 4, 1))
        con.execute(insert, (2, "赌博", "fraud", 3, 0))
        con.execute("CREATE TABLE compliance_list_entries (id INTEGER PRIMARY KEY, "
                    "kind VARCHAR(8), scope VARCHAR(160), target VARCHAR(20), is_prefix BOOLEAN, "
                    "reason VARCHAR(16), source VARCHAR(128), expires DATETIME, "
                    "UNIQUE (kind, scope, target, is_prefix))")
        con.execute("INSERT INTO compliance_list_entries VALUES (1, 'black', 'global', "
                    "'+8613800138000', 0, 'complaint', 'old', NULL)")
    db = open_database(f"sqlite:///{path}")
    words = {t.text: t for t in SqlWordStore(db).all_terms()}
    assert words["傻逼"].pinyin is PinyinMode.HOMOPHONE and words["赌博"].pinyin is None
    store = SqlListStore(db)
    (old,) = store.match_sync(ListKind.BLACK, "+8613800138000", [Scope()], NOW)
    assert old.note == "" and old.source == "old"
    store.add_sync([ListEntry(ListKind.BLACK, "+8613900139000", note="客户多次投诉")])
    (new,) = store.match_sync(ListKind.BLACK, "+8613900139000", [Scope()], NOW)
    assert new.note == "客户多次投诉"
    SqlWordStore(db).add_terms([Term("刷单", pinyin=PinyinMode.SPELLED, initials=True)])
    assert {t.text: t for t in SqlWordStore(db).all_terms()}["刷单"].initials


XLSX_ROWS = [["2026年投诉黑名单"], [], ["手机号码", "原因", "备注", "有效期"],
             [13800138000.0, "客户投诉", "多次来电", "2026/12/31"],
             [8613900139000, "退订", "", "永久"], ["1380013", "测试", "", ""]]


def _xlsx(path: Path) -> Path:
    import xlsxwriter

    book = xlsxwriter.Workbook(str(path))
    sheet = book.add_worksheet()
    sheet.merge_range("A1:D1", XLSX_ROWS[0][0])
    for r, row in enumerate(XLSX_ROWS[2:], start=2):
        for c, v in enumerate(row):
            if isinstance(v, float | int):
                sheet.write_number(r, c, v)
            else:
                sheet.write_string(r, c, v)
    book.close()
    return path


@pytest.mark.slow
def test_cli_imports_users_spreadsheets_without_tracebacks(tmp_path: Path) -> None:
    xlsx = _xlsx(tmp_path / "黑名单.xlsx")
    r = ivr(tmp_path, "lists", "import", str(xlsx), "--preview")
    assert r.returncode == 0, r.stderr
    assert "header on line 3: number <- '手机号码'" in r.stdout
    assert "3 data row(s), 1 bad" in r.stdout and "nothing imported" in r.stdout
    assert "黑名单.xlsx:6: 手机号码 '1380013'" in r.stderr
    assert ivr(tmp_path, "lists", "export").stdout.count("\n") == 1  # preview stored nothing
    r = ivr(tmp_path, "lists", "import", str(xlsx))
    assert r.returncode == 0 and "imported 2" in r.stdout and "Traceback" not in r.stderr
    exported = ivr(tmp_path, "lists", "export").stdout
    assert "+8613800138000,black,,,complaint,黑名单.xlsx,2026-12-31T16:00:00+00:00,多次来电" \
        in exported  # 13800138000.0 stayed a number; the date means through that day in China

    gb = tmp_path / "敏感词.csv"
    gb.write_bytes("敏感词,类别,级别,处理方式,拼音\r\n赌博,涉诈,高,拦截,\r\n傻逼,辱骂,中,替换,同音\r\n"
                   "坏词,天气,3,拦截,\r\n".encode("gb18030"))
    r = ivr(tmp_path, "words", "import", str(gb))
    assert r.returncode == 0 and "imported 2 term(s), 1 bad row(s)" in r.stdout
    assert "敏感词.csv:4: 类别 '天气': not one of" in r.stderr
    r = ivr(tmp_path, "words", "check", "来玩du博", "--json")
    assert r.returncode == 1 and json.loads(r.stdout)["hits"][0]["term"] == "赌博"

    for bad, message in [(b"", "the file is empty"), (b"\xd0\xcf\x11\xe0" + bytes(600), ".xls"),
                         ("姓名,地址\n张三,北京\n".encode(), "no column for number")]:
        path = tmp_path / "bad.csv"
        path.write_bytes(bad)
        r = ivr(tmp_path, "lists", "import", str(path))
        assert r.returncode == 2 and message in r.stderr and "Traceback" not in r.stderr
    r = ivr(tmp_path, "words", "import", str(tmp_path / "missing.csv"))
    assert r.returncode == 2 and "No such file" in r.stderr and "Traceback" not in r.stderr
