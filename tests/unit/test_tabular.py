"""The one importer, fed files written the way users' tools write them: Excel's "CSV" on Chinese
Windows (GBK, CRLF, no BOM), "CSV UTF-8" (BOM), "Unicode text" (UTF-16 LE, tabs), .xlsx with a
merged title and numbers stored as numbers, Big5 and Western exports, and broken files."""

from __future__ import annotations

import csv
import io
import tracemalloc
import zipfile
from datetime import datetime
from pathlib import Path

import pytest
import xlsxwriter

from tabular import (
    CellError,
    Column,
    ColumnSpec,
    Row,
    RowError,
    TableError,
    cell_text,
    header_key,
    open_table,
    preview,
    read_table,
)
from tabular.encoding import BLOCK_BYTES

SPEC = ColumnSpec((
    Column("number", ("号码", "手机号", "手机号码", "电话", "联系电话", "phone", "mobile"),
           required=True),
    Column("reason", ("原因", "理由")),
    Column("note", ("备注", "说明", "remark")),
    Column("expires", ("到期", "有效期", "到期时间", "expiry")),
), positional=("number", "reason"))
HEADER_ONLY = ColumnSpec(SPEC.columns)  # a header row is required

ROWS = [["号码", "原因", "备注", "到期"],
        ["13800138000", "投诉", "客户多次投诉, 要求不再来电", "2026-12-31"],
        ["139 0013 9000", "退订", "", ""],
        ["", "测试", "号码为空", ""],
        ["+86 137 0000 0000", "测试", "引号\"和换行\n都在", ""]]


def excel_csv(rows: list[list[str]], *, delimiter: str = ",") -> str:
    """What Excel writes: CRLF line ends, quotes only where needed."""
    buf = io.StringIO()
    csv.writer(buf, delimiter=delimiter, lineterminator="\r\n").writerows(rows)
    return buf.getvalue()


def good(items: list[Row | RowError]) -> list[dict[str, str]]:
    return [i.values for i in items if isinstance(i, Row)]


def bad(items: list[Row | RowError]) -> list[RowError]:
    return [i for i in items if isinstance(i, RowError)]


@pytest.mark.parametrize(("label", "data", "encoding", "fmt"), [
    ("Excel CSV on Chinese Windows", excel_csv(ROWS).encode("gb18030"), "gb18030", "csv"),
    ("Excel CSV UTF-8", ("\ufeff" + excel_csv(ROWS)).encode("utf-8"), "utf-8-sig", "csv"),
    ("Notepad UTF-8", excel_csv(ROWS).encode("utf-8"), "utf-8", "csv"),
    ("Excel Unicode text", "\ufeff".encode("utf-16-le")
     + excel_csv(ROWS, delimiter="\t").encode("utf-16-le"), "utf-16", "tsv"),
    ("Taiwan Excel CSV", excel_csv([["電話", "原因", "備註", "到期"], ["0912345678", "客戶投訴",
                                    "不要再打", ""]]).encode("big5"), "big5", "csv"),
])
def test_users_exports_decode_and_map(label: str, data: bytes, encoding: str, fmt: str) -> None:
    p = preview(data, SPEC, name="list.csv")
    assert (p.info.encoding, p.info.format) == (encoding, fmt), label
    assert p.info.header_line == 1
    if encoding == "big5":
        assert p.rows[0].values["number"] == "0912345678"
        assert p.rows[0].values["reason"] == "客戶投訴"
        return
    assert p.info.columns == {"number": "号码", "reason": "原因", "note": "备注", "expires": "到期"}
    assert [r.values["number"] for r in p.rows] == ["13800138000", "139 0013 9000",
                                                    "+86 137 0000 0000"]
    assert p.rows[0].values["note"] == "客户多次投诉, 要求不再来电"
    assert p.rows[2].values["note"] == "引号\"和换行\n都在"  # quoted cell across two lines
    (err,) = p.errors
    assert (err.file, err.line, err.column, err.reason) == ("list.csv", 4, "号码", "empty")
    assert str(err) == "list.csv:4: 号码: empty"
    assert (p.row_count, p.error_count) == (4, 1)


def test_line_numbers_count_physical_lines_after_a_multiline_cell() -> None:
    rows = [*ROWS, ["12", "x", "", ""]]
    items = list(read_table(excel_csv(rows).encode("gb18030"), SPEC))
    with open_table(excel_csv(rows).encode("gb18030"), SPEC) as t:
        lines = [i.line for i in t]
    assert lines == [2, 3, 4, 5, 7]  # the quoted note spans lines 5-6
    assert len(good(items)) == 4


def test_xlsx_with_merged_title_numbers_as_numbers_and_dates(tmp_path: Path) -> None:
    path = tmp_path / "黑名单.xlsx"
    book = xlsxwriter.Workbook(str(path))
    sheet = book.add_worksheet("名单")
    sheet.merge_range("A1:D1", "2026年客户黑名单（内部资料）")
    sheet.merge_range("A2:D2", "导出时间：2026-11-30")
    for col, title in enumerate(["手机号码（必填）", "原因", "备注", "有效期"]):
        sheet.write(2, col, title)
    sheet.write_number(3, 0, 13800138000.0)
    sheet.write(3, 1, "投诉")
    sheet.write_number(3, 2, 3.5)
    day = book.add_format({"num_format": "yyyy-mm-dd"})
    sheet.write_datetime(3, 3, datetime(2026, 12, 31), day)
    sheet.write_number(4, 0, 8613900139000)
    sheet.write_string(5, 0, "013800138000")  # a number kept as text keeps its leading zero
    sheet.write_number(6, 0, 1.3700137e10)  # rewritten below the way a 17-digit writer puts it
    book.close()
    _rewrite_value(path, "13700137000", "1.3700137E10")
    p = preview(path, SPEC)
    assert (p.info.format, p.info.sheet, p.info.header_line, p.info.encoding) == (
        "xlsx", "名单", 3, None)
    assert p.info.columns["number"] == "手机号码（必填）"
    assert [r.values["number"] for r in p.rows] == [
        "13800138000", "8613900139000", "013800138000", "13700137000"]
    assert p.rows[0].values["note"] == "3.5"
    assert p.rows[0].values["expires"] == "2026-12-31"
    assert [r.line for r in p.rows] == [4, 5, 6, 7]  # Excel's own row numbers
    assert not p.errors


def _rewrite_value(path: Path, old: str, new: str) -> None:
    with zipfile.ZipFile(path) as z:
        parts = {n: z.read(n) for n in z.namelist()}
    name = "xl/worksheets/sheet1.xml"
    assert f"<v>{old}</v>".encode() in parts[name]
    parts[name] = parts[name].replace(f"<v>{old}</v>".encode(), f"<v>{new}</v>".encode())
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        for n, data in parts.items():
            z.writestr(n, data)


def test_xlsx_sheet_choice_and_unknown_sheet(tmp_path: Path) -> None:
    path = tmp_path / "book.xlsx"
    book = xlsxwriter.Workbook(str(path))
    book.add_worksheet("说明").write(0, 0, "请在第二个工作表填写")
    data = book.add_worksheet("号码")
    data.write_row(0, 0, ["phone", "remark"])
    data.write_row(1, 0, ["13800138000", "ok"])
    book.close()
    rows = good(list(read_table(path, SPEC, sheet="号码")))
    assert rows == [{"number": "13800138000", "reason": "", "note": "ok", "expires": ""}]
    with pytest.raises(TableError, match="sheet: no sheet named 'x' .*说明, 号码"):
        open_table(path, SPEC, sheet="x")


@pytest.mark.parametrize(("value", "text"), [
    (13800138000.0, "13800138000"), (8.6138001380001e12, "8613800138000.1"),
    (1e16, "10000000000000000"),
    (0.1, "0.1"), (1.5e-7, "0.00000015"), (True, "true"), (None, ""), (42, "42"),
    (datetime(2026, 1, 2, 3, 4), "2026-01-02 03:04:00"), (float("nan"), ""),
])
def test_cell_text_never_scientific(value: object, text: str) -> None:
    assert cell_text(value) == text


def test_headerless_lists_map_by_position_and_skip_comments() -> None:
    items = list(read_table(b"# exported by ops\n13800138000,complaint\n\n13900139000\n", SPEC))
    assert [(v["number"], v["reason"], v["note"]) for v in good(items)] == [
        ("13800138000", "complaint", ""), ("13900139000", "", "")]


def test_whole_line_spec_keeps_commas() -> None:
    words = ColumnSpec((Column("term", ("敏感词",), required=True),), positional=("term",),
                       whole_line=True)
    assert good(list(read_table("加微信,送红包\n赌博\n".encode("gb18030"), words))) == [
        {"term": "加微信,送红包"}, {"term": "赌博"}]


def test_english_headers_and_containment() -> None:
    data = b"Customer Mobile (required),Reason Code,Remark,Whatever\n13800138000,test,hi,x\n"
    p = preview(data, SPEC)
    assert p.info.columns == {"number": "Customer Mobile (required)", "reason": "Reason Code",
                              "note": "Remark"}
    assert p.info.unmapped == ["Whatever"]
    assert header_key(" 手机号码（必填）* ") == "手机号码"


def test_missing_required_column_names_it() -> None:
    with pytest.raises(TableError, match=r"x.csv: line 1: the header row has no column for "
                                         r"number \(号码 / 手机号"):
        open_table("原因,备注\n投诉,x\n".encode("gb18030"), SPEC, name="x.csv")
    with pytest.raises(TableError, match="no header row in the first 20 rows"):
        open_table("姓名\n张三\n".encode(), HEADER_ONLY)


@pytest.mark.parametrize(("data", "message"), [
    (b"", "the file is empty"),
    (b"\r\n  \r\n", "the file is empty"),
    (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(500), r"\.xls.*save it as \.xlsx or CSV"),
    (b"PK\x03\x04garbage", "not a readable .xlsx workbook"),
])
def test_unreadable_files_are_one_clear_error(data: bytes, message: str) -> None:
    with pytest.raises(TableError, match=message):
        open_table(data, SPEC)


def test_missing_file_is_a_table_error(tmp_path: Path) -> None:
    with pytest.raises(TableError, match="No such file"):
        open_table(tmp_path / "nope.csv", SPEC)


def test_a_bad_line_costs_that_line_only() -> None:
    data = ("号码,备注\n13800138000,好\n".encode() + "13900139000,坏\n".encode("gb18030")
            + "13700137000,好\n".encode())
    items = list(read_table(data, SPEC, name="mixed.csv"))
    assert [v["number"] for v in good(items)] == ["13800138000", "13700137000"]
    (err,) = bad(items)
    assert err.line == 3 and "not valid UTF-8 text" in err.reason


def test_ascii_start_then_gbk_after_the_first_block() -> None:
    head = b"number,reason\r\n"
    filler = b"13800138000,complaint\r\n" * (BLOCK_BYTES // 23 + 10)
    data = head + filler + "13900139000,用户投诉\r\n".encode("gb18030")
    with open_table(data, SPEC) as t:
        items = list(t)
        assert t.info.encoding == "gb18030"
    assert good(items)[-1]["reason"] == "用户投诉" and not bad(items)


def test_western_export_is_not_read_as_chinese() -> None:
    data = "phone;remark\r\n0049301234567;Müller, Köln\r\n".encode("cp1252")
    p = preview(data, SPEC)
    assert p.info.delimiter == ";" and p.rows[0].values["note"] == "Müller, Köln"


def test_unbalanced_quote_is_one_error_not_a_crash() -> None:
    data = 'number,note\n13800138000,"never closed\n' + "13900139000,x\n" * 20_000
    items = list(read_table(data.encode(), SPEC))
    assert any("unreadable CSV" in e.reason for e in bad(items))
    assert good(items)[0]["number"] == "13800138000" or bad(items)[0].line == 2


def test_caller_checks_become_row_errors_with_the_users_header() -> None:
    def check(row: Row) -> None:
        if not row.values["number"].replace(" ", "").lstrip("+").isdigit():
            raise CellError("number", "not a phone number")

    data = excel_csv([["手机号", "原因"], ["13800138000", "x"], ["abc", "y"]]).encode("gb18030")
    p = preview(data, SPEC, check=check, name="a.csv")
    assert [str(e) for e in p.errors] == ["a.csv:3: 手机号 'abc': not a phone number"]
    assert (p.row_count, p.error_count, len(p.rows)) == (2, 1, 1)


def test_large_file_streams_in_bounded_memory(tmp_path: Path) -> None:
    """100k rows (~4 MB on disk, ~40 MB as Python rows): the peak stays far below either."""
    path = tmp_path / "big.csv"
    with path.open("wb") as f:
        f.write("号码,原因,备注\r\n".encode("gb18030"))
        line = "138{:08d},投诉,客户要求不再来电\r\n"
        for i in range(0, 100_000, 1000):
            f.write("".join(line.format(i + j) for j in range(1000)).encode("gb18030"))
    tracemalloc.start()
    try:
        p = preview(path, SPEC)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert p.row_count == 100_000 and p.error_count == 0
    assert peak < 8 * BLOCK_BYTES, f"peak {peak / 1e6:.1f} MB: the file was not streamed"
