"""A set of millions of phone numbers with a little metadata each, in ~15 bytes per number.

Sorted numpy arrays (uint64 number, uint8 reason, uint32 expiry, uint16 source) give binary-search
lookups and vectorised filtering of whole contact lists; a Python dict takes recent additions and
a set takes removals until :meth:`NumberSet.compact` merges them, so one opt-out pressed during a
call does not copy 10 million entries. Python ints or dicts per number would cost 10x the memory.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

COMPACT_AFTER = 100_000  # pending changes before a merge; a merge of 10M costs ~0.3 s


@dataclass(frozen=True, slots=True)
class Meta:
    reason: int  # index into the caller's reason table
    expires: int  # unix seconds, 0 = never
    source: int  # index into the caller's source table


class NumberSet:
    def __init__(self) -> None:
        self._nums: npt.NDArray[np.uint64] = np.zeros(0, np.uint64)
        self._reason: npt.NDArray[np.uint8] = np.zeros(0, np.uint8)
        self._expires: npt.NDArray[np.uint32] = np.zeros(0, np.uint32)
        self._source: npt.NDArray[np.uint16] = np.zeros(0, np.uint16)
        self._added: dict[int, Meta] = {}
        self._removed: set[int] = set()

    def __len__(self) -> int:
        base = len(self._nums) - sum(1 for n in self._removed if self._index(n) >= 0)
        return base + sum(1 for n in self._added if self._index(n) < 0 or n in self._removed)

    @property
    def nbytes(self) -> int:
        return sum(a.nbytes for a in (self._nums, self._reason, self._expires, self._source))

    def _index(self, number: int) -> int:
        i = int(np.searchsorted(self._nums, np.uint64(number)))
        return i if i < len(self._nums) and int(self._nums[i]) == number else -1

    def add(self, number: int, meta: Meta) -> None:
        self._added[number] = meta
        if len(self._added) + len(self._removed) >= COMPACT_AFTER:
            self.compact()

    def remove(self, number: int) -> bool:
        present = self.get(number) is not None
        self._added.pop(number, None)
        if self._index(number) >= 0:
            self._removed.add(number)
        return present

    def get(self, number: int) -> Meta | None:
        meta = self._added.get(number)
        if meta is not None:
            return meta
        if number in self._removed:
            return None
        i = self._index(number)
        if i < 0:
            return None
        return Meta(int(self._reason[i]), int(self._expires[i]), int(self._source[i]))

    def bulk_load(self, numbers: npt.NDArray[np.uint64], reason: int, expires: int = 0,
                  source: int = 0) -> None:
        """Add many numbers with one metadata (an imported file) in one vectorised merge."""
        self.compact()
        n = len(numbers)
        self._merge(np.asarray(numbers, np.uint64), np.full(n, reason, np.uint8),
                    np.full(n, expires, np.uint32), np.full(n, source, np.uint16))

    def compact(self) -> None:
        if self._removed:
            keep = ~np.isin(self._nums, np.fromiter(self._removed, np.uint64, len(self._removed)))
            self._nums, self._reason = self._nums[keep], self._reason[keep]
            self._expires, self._source = self._expires[keep], self._source[keep]
            self._removed.clear()
        if self._added:
            items = self._added
            self._added = {}
            self._merge(np.fromiter(items.keys(), np.uint64, len(items)),
                        np.fromiter((m.reason for m in items.values()), np.uint8, len(items)),
                        np.fromiter((m.expires for m in items.values()), np.uint32, len(items)),
                        np.fromiter((m.source for m in items.values()), np.uint16, len(items)))

    def _merge(self, nums: npt.NDArray[np.uint64], reason: npt.NDArray[np.uint8],
               expires: npt.NDArray[np.uint32], source: npt.NDArray[np.uint16]) -> None:
        # New rows first so a stable sort + unique keeps the newest metadata for duplicates.
        all_nums = np.concatenate([nums[::-1], self._nums])
        order = np.argsort(all_nums, kind="stable")
        sorted_nums = all_nums[order]
        first = np.ones(len(sorted_nums), bool)
        first[1:] = sorted_nums[1:] != sorted_nums[:-1]
        pick = order[first]
        self._nums = sorted_nums[first]
        self._reason = np.concatenate([reason[::-1], self._reason])[pick]
        self._expires = np.concatenate([expires[::-1], self._expires])[pick]
        self._source = np.concatenate([source[::-1], self._source])[pick]

    def contains_many(self, numbers: npt.NDArray[np.uint64], now: int) -> npt.NDArray[np.bool_]:
        """Vectorised membership (unexpired at ``now``) for a whole contact list."""
        numbers = np.asarray(numbers, np.uint64)
        idx = np.searchsorted(self._nums, numbers)
        idx_c = np.minimum(idx, max(len(self._nums) - 1, 0))
        if len(self._nums):
            hit = self._nums[idx_c] == numbers
            exp = self._expires[idx_c]
            hit &= (exp == 0) | (exp > now)
        else:
            hit = np.zeros(len(numbers), bool)
        if self._removed:
            hit &= ~np.isin(numbers, np.fromiter(self._removed, np.uint64, len(self._removed)))
        if self._added:
            live = [n for n, m in self._added.items() if m.expires == 0 or m.expires > now]
            hit |= np.isin(numbers, np.fromiter(live, np.uint64, len(live)))
        return hit

    def items(self) -> Iterator[tuple[int, Meta]]:
        self.compact()
        for i in range(len(self._nums)):
            yield int(self._nums[i]), Meta(int(self._reason[i]), int(self._expires[i]),
                                           int(self._source[i]))
