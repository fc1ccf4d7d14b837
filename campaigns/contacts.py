"""Contact lists through the one importer (:mod:`tabular`): CSV/TSV/XLSX in any encoding, the
number column by its usual spellings, the spec's columns mapped to flow variables.

Numbers are normalised to E.164 at import (compliance's normaliser), so the dial-time list
checks compare like with like and the same person written two ways is one contact: later rows
with the same number are merged into the first (variables the first row left empty are filled
in) and counted. Every bad row is reported with file, line, column and reason; the rest import.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from campaigns.spec import ContactsSpec
from compliance.numbers import InvalidNumber, normalize
from tabular import CellError, Column, ColumnSpec, Row, RowError, TableError, TableInfo, open_table
from tabular.table import TableInput

NUMBER_ALIASES = ("号码", "手机号", "手机号码", "手机", "电话", "电话号码", "联系电话", "联系方式",
                  "移动电话", "被叫号码", "客户号码", "phone", "phone number", "mobile", "msisdn",
                  "tel", "telephone", "number")
PRIORITY_ALIASES = ("优先级", "priority")
KEPT_ERRORS = 1_000
MAX_VARIABLE_CHARS = 500
MAX_CONTACTS = 2_000_000


@dataclass(slots=True)
class Contact:
    number: str  # E.164
    raw_number: str
    line: int
    variables: dict[str, str]
    priority: int = 0


@dataclass(slots=True)
class ContactImport:
    contacts: list[Contact] = field(default_factory=list)
    errors: list[RowError] = field(default_factory=list)  # the first KEPT_ERRORS
    error_count: int = 0
    merged: int = 0  # rows whose number repeated an earlier row
    rows: int = 0
    info: TableInfo | None = None

    def summary(self) -> dict[str, Any]:
        return {"rows": self.rows, "imported": len(self.contacts), "merged": self.merged,
                "errors": self.error_count,
                "first_errors": [str(e) for e in self.errors[:20]],
                "columns": dict(self.info.columns) if self.info else {},
                "unmapped": list(self.info.unmapped) if self.info else []}


def column_spec(spec: ContactsSpec) -> ColumnSpec:
    cols = [Column("number", NUMBER_ALIASES, required=True, label="number"),
            Column("priority", PRIORITY_ALIASES)]
    for name, aliases in spec.variables.items():
        cols.append(Column(name, tuple(aliases), required=name in spec.required))
    return ColumnSpec(tuple(cols), positional=("number",))


def _number_cell(raw: str) -> str:
    if "e+" in raw.lower() and raw.replace(".", "").lower().replace("e+", "").isdigit():
        raise CellError("number", "written in scientific notation, so the last digits are "
                                  "lost: format the column as text in Excel and export again")
    return raw[:-2] if raw.endswith(".0") and raw[:-2].lstrip("+").isdigit() else raw


def parse_contact(row: Row, spec: ContactsSpec, region: str) -> Contact:
    raw = _number_cell(row.values["number"])
    try:
        e164 = normalize(raw, region)
    except InvalidNumber as e:
        raise CellError("number", e.reason) from e
    priority = 0
    if row.values.get("priority"):
        try:
            priority = int(float(row.values["priority"]))
        except ValueError as e:
            raise CellError("priority", "not a whole number") from e
        if not -100 <= priority <= 100:
            raise CellError("priority", "outside -100..100")
    variables: dict[str, str] = {}
    for name in spec.variables:
        value = row.values.get(name, "")
        if len(value) > MAX_VARIABLE_CHARS:
            raise CellError(name, f"longer than {MAX_VARIABLE_CHARS} characters")
        if name in spec.required and not value:
            raise CellError(name, "empty")
        variables[name] = value
    return Contact(e164, raw, row.line, variables, priority)


def _rows(source: TableInput, spec: ContactsSpec, region: str, *, name: str | None,
          encoding: str | None, sheet: str | None, out: ContactImport) -> Iterator[Contact]:
    with open_table(source, column_spec(spec), name=name, encoding=encoding,
                    sheet=sheet) as table:
        out.info = table.info
        for item in table:
            out.rows += 1
            if isinstance(item, RowError):
                _error(out, item)
                continue
            try:
                yield parse_contact(item, spec, region)
            except CellError as e:
                _error(out, item.error(e))


def _error(out: ContactImport, err: RowError) -> None:
    out.error_count += 1
    if len(out.errors) < KEPT_ERRORS:
        out.errors.append(err)


def read_contacts(source: TableInput, spec: ContactsSpec, *, region: str = "CN",
                  name: str | None = None, encoding: str | None = None,
                  sheet: str | None = None) -> ContactImport:
    """Read and merge a contact file. Raises :class:`tabular.TableError` when the file cannot
    be read at all (one line saying why); bad rows are in the result."""
    out = ContactImport()
    by_number: dict[str, Contact] = {}
    for contact in _rows(source, spec, spec.region or region, name=name,
                         encoding=encoding, sheet=sheet, out=out):
        first = by_number.get(contact.number)
        if first is None:
            if len(by_number) >= MAX_CONTACTS:
                raise TableError(f"more than {MAX_CONTACTS} contacts: split the file")
            by_number[contact.number] = contact
            continue
        out.merged += 1
        for k, v in contact.variables.items():
            if v and not first.variables.get(k):
                first.variables[k] = v
        first.priority = max(first.priority, contact.priority)
    out.contacts = list(by_number.values())
    return out


__all__ = ["Contact", "ContactImport", "TableError", "column_spec", "read_contacts"]
