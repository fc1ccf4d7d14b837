"""Word lists: storage, CSV/TXT import and export, and hot reload of compiled filters.

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
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Protocol

from compliance.words import Action, Term, TermError, WordFilter

CSV_FIELDS = ("term", "category", "severity", "action", "tenant", "pinyin", "allow")


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


@dataclass(frozen=True, slots=True)
class RowError:
    line: int
    message: str


@dataclass(slots=True)
class ImportReport:
    imported: int = 0
    errors: list[RowError] | None = None

    def __post_init__(self) -> None:
        if self.errors is None:
            self.errors = []


def _flag(value: str, field: str) -> bool:
    v = value.strip().lower()
    if v in ("", "0", "false", "no", "n"):
        return False
    if v in ("1", "true", "yes", "y"):
        return True
    raise TermError(f"{field}: {value!r} is not a yes/no value")


def parse_terms(
    text: str, *, fmt: str = "auto", defaults: Term | None = None
) -> tuple[list[Term], list[RowError]]:
    """Parse a CSV (header with ``term`` column) or TXT (one term per line) word list.

    Bad rows are reported with their line number and skipped; the rest still import.
    ``defaults`` gives category/severity/action/tenant for TXT lines and empty CSV cells.
    """
    base = defaults or Term("x")
    first = text.lstrip("\ufeff").split("\n", 1)[0]
    if fmt == "auto":
        fmt = "csv" if first.strip().lower().split(",")[0] == "term" else "txt"
    terms: list[Term] = []
    errors: list[RowError] = []
    if fmt == "txt":
        for n, line in enumerate(text.lstrip("\ufeff").splitlines(), 1):
            word = line.strip()
            if not word or word.startswith("#"):
                continue
            try:
                terms.append(replace(base, text=word))
            except TermError as e:
                errors.append(RowError(n, str(e)))
        return terms, errors
    reader = csv.DictReader(io.StringIO(text.lstrip("\ufeff")))
    for row in reader:
        n = reader.line_num
        try:
            sev = (row.get("severity") or "").strip()
            terms.append(Term(
                text=(row.get("term") or "").strip(),
                category=(row.get("category") or "").strip() or base.category,
                severity=int(sev) if sev else base.severity,
                action=Action((row.get("action") or "").strip() or base.action),
                tenant=(row.get("tenant") or "").strip() or base.tenant,
                pinyin=_flag(row.get("pinyin") or "", "pinyin"),
                allow=_flag(row.get("allow") or "", "allow"),
            ))
        except TermError as e:
            errors.append(RowError(n, str(e)))
        except ValueError as e:
            errors.append(RowError(n, f"severity/action: {e}"))
    return terms, errors


def export_terms(terms: Iterable[Term], *, fmt: str = "csv") -> Iterator[str]:
    """Lines of a CSV (round-trips through :func:`parse_terms`) or a TXT list."""
    if fmt == "txt":
        for t in terms:
            yield t.text + "\n"
        return
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(CSV_FIELDS)
    for t in terms:
        w.writerow([t.text, t.category, t.severity, t.action.value, t.tenant or "",
                    int(t.pinyin), int(t.allow)])
    yield buf.getvalue()


class WordRegistry:
    """Compiled filters per tenant, rebuilt when the store (or the watched file) changes."""

    def __init__(self, store: WordStore, *, words_file: str | Path | None = None) -> None:
        self._store = store
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
        terms, _ = parse_terms(self._file.read_text("utf-8"))
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
        wf = WordFilter(terms)
        with self._lock:
            self._filters[tenant] = (stamp, wf)
        return wf
