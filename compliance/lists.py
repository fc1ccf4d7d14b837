"""Black and white lists: entries, scopes, the storage Protocol and the in-memory store.

An entry is an exact number or a prefix (a number block, premium-rate prefixes; a range is turned
into the few prefixes that cover it exactly), in a scope (global, a tenant, or one campaign of a
tenant), with a reason, a source and an optional expiry. Stores answer "which entries match this
number in these scopes at this time"; the in-memory one keeps exact numbers in
:class:`NumberSet` so 10 million fit in well under 200 MB.
"""

from __future__ import annotations

import enum
from collections.abc import AsyncIterator, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol

import numpy as np
import numpy.typing as npt

from compliance.numbers import InvalidNumber, normalize_prefix, to_e164, to_int
from compliance.numberset import Meta, NumberSet


class ListKind(enum.StrEnum):
    BLACK = "black"
    WHITE = "white"


class ListReason(enum.StrEnum):
    COMPLAINT = "complaint"
    OPT_OUT = "opt-out"
    REGULATOR = "regulator"
    TEST = "test"
    VIP = "vip"
    PREMIUM = "premium"
    OTHER = "other"


_REASON_IDS = {r: i for i, r in enumerate(ListReason)}
_REASONS_BY_ID = list(ListReason)


@dataclass(frozen=True, slots=True)
class Scope:
    """Global when ``tenant`` is None; a campaign scope always names its tenant too."""

    tenant: str | None = None
    campaign: str | None = None

    def __post_init__(self) -> None:
        if self.campaign is not None and self.tenant is None:
            raise ValueError("scope: a campaign scope needs its tenant")
        if ":" in (self.tenant or "") or ":" in (self.campaign or ""):
            raise ValueError("scope: tenant and campaign ids cannot contain ':'")

    @property
    def key(self) -> str:
        if self.tenant is None:
            return "global"
        return f"t:{self.tenant}" if self.campaign is None else f"c:{self.tenant}:{self.campaign}"

    @classmethod
    def from_key(cls, key: str) -> Scope:
        if key == "global":
            return cls()
        kind, _, rest = key.partition(":")
        if kind == "t" and rest:
            return cls(rest)
        if kind == "c" and ":" in rest:
            tenant, _, campaign = rest.partition(":")
            return cls(tenant, campaign)
        raise ValueError(f"scope: {key!r} is not global, t:TENANT or c:TENANT:CAMPAIGN")

    def chain(self) -> list[Scope]:
        """The scopes that apply to a call in this scope: global, its tenant, the campaign."""
        out = [Scope()]
        if self.tenant is not None:
            out.append(Scope(self.tenant))
        if self.campaign is not None:
            out.append(self)
        return out


@dataclass(frozen=True, slots=True)
class ListEntry:
    kind: ListKind
    target: str  # "+8613800138000" for a number, "86168" (digits, no +) for a prefix
    is_prefix: bool = False
    scope: Scope = Scope()
    reason: ListReason = ListReason.OTHER
    source: str = ""
    expires: datetime | None = None
    note: str = ""  # free text from the import (备注); kept in SQL and Redis, not the hot cache

    def active(self, at: datetime) -> bool:
        return self.expires is None or self.expires > at

    def describe(self) -> str:
        what = f"prefix +{self.target}" if self.is_prefix else self.target
        until = f" until {self.expires.isoformat()}" if self.expires else ""
        src = f" from {self.source}" if self.source else ""
        note = f": {self.note}" if self.note else ""
        return f"{self.kind}list {what} ({self.reason}, {self.scope.key}{src}{until}{note})"


def range_to_prefixes(lo: str, hi: str) -> list[str]:
    """The minimal prefixes covering every number lo..hi (equal-length international digits)."""
    lo_d, hi_d = normalize_prefix(lo), normalize_prefix(hi)
    if len(lo_d) != len(hi_d) or lo_d > hi_d:
        raise InvalidNumber(f"{lo}-{hi}", "a range needs two numbers of equal length, low first")
    width = len(lo_d)
    out: list[str] = []
    a, b = int(lo_d), int(hi_d)
    while a <= b:
        k = 0  # grow the block of 10**k while it stays aligned and inside the range
        while k < width and a % 10 ** (k + 1) == 0 and a + 10 ** (k + 1) - 1 <= b:
            k += 1
        out.append(str(a).zfill(width)[: width - k])
        a += 10**k
    return out


class ListStore(Protocol):
    async def add(self, entries: Sequence[ListEntry]) -> int: ...

    async def remove(self, kind: ListKind, scope: Scope, target: str, is_prefix: bool) -> bool: ...

    async def match(self, kind: ListKind, e164: str, scopes: Sequence[Scope],
                    at: datetime) -> list[ListEntry]: ...

    async def match_kinds(self, kinds: Sequence[ListKind], e164: str, scopes: Sequence[Scope],
                          at: datetime) -> dict[ListKind, list[ListEntry]]:
        """:meth:`match` for several kinds in one round trip (a dial checks black and white)."""
        ...

    def export(self, kind: ListKind | None = None) -> AsyncIterator[ListEntry]: ...


def _epoch(dt: datetime | None) -> int:
    return 0 if dt is None else int(dt.timestamp())


class InMemoryListStore:
    """Process-local lists. Also the engine's hot cache in front of the SQL store."""

    def __init__(self) -> None:
        self._sets: dict[tuple[ListKind, str], NumberSet] = {}
        self._prefixes: dict[tuple[ListKind, str], dict[str, ListEntry]] = {}
        self._sources: list[str] = [""]
        self._source_ids: dict[str, int] = {"": 0}

    def _source_id(self, source: str) -> int:
        sid = self._source_ids.get(source)
        if sid is None:
            if len(self._sources) >= 65535:
                raise ValueError("source: more than 65535 distinct sources")
            sid = self._source_ids[source] = len(self._sources)
            self._sources.append(source)
        return sid

    def number_set(self, kind: ListKind, scope: Scope = Scope()) -> NumberSet:
        return self._sets.setdefault((kind, scope.key), NumberSet())

    def add_sync(self, entries: Iterable[ListEntry]) -> int:
        n = 0
        for e in entries:
            if e.is_prefix:
                self._prefixes.setdefault((e.kind, e.scope.key), {})[e.target] = e
            else:
                meta = Meta(_REASON_IDS[e.reason], _epoch(e.expires), self._source_id(e.source))
                self.number_set(e.kind, e.scope).add(to_int(e.target), meta)
            n += 1
        return n

    def bulk_load(self, kind: ListKind, numbers: npt.NDArray[np.uint64], *,
                  scope: Scope = Scope(), reason: ListReason = ListReason.OTHER,
                  source: str = "", expires: datetime | None = None) -> None:
        """Millions of E.164 integers with one reason in one vectorised merge."""
        self.number_set(kind, scope).bulk_load(numbers, _REASON_IDS[reason], _epoch(expires),
                                               self._source_id(source))

    async def add(self, entries: Sequence[ListEntry]) -> int:
        return self.add_sync(entries)

    async def remove(self, kind: ListKind, scope: Scope, target: str, is_prefix: bool) -> bool:
        if is_prefix:
            return self._prefixes.get((kind, scope.key), {}).pop(target, None) is not None
        ns = self._sets.get((kind, scope.key))
        return ns.remove(to_int(target)) if ns is not None else False

    def match_sync(self, kind: ListKind, e164: str, scopes: Sequence[Scope],
                   at: datetime) -> list[ListEntry]:
        out: list[ListEntry] = []
        value = to_int(e164)
        digits = e164.lstrip("+")
        for scope in scopes:
            ns = self._sets.get((kind, scope.key))
            meta = ns.get(value) if ns is not None else None
            if meta is not None:
                expires = datetime.fromtimestamp(meta.expires, UTC) if meta.expires else None
                e = ListEntry(kind, e164, False, scope, _REASONS_BY_ID[meta.reason],
                              self._sources[meta.source], expires)
                if e.active(at):
                    out.append(e)
            prefixes = self._prefixes.get((kind, scope.key))
            if prefixes:
                for i in range(1, len(digits) + 1):
                    pe = prefixes.get(digits[:i])
                    if pe is not None and pe.active(at):
                        out.append(pe)
        return out

    async def match(self, kind: ListKind, e164: str, scopes: Sequence[Scope],
                    at: datetime) -> list[ListEntry]:
        return self.match_sync(kind, e164, scopes, at)

    async def match_kinds(self, kinds: Sequence[ListKind], e164: str, scopes: Sequence[Scope],
                          at: datetime) -> dict[ListKind, list[ListEntry]]:
        return {k: self.match_sync(k, e164, scopes, at) for k in kinds}

    def filter_many(self, kind: ListKind, numbers: npt.NDArray[np.uint64], scopes: Sequence[Scope],
                    at: datetime) -> npt.NDArray[np.bool_]:
        """True for every number of a contact list that one of ``scopes`` lists (vectorised)."""
        numbers = np.asarray(numbers, np.uint64)
        now = int(at.timestamp())
        hit = np.zeros(len(numbers), bool)
        ndigits = np.floor(np.log10(np.maximum(numbers, 1).astype(np.float64))).astype(np.int64) + 1
        for scope in scopes:
            ns = self._sets.get((kind, scope.key))
            if ns is not None:
                hit |= ns.contains_many(numbers, now)
            for prefix, e in self._prefixes.get((kind, scope.key), {}).items():
                if not e.active(at):
                    continue
                shift = np.maximum(ndigits - len(prefix), 0)
                hit |= (ndigits >= len(prefix)) & (
                    numbers // np.power(np.uint64(10), shift.astype(np.uint64)) == int(prefix))
        return hit

    async def export(self, kind: ListKind | None = None) -> AsyncIterator[ListEntry]:
        for (k, skey), ns in list(self._sets.items()):
            if kind is not None and k != kind:
                continue
            for value, meta in ns.items():
                expires = datetime.fromtimestamp(meta.expires, UTC) if meta.expires else None
                yield ListEntry(k, to_e164(value), False, Scope.from_key(skey),
                                _REASONS_BY_ID[meta.reason], self._sources[meta.source], expires)
        for (k, _), prefixes in list(self._prefixes.items()):
            if kind is None or k == kind:
                for e in prefixes.values():
                    yield e
