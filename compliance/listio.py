"""Importing and exporting black/white lists, through the one importer (:mod:`tabular`).

Columns (header in Chinese or English, any order; only the number is required): ``number``
(号码/手机号/电话 ...: any common spelling, ``+86168*`` for a prefix, ``LOW..HIGH`` for a range),
``list`` (黑/白), ``tenant``, ``campaign``, ``reason`` (原因: ``complaint`` or 投诉, 退订, 监管 ...;
other text is kept as the note with reason ``other``), ``note`` (备注), ``source`` and ``expires``
(到期/有效期: a date or time; a date means through the end of that day, in ``tz``; 永久 means
never). A file without a header is one number per line, optionally followed by a reason. Every
bad row is reported with file, line, column and reason; every other row still imports.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime, time, timedelta, tzinfo
from functools import lru_cache
from zoneinfo import ZoneInfo

from compliance.lists import ListEntry, ListKind, ListReason, ListStore, Scope, range_to_prefixes
from compliance.numbers import InvalidNumber, normalize, normalize_prefix
from tabular import CellError, Column, ColumnSpec, Preview, Row, RowError, TableInfo, open_table
from tabular import preview as preview_table
from tabular.table import TableInput

CSV_FIELDS = ("number", "list", "tenant", "campaign", "reason", "source", "expires", "note")
CHUNK_ROWS = 5_000
KEPT_ERRORS = 10_000  # a report keeps this many bad rows (all go to ``on_error``)
NOTE_MAX_CHARS = 200
DEFAULT_TZ = ZoneInfo("Asia/Shanghai")

LIST_SPEC = ColumnSpec((
    Column("number", ("号码", "手机号", "手机号码", "手机", "电话", "电话号码", "联系电话",
                      "联系方式", "移动电话", "被叫号码", "客户号码", "phone", "phone number",
                      "mobile", "msisdn", "tel", "telephone"), required=True, label="number"),
    Column("list", ("名单类型", "黑白名单", "名单", "list type", "kind")),
    Column("tenant", ("租户", "企业", "tenant")),
    Column("campaign", ("活动", "任务", "外呼任务", "campaign")),
    Column("reason", ("原因", "理由", "加入原因", "拉黑原因", "reason")),
    Column("note", ("备注", "说明", "描述", "note", "remark", "comment")),
    Column("source", ("来源", "渠道", "source")),
    Column("expires", ("到期", "到期时间", "到期日", "到期日期", "有效期", "有效期至", "截止日期",
                       "失效时间", "expires", "expiry", "expire", "valid until")),
), positional=("number", "reason"))

KIND_NAMES = {"黑": "black", "黑名单": "black", "白": "white", "白名单": "white",
              "blacklist": "black", "whitelist": "white"}
REASON_WORDS: tuple[tuple[ListReason, tuple[str, ...]], ...] = (
    (ListReason.COMPLAINT, ("投诉", "complain")),
    (ListReason.OPT_OUT, ("退订", "拒绝", "不再", "勿扰", "免打扰", "拒接", "不要再", "opt")),
    (ListReason.REGULATOR, ("监管", "工信部", "通管局", "12321", "举报")),
    (ListReason.TEST, ("测试",)),
    (ListReason.VIP, ("vip", "贵宾", "重要客户", "大客户")),
    (ListReason.PREMIUM, ("高额", "付费", "增值", "声讯", "高风险号段")),
)
NEVER = {"永久", "长期", "永久有效", "长期有效", "never", "forever", "-"}
_SCIENTIFIC = re.compile(r"^\d(\.\d+)?[eE]\+?\d+$")
_CN_DATE = re.compile(r"^(\d{4})\s*年\s*(\d{1,2})\s*月\s*(\d{1,2})\s*日?(.*)$")


@dataclass(slots=True)
class ListImportReport:
    imported: int = 0
    errors: list[RowError] = field(default_factory=list)  # the first KEPT_ERRORS
    info: TableInfo | None = None
    rows: int = 0
    error_count: int = 0


@lru_cache(maxsize=4096)
def reason_of(text: str) -> tuple[ListReason, str]:
    """(reason, note): ``complaint`` or ``客户投诉`` -> complaint; other text -> other + note."""
    v = text.strip()
    if not v:
        raise ValueError("empty")
    try:
        return ListReason(v.lower()), ""
    except ValueError:
        pass
    low = v.lower()
    for reason, words in REASON_WORDS:
        if any(w in low for w in words):
            return reason, v[:NOTE_MAX_CHARS]
    return ListReason.OTHER, v[:NOTE_MAX_CHARS]


@lru_cache(maxsize=4096)
def parse_expiry(value: str, tz: tzinfo = DEFAULT_TZ) -> datetime | None:
    """``2026-12-31``, ``2026/12/31 18:00``, ``2026年12月31日`` (through the end of that day
    in ``tz``), an ISO time with offset, or 永久/empty for never. ValueError otherwise."""
    v = value.strip()
    if not v or v.lower() in NEVER:
        return None
    m = _CN_DATE.match(v)
    if m:
        v = f"{m[1]}-{int(m[2]):02d}-{int(m[3]):02d}{m[4]}"
    v = v.replace("/", "-").replace(".", "-") if re.match(r"^\d{4}[/.]", v) else v
    date_only = re.fullmatch(r"\d{4}-\d{1,2}-\d{1,2}", v)
    if date_only:
        y, mo, d = (int(x) for x in v.split("-"))
        return datetime.combine(datetime(y, mo, d).date() + timedelta(days=1), time(0), tz)
    dt = datetime.fromisoformat(v)
    return dt if dt.tzinfo else dt.replace(tzinfo=tz)


def _number_cell(raw: str) -> str:
    if _SCIENTIFIC.match(raw):
        raise CellError("number", "written in scientific notation, so the last digits are "
                                  "lost: format the column as text in Excel and export again")
    return raw[:-2] if raw.endswith(".0") and raw[:-2].lstrip("+").isdigit() else raw


def parse_row(row: dict[str, str], default: ListEntry, region: str,
              tz: tzinfo = DEFAULT_TZ) -> list[ListEntry]:
    """One row -> entries (a range becomes several prefixes). Raises :class:`CellError`
    naming the column."""
    raw = _number_cell((row.get("number") or "").strip())
    kind_text = (row.get("list") or "").strip().lower()
    try:
        kind = ListKind(KIND_NAMES.get(kind_text, kind_text) or default.kind)
    except ValueError as e:
        raise CellError("list", "not black or white (黑/白)") from e
    note = (row.get("note") or "").strip()[:NOTE_MAX_CHARS]
    reason = default.reason
    if (row.get("reason") or "").strip():
        reason, reason_note = reason_of(row["reason"])
        note = note or reason_note
    tenant = (row.get("tenant") or "").strip() or default.scope.tenant
    campaign = (row.get("campaign") or "").strip() or default.scope.campaign
    try:
        scope = Scope(tenant, campaign)
    except ValueError as e:
        raise CellError("campaign" if campaign else "tenant", str(e).split(": ", 1)[-1]) from e
    try:
        expires = parse_expiry(row.get("expires") or "", tz) or default.expires
    except ValueError as e:
        raise CellError("expires", "not a date (2026-12-31, 2026/12/31, 2026年12月31日) "
                                   "or 永久") from e
    base = _base(default, kind=kind, reason=reason, scope=scope, note=note or default.note,
                 source=(row.get("source") or "").strip() or default.source, expires=expires)
    if not raw:
        raise CellError("number", "empty")
    try:
        if ".." in raw:
            lo, _, hi = raw.partition("..")
            return [replace(base, target=p, is_prefix=True) for p in range_to_prefixes(lo, hi)]
        if raw.endswith("*"):
            return [replace(base, target=normalize_prefix(raw[:-1]), is_prefix=True)]
        return [replace(base, target=normalize(raw, region), is_prefix=False)]
    except InvalidNumber as e:
        raise CellError("number", e.reason) from e


@lru_cache(maxsize=1024)
def _base(default: ListEntry, *, kind: ListKind, reason: ListReason, scope: Scope, note: str,
          source: str, expires: datetime | None) -> ListEntry:
    """Rows of one file mostly share everything but the number: build that part once."""
    return replace(default, kind=kind, reason=reason, scope=scope, note=note, source=source,
                   expires=expires)


def row_checker(default: ListEntry, region: str,
                tz: tzinfo = DEFAULT_TZ) -> Callable[[Row], object]:
    return lambda row: parse_row(row.values, default, region, tz)


async def import_table(store: ListStore, source: TableInput, *, default: ListEntry,
                       region: str = "CN", tz: tzinfo = DEFAULT_TZ, name: str | None = None,
                       encoding: str | None = None, sheet: str | None = None,
                       on_error: Callable[[RowError], object] | None = None,
                       refuse: Callable[[ListEntry], str | None] | None = None,
                       ) -> ListImportReport:
    """Stream a list file (CSV/TSV/text in any encoding, .xlsx) into ``store`` in chunks.

    Bad rows go to ``on_error`` (every one) and the report (the first ``KEPT_ERRORS``, and the
    count), with file, line, column and reason: memory stays bounded however bad the file.
    ``refuse`` may reject a parsed row with a reason (e.g. a tenant scope the importer may not
    write); such a row is a bad row like any other.
    Raises :class:`tabular.TableError` when the file as a whole cannot be read.
    """
    report = ListImportReport()
    chunk: list[ListEntry] = []

    def bad(err: RowError) -> None:
        report.error_count += 1
        if len(report.errors) < KEPT_ERRORS:
            report.errors.append(err)
        if on_error is not None:
            on_error(err)

    with open_table(source, LIST_SPEC, name=name, encoding=encoding, sheet=sheet) as table:
        report.info = table.info
        for item in table:
            if isinstance(item, RowError):
                bad(item)
                continue
            try:
                entries = parse_row(item.values, default, region, tz)
                why = next((w for w in map(refuse, entries) if w), None) if refuse else None
                if why:
                    raise CellError("tenant", why)
                chunk += entries
            except CellError as e:
                bad(item.error(e))
            if len(chunk) >= CHUNK_ROWS:
                report.imported += await store.add(chunk)
                chunk = []
        report.rows = table.rows_read
    if chunk:
        report.imported += await store.add(chunk)
    return report


def preview_import(source: TableInput, *, default: ListEntry, region: str = "CN",
                   tz: tzinfo = DEFAULT_TZ, rows: int = 10, name: str | None = None,
                   encoding: str | None = None, sheet: str | None = None) -> Preview:
    """What :func:`import_table` would do, without storing anything."""
    return preview_table(source, LIST_SPEC, rows=rows, check=row_checker(default, region, tz),
                         name=name, encoding=encoding, sheet=sheet)


def entry_row(e: ListEntry) -> list[str]:
    target = f"+{e.target}*" if e.is_prefix else e.target
    return [target, e.kind.value, e.scope.tenant or "", e.scope.campaign or "", e.reason.value,
            e.source, e.expires.isoformat() if e.expires else "", e.note]


__all__ = ["CSV_FIELDS", "LIST_SPEC", "ListImportReport", "entry_row", "import_table",
           "parse_expiry", "parse_row", "preview_import", "reason_of"]
