"""Raw records out of the two kinds of file users upload: delimited text and Excel workbooks.

A record is (line, cells, problem): the physical line (CSV) or row number (XLSX) the user would
look for, the cells as text, and what went wrong reading it, if anything. Header mapping and
row validation happen above, in :mod:`tabular.table`.
"""

from __future__ import annotations

import csv
import math
import zipfile
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, time
from decimal import Decimal
from typing import Any, BinaryIO

from tabular.encoding import PENDING, SAMPLE_BYTES, Encoding, LineDecoder, guess

SNIFF_LINES = 30
DELIMITERS = (",", "\t", ";", "|", "，")  # in order of preference on a tie
XLSX_MAGIC = b"PK\x03\x04"
OLE_MAGIC = b"\xd0\xcf\x11\xe0"  # .xls (Excel 97-2003) and password-protected workbooks


class TableError(Exception):
    """The file as a whole cannot be read (unknown format, no header row, empty ...)."""


@dataclass(frozen=True, slots=True)
class Record:
    line: int
    cells: list[str]
    problem: str | None = None


def sniff_delimiter(lines: list[str]) -> str | None:
    """The separator in the most sample lines (then: the most often the same number of times);
    None when no line holds one (a one-column list)."""
    lines = [ln for ln in lines if ln.strip() and not ln.lstrip().startswith("#")][:SNIFF_LINES]
    best: tuple[int, int, int, str] | None = None
    for rank, delim in enumerate(DELIMITERS):
        counts = [ln.count(delim) for ln in lines]
        holding = sum(1 for n in counts if n)
        if not holding:
            continue
        consistent = max(Counter(n for n in counts if n).values())
        score = (holding, consistent, -rank, delim)
        if best is None or score[:3] > best[:3]:
            best = score
    return best[3] if best else None


class TextSource:
    """CSV, TSV or a plain one-value-per-line text file, in any encoding :mod:`encoding` knows."""

    def __init__(self, stream: BinaryIO, *, encoding: str | None, whole_line: bool) -> None:
        sample = stream.read(SAMPLE_BYTES)
        if not sample.strip():
            raise TableError("the file is empty")
        enc = Encoding(encoding, encoding) if encoding else guess(sample)
        stream.seek(enc.bom)
        self._decoder = LineDecoder(stream, enc)
        codec = "utf-8" if enc.codec == PENDING else enc.codec
        text = sample[enc.bom :].decode(codec, errors="replace")
        self.delimiter = None if whole_line else sniff_delimiter(text.split("\n")[:-1] or [text])
        self.format = {None: "text", "\t": "tsv"}.get(self.delimiter, "csv")

    @property
    def encoding(self) -> str:
        return self._decoder.encoding.name

    def records(self) -> Iterator[Record]:
        if self.delimiter is None:
            for n, (text, problem) in enumerate(self._decoder, 1):
                yield Record(n, [text.rstrip("\r\n")], problem)
            return
        problems: dict[int, str] = {}
        count = 0

        def lines() -> Iterator[str]:
            nonlocal count
            for text, problem in self._decoder:
                count += 1
                if problem:
                    problems[count] = problem
                yield text

        reader = csv.reader(lines(), delimiter=self.delimiter)
        start = 1
        while True:
            try:
                cells = next(reader)
            except StopIteration:
                return
            except csv.Error as e:
                yield Record(start, [], f"unreadable CSV ({e}); lines {start}-{count} skipped")
                start = count + 1
                continue
            problem = next((problems.pop(n) for n in range(start, count + 1) if n in problems),
                           None)
            yield Record(start, cells, problem)
            start = count + 1


def cell_text(value: Any) -> str:
    """An Excel cell as the text the user typed: 13800138000.0 -> ``13800138000`` (never
    ``1.38e10``), a date -> ``2025-12-31``, booleans -> ``true``/``false``."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            return ""
        if value.is_integer():
            return str(int(value))
        text = repr(value)
        return format(Decimal(text), "f") if "e" in text else text
    if isinstance(value, datetime):
        if value.time() == time(0):
            return value.date().isoformat()
        return value.isoformat(sep=" ")
    if isinstance(value, date | time):
        return value.isoformat()
    return str(value)


class XlsxSource:
    """The first sheet (or ``sheet``) of an .xlsx, streamed by openpyxl's read-only mode."""

    format = "xlsx"
    delimiter = None
    encoding = None

    def __init__(self, stream: BinaryIO, *, sheet: str | None) -> None:
        import openpyxl  # noqa: PLC0415 - only when a workbook comes in
        from openpyxl.utils.exceptions import InvalidFileException  # noqa: PLC0415

        try:
            self._book = openpyxl.load_workbook(stream, read_only=True, data_only=True)
        except (zipfile.BadZipFile, InvalidFileException, KeyError, OSError, ValueError) as e:
            raise TableError(f"not a readable .xlsx workbook ({e})") from e
        names = self._book.sheetnames
        if sheet is not None and sheet not in names:
            self._book.close()
            raise TableError(f"sheet: no sheet named {sheet!r} (sheets: {', '.join(names)})")
        self._sheet = self._book[sheet] if sheet else self._book.worksheets[0]
        self.sheet = self._sheet.title
        # Some writers record a wrong sheet size; without this, read-only mode cuts columns.
        reset = getattr(self._sheet, "reset_dimensions", None)
        if reset is not None:
            reset()

    def records(self) -> Iterator[Record]:
        for n, row in enumerate(self._sheet.iter_rows(values_only=True), 1):
            yield Record(n, [cell_text(v) for v in row])

    def close(self) -> None:
        self._book.close()


def sniff_format(head: bytes) -> str:
    if head.startswith(XLSX_MAGIC):
        return "xlsx"
    if head.startswith(OLE_MAGIC):
        raise TableError("an Excel 97-2003 (.xls) or password-protected workbook: save it as "
                         ".xlsx or CSV and import that")
    return "text"
