"""Numbers, the compact number set, list entries and scopes, CSV import with bad rows."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from compliance.listio import import_table
from compliance.lists import (
    InMemoryListStore,
    ListEntry,
    ListKind,
    ListReason,
    ListStore,
    Scope,
    range_to_prefixes,
)
from compliance.numbers import InvalidNumber, normalize, normalize_prefix, to_int
from compliance.numberset import Meta, NumberSet
from compliance.sql_store import SqlListStore
from storage import open_database

NOW = datetime(2026, 11, 30, 2, 0, tzinfo=UTC)


@pytest.mark.parametrize("raw", ["138 0013 8000", "+86 13800138000", "008613800138000",
                                 "+86-138-0013-8000", "(+86) 138 0013 8000"])
def test_spellings_are_one_number(raw: str) -> None:
    assert normalize(raw) == "+8613800138000"


def test_region_is_configurable() -> None:
    assert normalize("650 253 0000", "US") == "+16502530000"
    with pytest.raises(InvalidNumber):
        normalize("650 253 0000", "CN")


@pytest.mark.parametrize(("raw", "reason"), [
    ("", "empty"), ("hello", "phone number"), ("1380013", "not a valid number"),
    ("+86 138 0013 8000 9999", "too long"), ("+999 1234567", "plus-sign"),
    ("+86 10000000000", "not a valid number"),
])
def test_invalid_numbers_have_a_reason(raw: str, reason: str) -> None:
    with pytest.raises(InvalidNumber) as exc:
        normalize(raw)
    assert reason in exc.value.reason


def test_prefix_normalisation() -> None:
    assert normalize_prefix("+86 168") == normalize_prefix("0086168") == "86168"
    for bad in ("168x", "", "0168"):
        with pytest.raises(InvalidNumber):
            normalize_prefix(bad)


def test_range_to_prefixes_is_exact() -> None:
    assert range_to_prefixes("+8613800000000", "+8613800019999") == ["861380000", "861380001"]
    got = range_to_prefixes("+86138000000 05", "+86138000000 12")
    assert got == [f"86138000000{n:02d}" for n in range(5, 13)]
    with pytest.raises(InvalidNumber):
        range_to_prefixes("+86138", "+8613")


def test_numberset_add_remove_compact_and_duplicates() -> None:
    ns = NumberSet()
    ns.bulk_load(np.array([30, 10, 20, 10], np.uint64), reason=1)
    ns.add(15, Meta(2, 0, 3))
    ns.add(20, Meta(4, 0, 0))  # newer metadata for an existing number wins
    assert ns.get(15) == Meta(2, 0, 3) and ns.get(20) == Meta(4, 0, 0)
    assert ns.remove(10) and not ns.remove(11)
    assert ns.get(10) is None and len(ns) == 3
    ns.compact()
    assert ns.get(10) is None and ns.get(20) == Meta(4, 0, 0) and len(ns) == 3
    ns.bulk_load(np.array([15], np.uint64), reason=5)
    assert ns.get(15) == Meta(5, 0, 0)
    assert [n for n, _ in ns.items()] == [15, 20, 30]


def test_numberset_contains_many_with_expiry_and_pending() -> None:
    ns = NumberSet()
    ns.bulk_load(np.array([1, 2, 3], np.uint64), reason=0)
    ns.add(4, Meta(0, 100, 0))  # expires at t=100
    ns.add(5, Meta(0, 0, 0))
    ns.remove(2)
    got = ns.contains_many(np.array([1, 2, 3, 4, 5, 6], np.uint64), now=50)
    assert got.tolist() == [True, False, True, True, True, False]
    assert ns.contains_many(np.array([4], np.uint64), now=100).tolist() == [False]


async def scopes_prefixes_expiry(store: ListStore) -> None:
    n = "+8613800138000"
    await store.add([
        ListEntry(ListKind.BLACK, n, scope=Scope("acme"), reason=ListReason.COMPLAINT),
        ListEntry(ListKind.BLACK, "86138001", is_prefix=True, reason=ListReason.REGULATOR),
        ListEntry(ListKind.BLACK, n, scope=Scope("acme", "c1"), reason=ListReason.TEST,
                  expires=NOW - timedelta(seconds=1)),
        ListEntry(ListKind.WHITE, n, scope=Scope("other"), reason=ListReason.VIP),
        ListEntry(ListKind.WHITE, "8613800138", is_prefix=True, scope=Scope("acme"),
                  reason=ListReason.TEST),
    ])
    hits = await store.match(ListKind.BLACK, n, Scope("acme", "c1").chain(), NOW)
    assert sorted(e.reason for e in hits) == [ListReason.COMPLAINT, ListReason.REGULATOR]
    assert [e.reason for e in await store.match(ListKind.BLACK, n, [Scope()], NOW)] == [
        ListReason.REGULATOR]
    assert await store.match(ListKind.WHITE, n, [Scope()], NOW) == []
    both = await store.match_kinds((ListKind.BLACK, ListKind.WHITE), n,
                                   Scope("acme", "c1").chain(), NOW)
    assert sorted(e.reason for e in both[ListKind.BLACK]) == [
        ListReason.COMPLAINT, ListReason.REGULATOR]
    assert [(e.target, e.is_prefix) for e in both[ListKind.WHITE]] == [("8613800138", True)]
    assert await store.match_kinds((ListKind.WHITE,), "+8613900139000", Scope("acme").chain(),
                                   NOW) == {ListKind.WHITE: []}
    assert await store.remove(ListKind.BLACK, Scope(), "86138001", True)
    assert not await store.remove(ListKind.BLACK, Scope(), "86138001", True)
    assert await store.match(ListKind.BLACK, n, [Scope()], NOW) == []


async def test_store_scopes_prefixes_expiry() -> None:
    await scopes_prefixes_expiry(InMemoryListStore())


async def test_sql_store_scopes_prefixes_expiry(db_url: str) -> None:
    """The same lookups on SQLite and a real PostgreSQL (one prebuilt query per dial)."""
    await scopes_prefixes_expiry(SqlListStore(open_database(db_url)))


async def test_filter_many_matches_exact_and_prefix() -> None:
    store = InMemoryListStore()
    store.bulk_load(ListKind.BLACK, np.array([8613800138000], np.uint64))
    await store.add([ListEntry(ListKind.BLACK, "86139", is_prefix=True)])
    contacts = np.array([8613800138000, 8613900000001, 8613700000000, 16502530000], np.uint64)
    mask = store.filter_many(ListKind.BLACK, contacts, [Scope()], NOW)
    assert mask.tolist() == [True, True, False, False]


async def test_export_round_trips_entries() -> None:
    store = InMemoryListStore()
    entries = [ListEntry(ListKind.BLACK, "+8613800138000", scope=Scope("t", "c"),
                         reason=ListReason.OPT_OUT, source="call:1",
                         expires=datetime(2027, 1, 1, tzinfo=UTC)),
               ListEntry(ListKind.WHITE, "86139", is_prefix=True, reason=ListReason.TEST)]
    await store.add(entries)
    assert sorted([e async for e in store.export()], key=lambda e: e.target) == entries


async def test_csv_import_reports_bad_rows_and_keeps_the_rest() -> None:
    store = InMemoryListStore()
    lines = [
        "number,list,tenant,campaign,reason,source,expires\n",
        "138 0013 8000,black,,,complaint,,\n",
        "not a number,black,,,,,\n",
        "+86 139 0000 0000,white,acme,,vip,,\n",
        "13900000001,grey,,,,,\n",
        "13900000002,black,,,angry,,\n",
        "13900000003,black,,,,,tomorrow\n",
        "+86168*,black,,,premium,,\n",
        "+8613700000000..+8613700000099,black,,,regulator,,\n",
        "13900000004,black,,c1,,,\n",
    ]
    default = ListEntry(ListKind.BLACK, "", source="upload.csv")
    report = await import_table(store, "".join(lines).encode(), default=default)
    assert report.imported == 5  # "angry" is free text: reason other, kept as the note
    assert [(e.line, e.column) for e in report.errors] == [
        (3, "number"), (5, "list"), (7, "expires"), (10, "campaign")]
    hit = await store.match(ListKind.BLACK, "+8613700000042", [Scope()], NOW)
    assert hit[0].target == "86137000000" and hit[0].is_prefix
    (w,) = await store.match(ListKind.WHITE, "+8613900000000", [Scope("acme")], NOW)
    assert w.reason is ListReason.VIP and w.source == "upload.csv"


async def test_bare_number_list_imports() -> None:
    store = InMemoryListStore()
    report = await import_table(store, b"13800138000\n\nxyz\n13800138001\n",
                                default=ListEntry(ListKind.BLACK, ""))
    assert report.imported == 2 and [e.line for e in report.errors] == [3]
    assert to_int("+8613800138001") in {n for n, _ in store.number_set(ListKind.BLACK).items()}


async def test_chinese_sheet_values_and_bounded_error_memory(monkeypatch: pytest.MonkeyPatch,
                                                             ) -> None:
    """Chinese list/reason/expiry values; free text is kept as the note; a file full of bad
    rows sends every one to ``on_error`` but the report keeps only the first few."""
    from compliance import listio

    monkeypatch.setattr(listio, "KEPT_ERRORS", 3)
    rows = ["手机号,名单类型,原因,备注,有效期",
            "13800138000,黑名单,用户投诉,,2026年12月31日",
            "13800138001,白,VIP客户,,永久",
            "13800138002,黑,打过三次电话,,2026/12/31 18:00",
            *[f"bad{i},黑,,," for i in range(10)]]
    data = "\r\n".join(rows).encode("gb18030")
    seen: list[str] = []
    store = InMemoryListStore()
    report = await listio.import_table(store, data, default=ListEntry(ListKind.BLACK, ""),
                                       on_error=lambda e: seen.append(str(e)))
    assert report.imported == 3 and report.error_count == 10
    assert len(report.errors) == 3 and len(seen) == 10
    assert seen[0].startswith("<upload>:5: 手机号 'bad0'")
    sql = [e for e in listio.parse_row({"number": "13800138002", "reason": "打过三次电话",
                                        "expires": "2026/12/31 18:00"},
                                       ListEntry(ListKind.BLACK, ""), "CN")]
    assert (sql[0].reason, sql[0].note) == (ListReason.OTHER, "打过三次电话")
    assert sql[0].expires == datetime(2026, 12, 31, 10, 0, tzinfo=UTC)  # 18:00 in China
    (first,) = await store.match(ListKind.BLACK, "+8613800138000", [Scope()], NOW)
    assert first.reason is ListReason.COMPLAINT
    assert first.expires == datetime(2026, 12, 31, 16, 0, tzinfo=UTC)  # end of that day, China
    (vip,) = await store.match(ListKind.WHITE, "+8613800138001", [Scope()], NOW)
    assert vip.reason is ListReason.VIP and vip.expires is None


def test_number_cells_excel_already_broke_are_explained() -> None:
    from compliance.listio import parse_row
    from tabular import CellError

    with pytest.raises(CellError, match="scientific notation"):
        parse_row({"number": "1.38E+10"}, ListEntry(ListKind.BLACK, ""), "CN")
    (e,) = parse_row({"number": "13800138000.0"}, ListEntry(ListKind.BLACK, ""), "CN")
    assert e.target == "+8613800138000"
