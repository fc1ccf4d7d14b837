"""What a caller expects of a table: its columns, their header spellings, which are required.

Users' spreadsheets name the same column many ways (``号码``, ``手机号码``, ``电话 (必填)``,
``Phone Number``), so headers are compared after folding away case, width, spaces, punctuation
and bracketed notes, first exactly and then by containment (``客户手机号`` holds ``手机号``).
Traditional characters count as simplified (``電話``). The caller declares the aliases; this
module only matches them.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

_BRACKETED = re.compile(r"[(（\[【<《].*?[)）\]】>》]")
MIN_CONTAINED_ALIAS_CHARS = 2  # a one-letter alias must match exactly, never by containment


@lru_cache(maxsize=1)
def _to_simplified() -> Any:
    from opencc import OpenCC  # noqa: PLC0415 - a few ms to load, only when headers are read

    return OpenCC("t2s")


def header_key(text: str) -> str:
    """``" 手机号码（必填）* "`` -> ``手机号码``; ``"電話"`` -> ``电话``; ``"Phone Number"`` ->
    ``phonenumber``."""
    folded = unicodedata.normalize("NFKC", text).lower()
    if not folded.isascii():
        folded = _to_simplified().convert(folded)
    folded = _BRACKETED.sub("", folded)
    return "".join(ch for ch in folded if unicodedata.category(ch)[0] in "LN")


@dataclass(frozen=True, slots=True)
class Column:
    """One column the caller reads. ``name`` is the key rows carry; ``aliases`` the headers that
    mean it (the name itself always counts); ``label`` is how messages name it."""

    name: str
    aliases: tuple[str, ...] = ()
    required: bool = False
    label: str = ""

    @property
    def title(self) -> str:
        return self.label or self.name

    def header_keys(self) -> list[str]:
        return [k for k in (header_key(a) for a in (self.name, *self.aliases)) if k]


@dataclass(frozen=True, slots=True)
class ColumnSpec:
    """The columns of one kind of import.

    ``positional`` names the columns of a file that has no header row, in order (a bare list of
    numbers is ``("number",)``); without it a header row is required. ``whole_line`` makes a
    text file without a header row one value per line even if it holds commas (word lists).
    """

    columns: tuple[Column, ...]
    positional: tuple[str, ...] = ()
    whole_line: bool = False
    _by_name: dict[str, Column] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        by_name = {c.name: c for c in self.columns}
        if len(by_name) != len(self.columns):
            raise ValueError("columns: two columns share a name")
        unknown = [p for p in self.positional if p not in by_name]
        if unknown:
            raise ValueError(f"positional: {unknown} are not declared columns")
        object.__setattr__(self, "_by_name", by_name)

    def has(self, name: str) -> bool:
        return name in self._by_name

    def column(self, name: str) -> Column:
        return self._by_name[name]

    @property
    def required(self) -> list[Column]:
        return [c for c in self.columns if c.required]

    def describe(self, column: Column) -> str:
        """``number (号码 / 手机号 / number ...)``: what a missing column is called."""
        shown = [a for a in column.aliases[:4] if a != column.name]
        return f"{column.title} ({' / '.join([*shown, column.name])})"

    def match_header(self, cells: list[str]) -> dict[str, int]:
        """Column name -> cell index for a candidate header row (first match wins)."""
        keys = [header_key(c) for c in cells]
        found: dict[str, int] = {}
        taken: set[int] = set()
        for col in self.columns:  # exact matches first, in declaration order
            wanted = set(col.header_keys())
            for i, k in enumerate(keys):
                if k and k in wanted and i not in taken:
                    found[col.name] = i
                    taken.add(i)
                    break
        for i, k in enumerate(keys):  # then the longest alias a header contains
            if not k or i in taken:
                continue
            best: tuple[int, str] | None = None
            for col in self.columns:
                if col.name in found:
                    continue
                for alias in col.header_keys():
                    if len(alias) >= MIN_CONTAINED_ALIAS_CHARS and alias in k and (
                            best is None or len(alias) > best[0]):
                        best = (len(alias), col.name)
            if best is not None:
                found[best[1]] = i
                taken.add(i)
        return found
