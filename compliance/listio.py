"""CSV import/export for black/white lists, streaming so files of millions of rows fit.

Columns: ``number,list,tenant,campaign,reason,source,expires``. ``number`` is a number in any
common spelling, ``+86168*`` for a prefix or ``LOW..HIGH`` for a range; only ``number`` is
required (missing cells take the import's defaults). A bad row goes to the error report with its
line number and the reason; every other row still imports.
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime

from compliance.lists import ListEntry, ListKind, ListReason, ListStore, Scope, range_to_prefixes
from compliance.numbers import InvalidNumber, normalize, normalize_prefix

CSV_FIELDS = ("number", "list", "tenant", "campaign", "reason", "source", "expires")
CHUNK_ROWS = 5_000


@dataclass(frozen=True, slots=True)
class RowError:
    line: int
    value: str
    message: str


@dataclass(slots=True)
class ListImportReport:
    imported: int = 0
    errors: list[RowError] = field(default_factory=list)


def _parse_expiry(value: str) -> datetime | None:
    if not value:
        return None
    dt = datetime.fromisoformat(value)
    return dt if dt.tzinfo else dt.replace(tzinfo=UTC)


def parse_row(row: dict[str, str], default: ListEntry, region: str) -> list[ListEntry]:
    """One CSV row -> entries (a range becomes several prefixes). Raises ValueError naming the
    column."""
    raw = (row.get("number") or "").strip()
    try:
        kind = ListKind((row.get("list") or "").strip().lower() or default.kind)
    except ValueError as e:
        raise ValueError(f"list: {row.get('list')!r} is not black or white") from e
    try:
        reason = ListReason((row.get("reason") or "").strip().lower() or default.reason)
    except ValueError as e:
        raise ValueError(f"reason: {row.get('reason')!r} is not one of "
                         f"{', '.join(r.value for r in ListReason)}") from e
    tenant = (row.get("tenant") or "").strip() or default.scope.tenant
    campaign = (row.get("campaign") or "").strip() or default.scope.campaign
    try:
        expires = _parse_expiry((row.get("expires") or "").strip()) or default.expires
    except ValueError as e:
        raise ValueError(f"expires: {row.get('expires')!r} is not an ISO date") from e
    base = replace(default, kind=kind, reason=reason, scope=Scope(tenant, campaign),
                   source=(row.get("source") or "").strip() or default.source, expires=expires)
    if not raw:
        raise ValueError("number: empty")
    if ".." in raw:
        lo, _, hi = raw.partition("..")
        return [replace(base, target=p, is_prefix=True) for p in range_to_prefixes(lo, hi)]
    if raw.endswith("*"):
        return [replace(base, target=normalize_prefix(raw[:-1]), is_prefix=True)]
    return [replace(base, target=normalize(raw, region), is_prefix=False)]


def iter_rows(lines: Iterable[str]) -> Iterator[tuple[int, dict[str, str]]]:
    """(line number, row) from a CSV with a header, or from a bare one-number-per-line file."""
    it = iter(lines)
    first = next(it, "")
    first = first.lstrip("\ufeff")
    if first.strip().lower().split(",")[0] == "number":
        header = next(csv.reader([first]))
        reader = csv.DictReader(it, fieldnames=[h.strip().lower() for h in header])
        for row in reader:
            yield reader.line_num + 1, row
        return
    line_no = 1
    for line in ([first] if first else []) + list(it):  # bare lists are small; CSVs stream
        if line.strip() and not line.startswith("#"):
            yield line_no, {"number": line.strip()}
        line_no += 1


async def import_csv(store: ListStore, lines: Iterable[str], *, default: ListEntry,
                     region: str = "CN",
                     refuse: Callable[[ListEntry], str | None] | None = None,
                     ) -> ListImportReport:
    """Stream ``lines`` into ``store`` in chunks; bad rows go to the report. ``refuse`` may
    reject a parsed row with a message (e.g. a tenant scope the importer may not write)."""
    report = ListImportReport()
    chunk: list[ListEntry] = []
    for line_no, row in iter_rows(lines):
        try:
            entries = parse_row(row, default, region)
            why = next((w for w in map(refuse, entries) if w), None) if refuse else None
            if why:
                raise ValueError(why)
            chunk += entries
        except InvalidNumber as e:
            report.errors.append(RowError(line_no, row.get("number") or "", f"number: {e.reason}"))
        except ValueError as e:
            report.errors.append(RowError(line_no, row.get("number") or "", str(e)))
        if len(chunk) >= CHUNK_ROWS:
            report.imported += await store.add(chunk)
            chunk = []
    if chunk:
        report.imported += await store.add(chunk)
    return report


def entry_row(e: ListEntry) -> list[str]:
    target = f"+{e.target}*" if e.is_prefix else e.target
    return [target, e.kind.value, e.scope.tenant or "", e.scope.campaign or "", e.reason.value,
            e.source, e.expires.isoformat() if e.expires else ""]
