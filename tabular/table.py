"""The one importer: a spreadsheet in, rows keyed by the caller's column names out, bad rows as
errors that name the file, the line, the column and the reason.

Every list the product takes from users (black/white lists, sensitive words, campaign contacts,
inspection rules) comes through :func:`open_table`, so they all accept the same files: CSV/TSV
in any encoding users' tools write, and .xlsx. The header row is found among the first rows (an
Excel sheet often has a merged title above it) and mapped through the caller's aliases; files
without a header map their columns by position when the caller allows it. Everything streams:
a million-row file is never held in memory.

Usage::

    spec = ColumnSpec((Column("number", ("号码", "手机号"), required=True), Column("reason")))
    with open_table("list.csv", spec) as table:
        for item in table:
            if isinstance(item, RowError):
                report(item)
                continue
            try:
                use(item.values["number"])
            except CellError as e:
                report(item.error(e))
"""

from __future__ import annotations

import codecs
import io
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import BinaryIO

from tabular.sources import Record, TableError, TextSource, XlsxSource, sniff_format
from tabular.spec import ColumnSpec

HEADER_SEARCH_ROWS = 20  # a header row further down than this is not looked for
TableInput = str | os.PathLike[str] | bytes | BinaryIO


class CellError(ValueError):
    """Raised by a caller's row check: ``column`` is the caller's column name."""

    def __init__(self, column: str, reason: str) -> None:
        super().__init__(f"{column}: {reason}")
        self.column = column
        self.reason = reason


@dataclass(frozen=True, slots=True)
class RowError:
    """One bad row. ``column`` is the header as the user wrote it (or the caller's name)."""

    file: str
    line: int
    column: str
    value: str
    reason: str
    field: str = ""  # the caller's column name

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}"
        what = f"{self.column} {self.value!r}" if self.value else self.column
        return f"{where}: {what}: {self.reason}" if what else f"{where}: {self.reason}"


@dataclass(slots=True)
class TableInfo:
    """What was detected, for a preview or an import summary."""

    name: str
    format: str  # csv, tsv, text or xlsx
    encoding: str | None  # None for xlsx
    delimiter: str | None
    sheet: str | None
    header_line: int | None  # None: no header row, columns by position
    columns: dict[str, str]  # caller's column name -> the header text it came from
    unmapped: list[str] = field(default_factory=list)  # headers nobody asked for


@dataclass(frozen=True, slots=True)
class Row:
    line: int
    values: dict[str, str]  # every column of the spec -> stripped cell text ("" when absent)
    cells: tuple[str, ...]  # every cell of the row as read, for an errors file
    table: Table = field(repr=False, compare=False)

    def error(self, exc: CellError) -> RowError:
        return self.table.error_at(self.line, exc.column, self.values.get(exc.column, ""),
                                   exc.reason)


def _header_like(rows: list[Record]) -> bool:
    """A first row of several text cells without a digit (``姓名,地址``): a header we do not
    understand rather than data, even where files without a header are allowed."""
    first = [c.strip() for c in rows[0].cells if c.strip()]
    return len(first) >= 2 and not any(ch.isdigit() for c in first for ch in c)


def _open(source: TableInput) -> tuple[BinaryIO, str, bool]:
    if isinstance(source, bytes | bytearray):
        return io.BytesIO(source), "<upload>", True
    if isinstance(source, str | os.PathLike):
        path = Path(source)
        try:
            return path.open("rb"), path.name, True
        except OSError as e:
            raise TableError(f"{path}: {e.strerror or e}") from e
    if not source.seekable():
        return io.BytesIO(source.read()), getattr(source, "name", "<stream>"), True
    return source, str(getattr(source, "name", "<stream>")), False


class Table:
    """An open table; iterate for :class:`Row` and :class:`RowError` items in file order."""

    def __init__(self, source: TableInput, spec: ColumnSpec, *, name: str | None = None,
                 encoding: str | None = None, sheet: str | None = None) -> None:
        self.spec = spec
        self._stream, default_name, self._owned = _open(source)
        self.name = name or default_name
        try:
            self._setup(encoding, sheet)
        except TableError as e:
            self.close()
            raise TableError(f"{self.name}: {e}") from e
        except BaseException:
            self.close()
            raise

    def _setup(self, encoding: str | None, sheet: str | None) -> None:
        if encoding is not None:
            try:
                codecs.lookup(encoding)
            except LookupError as e:
                raise TableError(f"encoding: {encoding!r} is not an encoding this system "
                                 "knows (e.g. utf-8, gb18030, big5)") from e
        head = self._stream.read(8)
        self._stream.seek(0)
        if not head:
            raise TableError("the file is empty")
        self._xlsx: XlsxSource | None = None
        self._buffer: list[Record] = []
        src: TextSource | XlsxSource
        if sniff_format(head) == "xlsx":
            src = self._xlsx = XlsxSource(self._stream, sheet=sheet)
        else:
            src = TextSource(self._stream, encoding=encoding, whole_line=False)
        self._fill(src)
        header_line, index, unmapped = self._find_header()
        if header_line is None and self.spec.whole_line and src.delimiter is not None:
            self._stream.seek(0)  # no header: a word list, one value per line, commas and all
            src = TextSource(self._stream, encoding=encoding, whole_line=True)
            self._fill(src)
        self._index = index
        self.info = TableInfo(
            self.name, src.format, src.encoding, src.delimiter, getattr(src, "sheet", None),
            header_line, {}, unmapped)
        if header_line is not None:
            header = next(r for r in self._buffer if r.line == header_line).cells
            self.info.columns = {name: header[i].strip() for name, i in index.items()}
            self._buffer = [r for r in self._buffer if r.line > header_line]
        else:
            self.info.columns = {name: name for name in index}
        self.rows_read = 0
        self.error_count = 0

    def _fill(self, src: TextSource | XlsxSource) -> None:
        self._source = src
        self._records = src.records()
        self._buffer = []
        for rec in self._records:
            self._buffer.append(rec)
            if len(self._buffer) >= HEADER_SEARCH_ROWS:
                break

    def _find_header(self) -> tuple[int | None, dict[str, int], list[str]]:
        spec = self.spec
        required = {c.name for c in spec.required}
        best: tuple[int, Record, dict[str, int]] | None = None
        partial: tuple[Record, dict[str, int]] | None = None
        for rec in self._buffer:
            if not any(c.strip() for c in rec.cells):
                continue
            found = spec.match_header(rec.cells)
            if found and required <= set(found):
                if best is None or len(found) > best[0]:
                    best = (len(found), rec, found)
            elif len(found) >= 2 and partial is None:
                partial = (rec, found)
        if best is not None:
            _, rec, found = best
            unmapped = [c.strip() for i, c in enumerate(rec.cells)
                        if c.strip() and i not in found.values()]
            return rec.line, found, unmapped
        rows = [r for r in self._buffer if any(c.strip() for c in r.cells)]
        if partial is None and rows and not spec.whole_line and _header_like(rows):
            partial = (rows[0], {})
        if partial is not None:
            rec, found = partial
            absent = sorted(required - set(found))
            missing = ", ".join(spec.describe(spec.column(n)) for n in absent)
            raise TableError(f"line {rec.line}: the header row has no column for {missing}; "
                             f"it has: {', '.join(c.strip() for c in rec.cells if c.strip())}")
        if spec.positional:
            return None, {name: i for i, name in enumerate(spec.positional)}, []
        wanted = "; ".join(spec.describe(c) for c in spec.required) or "any known column"
        raise TableError(f"no header row in the first {HEADER_SEARCH_ROWS} rows: expected a "
                         f"column named {wanted}")

    def __iter__(self) -> Iterator[Row | RowError]:
        index = self._index
        required = [c.name for c in self.spec.required]
        comment_ok = self.info.header_line is None
        blank = {c.name: "" for c in self.spec.columns}
        for rec in self._all_records():
            if not any(c.strip() for c in rec.cells):
                if rec.problem:
                    yield self._count(self.error_at(rec.line, "", "", rec.problem))
                continue
            if comment_ok and rec.cells[0].lstrip().startswith("#"):
                continue
            self.rows_read += 1
            if rec.problem:
                yield self._count(self.error_at(rec.line, "", "", rec.problem))
                continue
            values = dict(blank)
            for name, i in index.items():
                if i < len(rec.cells):
                    values[name] = rec.cells[i].strip()
            empty = next((n for n in required if not values[n]), None)
            if empty is not None:
                yield self._count(self.error_at(rec.line, empty, "", "empty"))
                continue
            yield Row(rec.line, values, tuple(rec.cells), self)

    def _all_records(self) -> Iterator[Record]:
        buffered, self._buffer = self._buffer, []
        yield from buffered
        yield from self._records
        self.info.encoding = self._source.encoding  # decided late for files ASCII at the start

    def _count(self, err: RowError) -> RowError:
        self.error_count += 1
        return err

    def error_at(self, line: int, column: str, value: str, reason: str) -> RowError:
        """A :class:`RowError` for ``column`` (the caller's name) on ``line`` of this file."""
        shown = self.info.columns.get(column) or (
            self.spec.column(column).title if self.spec.has(column) else column)
        return RowError(self.name, line, shown, value, reason, column)

    def check(self, row: Row, fn: Callable[[Row], object]) -> RowError | None:
        """Run a caller's row check; a :class:`CellError` becomes this file's RowError."""
        try:
            fn(row)
        except CellError as e:
            self.error_count += 1
            return row.error(e)
        return None

    def close(self) -> None:
        if getattr(self, "_xlsx", None) is not None:
            assert self._xlsx is not None
            self._xlsx.close()
        if self._owned:
            self._stream.close()

    def __enter__(self) -> Table:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()


def open_table(source: TableInput, spec: ColumnSpec, *, name: str | None = None,
               encoding: str | None = None, sheet: str | None = None) -> Table:
    """Open a CSV/TSV/text file or .xlsx (path, bytes or binary stream) for ``spec``.

    Raises :class:`TableError` for a file that cannot be read at all; bad rows come out of the
    iteration as :class:`RowError` and never stop it.
    """
    return Table(source, spec, name=name, encoding=encoding, sheet=sheet)


def read_table(source: TableInput, spec: ColumnSpec, *, name: str | None = None,
               encoding: str | None = None, sheet: str | None = None,
               ) -> Iterator[Row | RowError]:
    """Rows and errors of a whole file, closing it at the end."""
    with open_table(source, spec, name=name, encoding=encoding, sheet=sheet) as table:
        yield from table


@dataclass(slots=True)
class Preview:
    """What an import would do: the first rows, what was detected, and the whole file's counts."""

    info: TableInfo
    rows: list[Row]
    errors: list[RowError]  # the first ``max_errors``
    row_count: int  # data rows (good and bad)
    error_count: int


def preview(source: TableInput, spec: ColumnSpec, *, rows: int = 10, max_errors: int = 20,
            check: Callable[[Row], object] | None = None, name: str | None = None,
            encoding: str | None = None, sheet: str | None = None) -> Preview:
    """Read the whole file (streaming) without applying it: the first ``rows`` good rows, the
    first errors and the counts. ``check`` is the caller's row validation (raises CellError)."""
    with open_table(source, spec, name=name, encoding=encoding, sheet=sheet) as table:
        first: list[Row] = []
        errors: list[RowError] = []
        for item in table:
            if isinstance(item, Row) and check is not None:
                bad = table.check(item, check)
                item = bad if bad is not None else item  # noqa: PLW2901
            if isinstance(item, RowError):
                if len(errors) < max_errors:
                    errors.append(item)
            elif len(first) < rows:
                first.append(item)
        return Preview(table.info, first, errors, table.rows_read, table.error_count)
