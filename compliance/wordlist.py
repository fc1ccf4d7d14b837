"""Word lists: storage, import (any spreadsheet :mod:`tabular` reads) and export, and hot reload
of compiled filters.

Lists change while calls run (ops add a term in the console); a :class:`WordRegistry` compiles one
:class:`WordFilter` per tenant (global terms + the tenant's) and recompiles when the store's
version moves, so a new term applies to the next scan without a restart. Compiling is the only
slow part (seconds for 100k terms), so callers on the event loop run :meth:`WordRegistry.refresh`
in an executor and keep scanning with the previous filter meanwhile.
"""

from __future__ import annotations

import csv
import io
import threading
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from compliance.pinyin import PinyinMode
from compliance.words import CATEGORIES, Action, Term, TermError, WordFilter
from tabular import (
    CellError,
    Column,
    ColumnSpec,
    Row,
    RowError,
    TableError,
    TableInfo,
    open_table,
)
from tabular.table import TableInput

CSV_FIELDS = ("term", "category", "severity", "action", "tenant", "pinyin", "allow", "initials")

_TERM = Column("term", ("敏感词", "关键词", "违禁词", "屏蔽词", "词语", "词条", "词", "word",
                        "keyword"), required=True, label="term")
WORD_SPEC = ColumnSpec((
    _TERM,
    Column("category", ("类别", "分类", "类型", "type")),
    Column("severity", ("级别", "等级", "严重程度", "风险等级", "level")),
    Column("action", ("处理方式", "处置方式", "处置", "动作", "操作")),
    Column("tenant", ("租户", "客户")),
    Column("pinyin", ("拼音", "拼音匹配")),
    Column("initials", ("首字母", "拼音首字母")),
    Column("allow", ("白名单", "放行", "允许", "allowlist")),
), positional=("term",), whole_line=True)
TXT_SPEC = ColumnSpec((_TERM,), positional=("term",), whole_line=True)

CATEGORY_NAMES = {  # what Chinese lists call our categories
    "政治": "politics", "涉政": "politics", "时政": "politics", "色情": "porn", "涉黄": "porn",
    "低俗": "porn", "暴力": "violence", "暴恐": "violence", "涉恐": "violence", "诈骗": "fraud",
    "欺诈": "fraud", "涉诈": "fraud", "广告": "fraud", "辱骂": "abuse", "谩骂": "abuse",
    "脏话": "abuse", "竞品": "competitor", "竞争对手": "competitor", "自定义": "custom",
    "其他": "custom", "其它": "custom",
}
ACTION_NAMES = {"拦截": "block", "屏蔽": "block", "禁止": "block", "阻断": "block",
                "替换": "mask", "打码": "mask", "掩码": "mask", "脱敏": "mask",
                "标记": "flag", "提示": "flag", "记录": "flag", "仅记录": "flag"}
SEVERITY_NAMES = {"高": 5, "严重": 5, "较高": 4, "中": 3, "一般": 3, "较低": 2, "低": 1}
PINYIN_NAMES = {"自动": "auto", "拼音": "spelled", "同音": "homophone", "同音字": "homophone",
                "关": "off", "关闭": "off"}
YES = {"1", "true", "yes", "y", "是", "开", "√", "✓", "t"}
NO = {"", "0", "false", "no", "n", "否", "关", "×", "f"}


class WordStore(Protocol):
    def all_terms(self) -> list[Term]: ...

    def add_terms(self, terms: Iterable[Term]) -> int: ...

    def remove_term(self, text: str, tenant: str | None) -> bool: ...

    def version(self) -> int: ...


class InMemoryWordStore:
    def __init__(self, terms: Iterable[Term] = ()) -> None:
        self._terms: dict[tuple[str, str | None], Term] = {}
        self._version = 0
        self.add_terms(terms)

    def all_terms(self) -> list[Term]:
        return list(self._terms.values())

    def add_terms(self, terms: Iterable[Term]) -> int:
        n = 0
        for t in terms:
            self._terms[(t.text, t.tenant)] = t
            n += 1
        self._version += 1
        return n

    def remove_term(self, text: str, tenant: str | None) -> bool:
        found = self._terms.pop((text, tenant), None) is not None
        self._version += found
        return found

    def version(self) -> int:
        return self._version


@dataclass(slots=True)
class TermImport:
    """What an import read: the terms, every bad row, and what the file looked like."""

    terms: list[Term] = field(default_factory=list)
    errors: list[RowError] = field(default_factory=list)
    info: TableInfo | None = None
    rows: int = 0


def _flag(value: str, column: str) -> bool:
    v = value.strip().lower()
    if v in NO:
        return False
    if v in YES:
        return True
    raise CellError(column, "not a yes/no value (1/0, yes/no, 是/否)")


def _pinyin(value: str) -> PinyinMode | None:
    v = value.strip().lower()
    if not v:
        return None
    v = PINYIN_NAMES.get(v, v)
    if v in YES:
        return PinyinMode.HOMOPHONE
    if v in NO:
        return PinyinMode.OFF
    try:
        return PinyinMode(v)
    except ValueError as e:
        raise CellError("pinyin", f"not one of {', '.join(m.value for m in PinyinMode)} "
                                  "(or yes/no)") from e


def _severity(value: str, default: int) -> int:
    v = value.strip()
    if not v:
        return default
    if v in SEVERITY_NAMES:
        return SEVERITY_NAMES[v]
    try:
        n = int(float(v))
    except ValueError as e:
        raise CellError("severity", "not a number 1..5 (or 高/中/低)") from e
    if not 1 <= n <= 5:
        raise CellError("severity", "outside 1..5")
    return n


def term_from_row(values: Mapping[str, str], base: Term) -> Term:
    """One row -> a Term; raises :class:`CellError` naming the column."""
    text = values.get("term", "").strip()
    category = values.get("category", "").strip()
    category = CATEGORY_NAMES.get(category, category.lower()) or base.category
    if category not in CATEGORIES:
        raise CellError("category", f"not one of {', '.join(CATEGORIES)}")
    action = values.get("action", "").strip()
    action = ACTION_NAMES.get(action, action.lower()) or base.action.value
    if action not in {a.value for a in Action}:
        raise CellError("action", "not block, mask or flag (拦截/替换/标记)")
    pinyin = _pinyin(values.get("pinyin", ""))
    try:
        return Term(
            text=text, category=category,
            severity=_severity(values.get("severity", ""), base.severity),
            action=Action(action), tenant=values.get("tenant", "").strip() or base.tenant,
            pinyin=pinyin if pinyin is not None else base.pinyin,
            allow=_flag(values.get("allow", ""), "allow") or base.allow,
            initials=_flag(values.get("initials", ""), "initials") or base.initials)
    except TermError as e:
        column, _, reason = str(e).partition(": ")
        raise CellError(column if WORD_SPEC.has(column) else "term", reason) from e


def read_terms(source: TableInput, *, defaults: Term | None = None, fmt: str = "auto",
               name: str | None = None, encoding: str | None = None,
               sheet: str | None = None) -> TermImport:
    """A word list from any file :mod:`tabular` reads: a sheet with a header (``term`` /
    ``敏感词``, category, severity, ...) or one term per line (``fmt="txt"`` forces that).

    Bad rows are reported with file, line, column and reason; the rest still import.
    ``defaults`` gives category/severity/action/tenant/pinyin for cells left empty.
    Raises :class:`tabular.TableError` for a file that cannot be read at all.
    """
    base = defaults or Term("x")
    spec = TXT_SPEC if fmt == "txt" else WORD_SPEC
    out = TermImport()
    with open_table(source, spec, name=name, encoding=encoding, sheet=sheet) as table:
        for item in table:
            if isinstance(item, Row):
                try:
                    out.terms.append(term_from_row(item.values, base))
                except CellError as e:
                    out.errors.append(item.error(e))
            else:
                out.errors.append(item)
        out.info, out.rows = table.info, table.rows_read
    return out


def parse_terms(text: str, *, fmt: str = "auto", defaults: Term | None = None,
                ) -> tuple[list[Term], list[RowError]]:
    """:func:`read_terms` for text already in memory."""
    got = read_terms(text.encode("utf-8"), defaults=defaults, fmt=fmt, name="<text>")
    return got.terms, got.errors


def export_terms(terms: Iterable[Term], *, fmt: str = "csv") -> Iterator[str]:
    """Lines of a CSV (round-trips through :func:`read_terms`) or a TXT list."""
    if fmt == "txt":
        for t in terms:
            yield t.text + "\n"
        return
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(CSV_FIELDS)
    for t in terms:
        w.writerow([t.text, t.category, t.severity, t.action.value, t.tenant or "",
                    t.pinyin.value if t.pinyin else "", int(t.allow), int(t.initials)])
    yield buf.getvalue()


class WordRegistry:
    """Compiled filters per tenant, rebuilt when the store (or the watched file) changes."""

    def __init__(self, store: WordStore, *, words_file: str | Path | None = None,
                 category_pinyin: Mapping[str, PinyinMode] | None = None) -> None:
        self._store = store
        self._category_pinyin = dict(category_pinyin or {})
        self._file = Path(words_file) if words_file else None
        self._file_mtime: float | None = None
        self._file_terms: list[Term] = []
        self._filters: dict[str | None, tuple[int, WordFilter]] = {}
        self._lock = threading.Lock()
        self._generation = 0

    def _stamp(self) -> int:
        return self._store.version() * 1_000_003 + self._generation

    def refresh(self) -> bool:
        """Re-read the watched file if its mtime moved. True when anything will recompile."""
        if self._file is None:
            return False
        try:
            mtime = self._file.stat().st_mtime
        except FileNotFoundError:
            return False
        if mtime == self._file_mtime:
            return False
        try:
            terms = read_terms(self._file).terms
        except TableError:
            return False  # keep the last good list; `ivr words import --preview` says why
        with self._lock:
            self._file_terms, self._file_mtime = terms, mtime
            self._generation += 1
        return True

    def filter_for(self, tenant: str | None = None) -> WordFilter:
        """The filter for ``tenant`` (global + tenant terms), compiled on first use or change."""
        stamp = self._stamp()
        cached = self._filters.get(tenant)
        if cached is not None and cached[0] == stamp:
            return cached[1]
        terms = [t for t in self._store.all_terms() + self._file_terms
                 if t.tenant is None or t.tenant == tenant]
        wf = WordFilter(terms, category_pinyin=self._category_pinyin)
        with self._lock:
            self._filters[tenant] = (stamp, wf)
        return wf
