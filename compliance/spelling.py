"""The spelled folding: folded text with every Chinese character replaced by its pinyin.

Pinyin spellings (``dubo``, ``du博``, ``du3 bo2`` for 赌博, :mod:`compliance.pinyin`) are
matched there: the scanner spells only the characters near a Latin letter (a spelling must hold
one), with numpy for text with much Latin (:func:`spell`) and with ``str.translate`` for ASR
partials and Chinese text with a few Latin words (:func:`spell_near`), and maps each match
back to canonical positions of :mod:`compliance.normalize`'s folding.
"""

from __future__ import annotations

import re
from bisect import bisect_right
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from functools import lru_cache
from itertools import accumulate

import numpy as np
import numpy.typing as npt

from compliance.normalize import (
    BMP_SIZE,
    PINYIN_BASE,
    SHORT_TEXT,
    Folded,
    canonical,
    pinyin_names,
    pinyin_table,
    to_codes,
)


@dataclass(frozen=True, slots=True)
class SpelledTable:
    """Per BMP code point of folded text: where its spelled form starts in ``letters`` and how
    long it is (a Chinese character -> its pinyin, anything else -> itself)."""

    letters: npt.NDArray[np.uint32]
    offset: npt.NDArray[np.intp]
    width: npt.NDArray[np.intp]


@lru_cache(maxsize=1)
def spelled_table() -> SpelledTable:
    syl = pinyin_table()
    names = pinyin_names()
    spellings = [names[i] for i in range(len(names))]
    sid = syl.astype(np.int64) - PINYIN_BASE
    chinese = (sid >= 0) & (sid < len(spellings))
    lens = np.array([len(x) for x in spellings], dtype=np.intp)
    starts = BMP_SIZE + np.concatenate([[0], np.cumsum(lens)[:-1]]).astype(np.intp)
    offset = np.where(chinese, starts[np.where(chinese, sid, 0)], np.arange(BMP_SIZE))
    width = np.where(chinese, lens[np.where(chinese, sid, 0)], 1).astype(np.intp)
    letters = np.concatenate([np.arange(BMP_SIZE, dtype=np.uint32), to_codes("".join(spellings))])
    return SpelledTable(letters, offset.astype(np.intp), width)


@lru_cache(maxsize=1)
def _spelled_strings() -> list[str]:
    syl = pinyin_table().tolist()
    names = pinyin_names()
    return [names[s - PINYIN_BASE] if 0 <= s - PINYIN_BASE < len(names) else chr(cp)
            for cp, s in enumerate(syl)]


@dataclass(frozen=True, slots=True)
class Spelled:
    """A spelled folding: ``text`` and how many letters each canonical character became."""

    text: str
    width: npt.NDArray[np.intp] | list[int]

    def origin(self) -> npt.NDArray[np.intp]:
        """Per letter, the canonical index it came from (computed only when a key matched)."""
        return np.repeat(np.arange(len(self.width)), self.width)


# A tone digit after a letter (du3): the digit class first lets the regex engine skip to digits.
_TONE_RE = re.compile(r"[1-5](?<=[a-z][1-5])(?![0-9])")


FAR = 1  # stands in for a Chinese character too far from any Latin letter to matter


def latin_letters(f: Folded) -> npt.NDArray[np.bool_]:
    return (f.codes >= ord("a")) & (f.codes <= ord("z"))


def near_latin(f: Folded, reach: int,
               latin: npt.NDArray[np.bool_] | None = None) -> npt.NDArray[np.bool_]:
    """Canonical positions within ``reach`` characters of a Latin letter (of ``latin``, when
    given: the letters that can be in a spelling)."""
    if latin is None:
        latin = latin_letters(f)
    before = np.concatenate(([0], np.cumsum(latin)))
    n = len(latin)
    idx = np.arange(n)
    return before[np.minimum(idx + reach + 1, n)] > before[np.maximum(idx - reach, 0)]


def spell(f: Folded, near: npt.NDArray[np.bool_] | None = None) -> Spelled:
    """The spelled folding of an already folded text: every Chinese character replaced by its
    pinyin (first reading), and a tone number after a Latin letter dropped. ``赌博``, ``du博``,
    ``dǔ bó``, ``du3 bo2`` and ``DU-BO`` all fold to ``dubo``.
    As few array operations as possible: this runs per ASR partial that holds a Latin letter.
    With ``near``, characters outside it become one inert ``FAR`` each: a spelling must hold a
    Latin letter, so Chinese far from any cannot be part of one (and would only make matches
    that the check throws away)."""
    codes = f.codes if near is None else np.where(near, f.codes, FAR).astype(np.uint32)
    n = len(codes)
    if n == 0:
        return Spelled("", np.zeros(0, dtype=np.intp))
    if n < SHORT_TEXT:
        table = _spelled_strings()
        parts = [table[c] if c < BMP_SIZE else chr(c) for c in codes.tolist()]
        for m in _TONE_RE.finditer(f.text):
            parts[m.start()] = ""
        return Spelled("".join(parts), [len(p) for p in parts])
    astral = int(codes.max()) >= BMP_SIZE
    t = spelled_table()
    small = np.where(codes < BMP_SIZE, codes, 0) if astral else codes
    width = t.width[small]
    if astral:
        width[codes >= BMP_SIZE] = 1
    tones = [m.start() for m in _TONE_RE.finditer(f.text)]
    if tones:
        width[tones] = 0
    ends = np.cumsum(width)
    letter = np.repeat(t.offset[small] - (ends - width), width) + np.arange(int(ends[-1]))
    out = t.letters[letter]
    if astral:  # astral letters stand for themselves (rare)
        big = np.repeat(codes >= BMP_SIZE, width)
        out[big] = np.repeat(codes, width)[big]
    return Spelled(out.tobytes().decode("utf-32-le"), width)


_LATIN_RUN = re.compile("[a-z]+")
FAR_CHAR = chr(FAR)


@dataclass(frozen=True, slots=True)
class NearSpelling:
    """The spelled folding of the stretches of a canonical text near a Latin letter, made by
    ``str.translate`` and joined by ``FAR``: what :func:`spell` with :func:`near_latin` makes,
    without numpy (ASR partials, and Chinese text with a few Latin words). ``text`` first: most
    such texts match nothing there; the way back from a match is worked out per stretch."""

    canon: str  # tone digits already replaced by NUL
    text: str
    segments: tuple[tuple[int, int], ...]  # the near stretches, [start, end) canonical
    offsets: tuple[int, ...]  # where each stretch's spelling starts in ``text``

    def spans(self, matches: Iterable[tuple[int, int, int]],
              ) -> Iterator[tuple[int, int, int]]:
        """``(key, first, last)`` canonical positions of the matches that begin and end on
        whole characters (not inside a syllable's letters) and hold a Latin letter."""
        ends: dict[int, tuple[list[int], list[int]]] = {}
        for idx, s0, e0 in matches:
            j = bisect_right(self.offsets, s0) - 1  # no key holds FAR: one stretch each
            a, b = self.segments[j]
            if j not in ends:
                got = self.canon[a:b].translate(_spelled_widths())
                if max(got) > "\xff":  # a character opencc folds beyond the BMP: itself
                    got = "".join(c if c <= "\xff" else "\1" for c in got)
                width = list(got.encode("latin-1"))
                ends[j] = width, list(accumulate(width))
            width, end = ends[j]
            s1, e1 = s0 - self.offsets[j], e0 - self.offsets[j]
            first, last = bisect_right(end, s1), bisect_right(end, e1 - 1)
            if (s1 == end[first] - width[first] and e1 == end[last]
                    and _LATIN_RUN.search(self.canon, a + first, a + last + 1)):
                yield idx, a + first, a + last


def latin_runs(f: Folded) -> list[tuple[int, int]]:
    """The ``[start, end)`` runs of Latin letters of a long folded text, by numpy (a regex
    over 10k Chinese characters costs ~100x more)."""
    pos = np.flatnonzero((f.codes >= ord("a")) & (f.codes <= ord("z")))
    if len(pos) == 0:
        return []
    gap = np.diff(pos) > 1
    starts = pos[np.concatenate(([True], gap))]
    ends = pos[np.concatenate((gap, [True]))] + 1
    return list(zip(starts.tolist(), ends.tolist(), strict=True))


def spell_near(canon: str, runs: list[tuple[int, int]], reach: int,
               limit: int) -> NearSpelling | None:
    """What ``spell(f, near_latin(f, reach))`` spells for the folding ``f`` whose text is
    ``canon`` and whose Latin letters are ``runs`` (the characters within ``reach`` of a Latin
    letter spelled, a tone digit after a letter gone), the far ones left out; None when more
    than ``limit`` characters are near (numpy does those faster)."""
    n = len(canon)
    segments: list[tuple[int, int]] = []
    total = 0
    tones = False
    for start, end in runs:
        a, b = max(0, start - reach), min(n, end + reach)
        if segments and a <= segments[-1][1]:
            total += b - segments[-1][1]
            segments[-1] = (segments[-1][0], b)
        else:
            total += b - a
            segments.append((a, b))
        if total > limit:
            return None
        tones = tones or (end < n and "1" <= canon[end] <= "5")
    if tones:
        canon = _TONE_RE.sub("\0", canon)
    table = spelled_chars()
    parts = [canon[a:b].translate(table) for a, b in segments]
    offsets = list(accumulate((len(p) + 1 for p in parts), initial=0))[:-1]
    return NearSpelling(canon, FAR_CHAR.join(parts), tuple(segments), tuple(offsets))


@lru_cache(maxsize=1)
def spelled_chars() -> list[str]:
    """Per BMP character of folded text, its spelled form for ``str.translate`` (what
    :func:`spell` makes of it); NUL, which folded text never holds, stands for a tone digit."""
    out = _spelled_strings().copy()
    out[0] = ""
    return out


@lru_cache(maxsize=1)
def _spelled_widths() -> list[str]:
    """Per BMP character, ``chr(len(spelled_chars()[cp]))`` (pinyin spellings are short)."""
    return [chr(len(x)) for x in spelled_chars()]


def spelled_key(text: str) -> str:
    """A term's (or a typed spelling's) key in the spelled folding: what :func:`spell` makes of
    :func:`~compliance.normalize.fold`, in plain Python (compiling a list calls this per term)."""
    canon = canonical(text)[0]
    strings = _spelled_strings()
    parts = [strings[ord(c)] if ord(c) < BMP_SIZE else c for c in canon]
    for m in _TONE_RE.finditer(canon):
        parts[m.start()] = ""
    return "".join(parts)


ATOM_BITS = 5  # a letter's bits in a packed atom: 26 letters fit in 5


@dataclass(frozen=True, slots=True)
class Atoms:
    """The Latin spellings a filter's term units can have: syllables (``du``, ``bo``, ``lv``
    and ``lu``) and the terms' literal letters (``v`` in 加V信), packed ``ATOM_BITS`` a letter
    and sorted per length.

    A Latin piece of a pinyin match spells whole units (:func:`compliance.pinyin.verify`), so
    each of its letters lies inside an occurrence of some atom; a letter that no occurrence
    covers (most letters of English words and abbreviations: ``xp``, ``usb``) can be in no
    match, and the spelled pass leaves it, and the Chinese around it, out.
    """

    by_length: tuple[npt.NDArray[np.int64], ...]  # [k - 1]: the packed atoms of k letters

    @classmethod
    def of(cls, spellings: Iterable[str]) -> Atoms:
        groups: dict[int, set[int]] = {}
        for word in spellings:
            if not word or not all("a" <= c <= "z" for c in word):
                continue
            code = 0
            for c in word:
                code = (code << ATOM_BITS) | (ord(c) - ord("a"))
            groups.setdefault(len(word), set()).add(code)
        longest = max(groups, default=0)
        return cls(tuple(np.array(sorted(groups.get(k, ())), dtype=np.int64)
                         for k in range(1, longest + 1)))

    def covered(self, f: Folded) -> npt.NDArray[np.bool_]:
        """Per canonical position: a Latin letter that an atom occurrence covers, reading the
        letters as the spelled folding has them (a tone digit between two is dropped)."""
        latin = latin_letters(f)
        out = np.zeros(len(latin), dtype=bool)
        pos = np.flatnonzero(latin)
        n = len(pos)
        if n == 0 or not self.by_length:
            return out
        codes = f.codes
        tone = np.zeros(len(latin), dtype=bool)  # what _TONE_RE finds, without a regex pass
        tone[1:] = (codes[1:] >= ord("1")) & (codes[1:] <= ord("5")) & latin[:-1]
        tone[:-1] &= (codes[1:] < ord("0")) | (codes[1:] > ord("9"))
        # Letters in one stretch of letters and tone digits are next to each other.
        stretch = np.cumsum(~(latin | tone))[pos]
        letters = f.codes[pos].astype(np.int64) - ord("a")
        code = letters.copy()
        joined = np.ones(n, dtype=bool)  # code[i] covers letters i..i+k-1 of one stretch
        cover = np.zeros(n + 1, dtype=np.int64)
        for k, atoms in enumerate(self.by_length, start=1):
            if k > 1:
                code = (code[:-1] << ATOM_BITS) | letters[k - 1:]
                joined = joined[:-1] & (stretch[k - 1:] == stretch[: n - k + 1])
            if len(code) == 0:
                break
            if len(atoms) == 0:
                continue
            at = np.minimum(np.searchsorted(atoms, code), len(atoms) - 1)
            starts = np.flatnonzero(joined & (atoms[at] == code))
            cover[starts] += 1
            cover[starts + k] -= 1
        out[pos] = np.cumsum(cover[:n]) > 0
        return out
