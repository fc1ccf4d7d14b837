"""The text side of a word scan: its foldings, the way back from a match, the word-boundary
checks, and the spelled pass's candidates.

Two ways to get there, with the same results (tests/unit/test_compliance_native.py and
test_compliance_scan_paths.py check that): the native inner loops (:mod:`compliance.native`)
when the extension is built, and the Python paths here otherwise (numpy for long text,
``str.translate`` for ASR partials). :mod:`compliance.words` decides what a hit is.
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache
from typing import Any

import ahocorasick_rs
import numpy as np
import numpy.typing as npt

from compliance.confusables import expansion_map
from compliance.normalize import (
    BMP_SIZE,
    SHORT_TEXT,
    Folded,
    ShortFolded,
    finish,
    fold_codes,
    fold_lists,
    fold_short,
    fold_table,
    from_codes,
    resound,
    sounds_short,
    to_codes,
)
from compliance.spelling import (
    FAR,
    Atoms,
    latin_letters,
    latin_runs,
    near_latin,
    spell,
    spell_near,
)

_LATIN_RUN = re.compile("[a-z]+")
NEAR_IN_PYTHON = 1024  # up to this many characters near Latin, the spelled pass skips numpy


@lru_cache(maxsize=1)
def word_chars() -> frozenset[str]:
    """Characters that are part of an alphabetic word: letters and digits of any alphabet
    (``Ａ``, ``①``, ``с``, ``п``, ``ﬁ``, ``㎏``), not of CJK or other scripts without spaces
    (``一`` is Lo)."""
    table = fold_table()
    alnum = np.isin(table, np.frombuffer(
        "0123456789abcdefghijklmnopqrstuvwxyz".encode("utf-32-le"), np.uint32))
    chars = {chr(int(cp)) for cp in np.flatnonzero(alnum)}
    chars |= {chr(cp) for cp in range(0x80, len(table))
              if unicodedata.category(chr(cp)) in {"Lu", "Ll", "Lt", "Lm", "Nd"}}
    expanding = {chr(cp) for cp in expansion_map() if cp < BMP_SIZE}  # letters, all of them
    return frozenset(c for c in chars if unicodedata.category(c) != "Lo") | expanding


def word_char(ch: str) -> bool:
    return ch in word_chars()


class MatchArrays:
    """Views of a folding's way back for per-match indexing: Python lists (numpy scalars are
    slow), or the native folding's own arrays."""

    __slots__ = ("orig", "run_len", "run_start")

    def __init__(self, f: Any, n_matches: int) -> None:
        self.orig: Any
        self.run_start: Any
        self.run_len: Any
        if not isinstance(f, Folded):  # ShortFolded's lists, the native folding's arrays
            self.orig, self.run_start, self.run_len = f.orig, f.run_start, f.run_len
            return
        # Hits are rare in real text: a few numpy element reads beat converting whole arrays.
        # Dense hits (adversarial text) convert once: list reads are ~5x cheaper.
        many = n_matches * 32 > len(f.codes)
        self.orig = f.orig.tolist() if many else f.orig
        self.run_start = f.run_start.tolist() if many else f.run_start
        self.run_len = f.run_len.tolist() if many else f.run_len

    def enough_repeats(self, first: int, runs: tuple[int, ...] | None) -> bool:
        if runs is None:  # the term has no doubled letters: any run length will do
            return True
        got = [self.run_len[i] for i in range(first, first + len(runs))]
        return all(g >= r for g, r in zip(got, runs, strict=True))

    def span(self, first: int, last: int) -> tuple[int, int]:
        return (int(self.orig[self.run_start[first]]),
                int(self.orig[self.run_start[last] + self.run_len[last] - 1]) + 1)

    def latin_bounds(self, text: str, first: int, last: int, runs: tuple[int, ...], *,
                     bound_start: bool, bound_end: bool) -> tuple[int, int] | None:
        """The span of a key whose Latin edges can sit on word boundaries, else None.

        A run of equal letters may straddle words (``is shit`` folds to ``isishit``), so the
        match may start anywhere in its first run that leaves enough letters, and end likewise.
        A letter of a character that folded to several (``ﬁ``) is a boundary only at the
        character's own edges: ``ish`` is not a word in ``ﬁsh``.
        """
        orig = self.orig
        r0, n0 = int(self.run_start[first]), int(self.run_len[first])
        start: int | None = None
        if bound_start:
            for i in range(r0, r0 + n0 - runs[0] + 1):
                p = int(orig[i])
                if i > 0 and int(orig[i - 1]) == p:
                    continue  # inside a character that folded to several letters
                if p == 0 or not word_char(text[p - 1]):
                    start = p
                    break
        else:
            start = int(orig[r0])
        rl, nl = int(self.run_start[last]), int(self.run_len[last])
        end: int | None = None
        if bound_end:
            for i in reversed(range(rl + runs[-1] - 1, rl + nl)):
                p = int(orig[i])
                if i + 1 < len(orig) and int(orig[i + 1]) == p:
                    continue
                if p + 1 == len(text) or not word_char(text[p + 1]):
                    end = p + 1
                    break
        else:
            end = int(orig[rl + nl - 1]) + 1
        if start is None or end is None or start >= end:
            return None
        return start, end


class ScanText:
    """One text being scanned by the Python paths, and its foldings, each made on first use.

    Short text (an ASR partial) is folded by ``str.translate`` and gets the arrays that map
    canonical positions back to the original only when an automaton matched, which in real
    text is rare: numpy's per-call overhead, not the work, is most of the cost on 100
    characters. Long text is folded with numpy straight away.
    """

    __slots__ = ("_codes", "_folded", "_kept", "_runs", "_short", "_sounds", "canon", "short",
                 "text")

    def __init__(self, text: str) -> None:
        self.text = text
        got = fold_short(text) if len(text) < SHORT_TEXT else None
        self.short = got is not None
        self._folded: Folded | None = None
        self._short: ShortFolded | None = None
        self._sounds: Folded | ShortFolded | None = None
        self._codes: npt.NDArray[np.uint32] | None = None
        self._runs: list[tuple[int, int]] | None = None
        if got is not None:
            self._kept, self.canon = got
        else:
            self._kept = ""
            self.canon = self.arrays().text

    def arrays(self) -> Folded:
        """The folding with numpy arrays (long text)."""
        if self._folded is None:
            self._codes = fold_codes(to_codes(self.text))
            self._folded = finish(self._codes)
        return self._folded

    def folded(self) -> Folded | ShortFolded:
        """The folding with its way back to the original."""
        if self.short:
            if self._short is None:
                self._short = fold_lists(self.text)
            return self._short
        return self.arrays()

    def sounds(self) -> Folded | ShortFolded:
        """The syllable folding (homophones) with its way back."""
        if self._sounds is None:
            if self.short:
                self._sounds = fold_lists(self.text, pinyin=True)
            else:
                self._sounds = resound(self.arrays())
        return self._sounds

    def latin_runs(self) -> list[tuple[int, int]]:
        """``[start, end)`` of each run of Latin letters in the canonical text."""
        if self._runs is None:
            self._runs = ([m.span() for m in _LATIN_RUN.finditer(self.canon)] if self.short
                          else latin_runs(self.arrays()))
        return self._runs

    def sounds_canon(self) -> str:
        return sounds_short(self._kept) if self.short else self.sounds().text

    def spelled_spans(self, ac: ahocorasick_rs.AhoCorasick, atoms: Atoms,
                      reach: int) -> list[tuple[int, int, int]]:
        """``(key, first, last)`` of the spelled automaton ``ac``'s matches that begin and end
        on whole characters and hold a Latin letter, in canonical positions."""
        near = spell_near(self.canon, self.latin_runs(), reach, NEAR_IN_PYTHON)
        if near is not None:
            matches = ac.find_matches_as_indexes(near.text, overlapping=True)
            return list(near.spans(matches)) if matches else []
        f = self.arrays()
        # Only the stretches near a letter that can be in a spelling are spelled and
        # searched, joined by an inert separator; the other letters are inert too.
        usable = atoms.covered(f)
        sel = np.flatnonzero(near_latin(f, reach, usable))
        if len(sel) == 0:
            return []
        pos = np.insert(sel, np.flatnonzero(np.diff(sel) > 1) + 1, -1)
        at = np.maximum(pos, 0)
        codes = np.where(pos >= 0, f.codes[at], FAR).astype(np.uint32)
        inert = (pos < 0) | (latin_letters(f)[at] & ~usable[at])
        spelled = spell(Folded(from_codes(codes), codes, f.orig, f.run_start, f.run_len),
                        ~inert)
        matches = ac.find_matches_as_indexes(spelled.text, overlapping=True)
        if not matches:
            return []
        # A match must begin and end on whole characters (not inside a syllable's letters)
        # and hold a Latin letter (characters alone are the plain and homophone passes' job).
        m = np.array(matches, dtype=np.intp)
        width_a = np.asarray(spelled.width, dtype=np.intp)
        origin = np.repeat(np.arange(len(width_a)), width_a)
        first_s, last_s = origin[m[:, 1]], origin[m[:, 2] - 1]
        ends_a = np.cumsum(width_a)
        whole = (m[:, 1] == ends_a[first_s] - width_a[first_s]) & (m[:, 2] == ends_a[last_s])
        first_a, last_a = pos[first_s], pos[last_s]
        whole &= (first_a >= 0) & (last_a >= 0)
        letters = (f.codes >= ord("a")) & (f.codes <= ord("z"))
        before = np.concatenate(([0], np.cumsum(letters)))
        keep = np.flatnonzero(whole & (before[last_a + 1] > before[first_a]))
        return list(zip(m[keep, 0].tolist(), first_a[keep].tolist(), last_a[keep].tolist(),
                        strict=True))
