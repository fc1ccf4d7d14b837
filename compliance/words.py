"""Sensitive-word dictionary and scanner: one Aho-Corasick automaton over folded text.

Every term is folded like the text (see :mod:`compliance.normalize`) and put in an Aho-Corasick
automaton together with its pinyin spellings (:mod:`compliance.pinyin`), so one pass finds every
term whatever spelling the speaker or writer used. Three checks run per raw hit, never per term:
the run-length check (``ass`` needs two s's, so the word ``as`` is not a hit even though both
fold to ``as``), the word-boundary check for Latin edges (``shit`` is not in ``this hit``,
``dubo`` not in ``dubois``), and the allow-list (``Dickens`` hides ``dick``).
"""

from __future__ import annotations

import enum
import re
import unicodedata
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import ahocorasick_rs
import numpy as np
import numpy.typing as npt

from compliance.homophones import innocent_words
from compliance.normalize import (
    SHORT_TEXT,
    Folded,
    ShortFolded,
    canonical,
    finish,
    fold,
    fold_codes,
    fold_lists,
    fold_short,
    fold_table,
    from_codes,
    resound,
    sounds_short,
    to_codes,
)
from compliance.pinyin import PinyinMode, TermSpelling, english_words, term_spelling, verify
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
CATEGORIES = ("politics", "porn", "violence", "fraud", "abuse", "competitor", "custom")
MASK_CHAR = "*"


class Action(enum.StrEnum):
    BLOCK = "block"  # refuse to speak / send / publish
    MASK = "mask"  # replace with MASK_CHAR and go on
    FLAG = "flag"  # report only (inspection, statistics)


class TermError(ValueError):
    """A term definition is wrong; the message names the field."""


@dataclass(frozen=True, slots=True)
class Term:
    """One dictionary entry. ``tenant`` None is the global list.

    ``pinyin``: how pinyin spellings match (:class:`PinyinMode`); None follows the category's
    mode in the filter (``auto`` unless configured). ``True``/``False`` are accepted for
    ``homophone``/``off``. ``initials`` adds the first letters (``sb`` for 傻逼).
    """

    text: str
    category: str = "custom"
    severity: int = 3
    action: Action = Action.BLOCK
    tenant: str | None = None
    pinyin: PinyinMode | None = None
    allow: bool = False  # an allow-list entry: a harmless longer word that contains a term
    initials: bool = False

    def __post_init__(self) -> None:
        if isinstance(self.pinyin, bool):
            mode = PinyinMode.HOMOPHONE if self.pinyin else PinyinMode.OFF
            object.__setattr__(self, "pinyin", mode)
        elif self.pinyin is not None and not isinstance(self.pinyin, PinyinMode):
            try:
                object.__setattr__(self, "pinyin", PinyinMode(self.pinyin))
            except ValueError as e:
                raise TermError(f"pinyin: {self.pinyin!r} is not one of "
                                f"{', '.join(m.value for m in PinyinMode)}") from e
        if not self.text.strip():
            raise TermError("term: empty")
        if self.category not in CATEGORIES:
            raise TermError(f"category: {self.category!r} is not one of {', '.join(CATEGORIES)}")
        if not 1 <= self.severity <= 5:
            raise TermError(f"severity: {self.severity} is outside 1..5")
        if not isinstance(self.action, Action):
            object.__setattr__(self, "action", Action(self.action))
        if not canonical(self.text)[0]:
            raise TermError(f"term: {self.text!r} has no letters or digits")


@dataclass(slots=True)
class Hit:
    start: int  # span in the original text, [start, end)
    end: int
    matched: str  # the original text of the span, evasions included
    term: str
    category: str
    severity: int
    action: Action
    via_pinyin: bool = False


@dataclass(slots=True)
class ScanResult:
    hits: list[Hit]
    masked_text: str
    blocked: bool


@dataclass(frozen=True, slots=True)
class _Key:
    term: Term
    runs: tuple[int, ...]
    bound_start: bool  # the key starts with a Latin letter: needs a word boundary before it
    bound_end: bool
    length: int  # canonical length
    pinyin: bool = False  # a pinyin spelling, not the term's own characters
    spelling: TermSpelling | None = None  # set for keys of the spelled folding
    repeats: tuple[int, ...] | None = field(init=False)  # runs, or None when all are 1

    def __post_init__(self) -> None:
        object.__setattr__(self, "repeats", self.runs if max(self.runs) > 1 else None)

    @property
    def bounded(self) -> bool:
        return self.bound_start or self.bound_end


@lru_cache(maxsize=1)
def _word_chars() -> frozenset[str]:
    """Characters that are part of an alphabetic word: letters and digits of any alphabet
    (``Ａ``, ``①``, ``с``, ``п``), not of CJK or other scripts without spaces (``一`` is Lo)."""
    table = fold_table()
    alnum = np.isin(table, np.frombuffer(
        "0123456789abcdefghijklmnopqrstuvwxyz".encode("utf-32-le"), np.uint32))
    chars = {chr(int(cp)) for cp in np.flatnonzero(alnum)}
    chars |= {chr(cp) for cp in range(0x80, len(table))
              if unicodedata.category(chr(cp)) in {"Lu", "Ll", "Lt", "Lm", "Nd"}}
    return frozenset(c for c in chars if unicodedata.category(c) != "Lo")


def _word_char(ch: str) -> bool:
    return ch in _word_chars()


class _Arrays:
    """Python-list views of a :class:`Folded` for per-hit indexing (numpy scalars are slow)."""

    __slots__ = ("orig", "run_len", "run_start")

    def __init__(self, f: Folded | ShortFolded, n_matches: int) -> None:
        self.orig: Any
        self.run_start: Any
        self.run_len: Any
        if isinstance(f, ShortFolded):
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

    def latin_bounds(self, text: str, first: int, last: int,
                     k: _Key) -> tuple[int, int] | None:
        """The span of a key whose Latin edges can sit on word boundaries, else None.

        A run of equal letters may straddle words (``is shit`` folds to ``isishit``), so the
        match may start anywhere in its first run that leaves enough letters, and end likewise.
        """
        runs = k.runs
        r0, n0 = int(self.run_start[first]), int(self.run_len[first])
        if k.bound_start:
            starts = [int(self.orig[r0 + j]) for j in range(n0 - runs[0] + 1)]
            start = next((p for p in starts if p == 0 or not _word_char(text[p - 1])), None)
        else:
            start = int(self.orig[r0])
        rl, nl = int(self.run_start[last]), int(self.run_len[last])
        if k.bound_end:
            ends = [int(self.orig[rl + j]) + 1 for j in range(runs[-1] - 1, nl)]
            end = next((p for p in reversed(ends) if p == len(text) or not _word_char(text[p])),
                       None)
        else:
            end = int(self.orig[rl + nl - 1]) + 1
        if start is None or end is None or start >= end:
            return None
        return start, end


@dataclass
class _Automaton:
    """ahocorasick-rs (Rust, contiguous NFA). pyahocorasick scans a node's children linearly,
    and a root with thousands of CJK children made it 3-7x slower on Chinese text."""

    ac: ahocorasick_rs.AhoCorasick | None = None
    keys: dict[str, list[_Key]] = field(default_factory=dict)
    values: list[list[_Key]] = field(default_factory=list)

    def add(self, key: str, k: _Key) -> None:
        self.keys.setdefault(key, []).append(k)

    def build(self) -> None:
        if not self.keys:
            return
        patterns = list(self.keys)
        self.values = [self.keys[p] for p in patterns]

        self.ac = ahocorasick_rs.AhoCorasick(
            patterns, implementation=ahocorasick_rs.Implementation.ContiguousNFA)


class WordFilter:
    """An immutable compiled dictionary. Build once per list version, share across calls.

    ``category_pinyin`` sets the pinyin mode of terms that do not set their own (default
    ``auto`` for every category, see :mod:`compliance.pinyin`).
    """

    def __init__(self, terms: Iterable[Term], *,
                 category_pinyin: Mapping[str, PinyinMode] | None = None) -> None:
        self._plain = _Automaton()
        self._spelled = _Automaton()  # Latin spellings, in the spelled folding
        self._pinyin = _Automaton()  # same-sounding characters, in the syllable folding
        self._innocent: dict[str, tuple[str, ...]] = {}  # term -> words its homophones skip
        homophone_terms: list[str] = []
        self._reach = 1  # the most characters a term has: how far Chinese is spelled from Latin
        atoms: set[str] = set()  # every Latin spelling of a term's unit
        self.max_len = 1
        self.term_count = 0
        policy = dict(category_pinyin or {})
        for t in terms:
            self.term_count += 1
            key, runs = canonical(t.text)
            latin = key.isascii()
            self._plain.add(key, _Key(t, runs, latin, latin, len(key)))
            self.max_len = max(self.max_len, len(key))
            if t.allow or latin:
                continue
            mode = t.pinyin or policy.get(t.category, PinyinMode.AUTO)
            sp = term_spelling(t.text, mode, initials=t.initials)
            if sp is None:
                continue
            if sp.mode is PinyinMode.HOMOPHONE:
                homophone_terms.append(t.text)
                pkey, pruns = canonical(t.text, pinyin=True)
                self._pinyin.add(pkey, _Key(t, pruns, False, False, len(pkey), True))
            self._reach = max(self._reach, len(sp.units))
            atoms.update(x for u in sp.units for x in (u.spellings or (u.char,)))
            for skey in sp.keys:
                self._spelled.add(skey, _Key(t, (1,), False, False, len(skey), True, sp))
                self.max_len = max(self.max_len, len(skey))
            if sp.initials:
                ikey, iruns = canonical(sp.initials)
                self._plain.add(ikey, _Key(t, iruns, True, True, len(ikey), True))
        self._atoms = Atoms.of(atoms)
        self._plain.build()
        self._spelled.build()
        self._pinyin.build()
        if homophone_terms:
            self._innocent = innocent_words(homophone_terms)
        if self._spelled.keys:
            english_words()  # loaded now, not by the first scan that needs it
        self.key_count = sum(len(a.keys) for a in (self._plain, self._spelled, self._pinyin))

    def scan(self, text: str) -> ScanResult:
        """Every hit with its span, the masked text, and whether a blocking term was found."""
        hits = self.find(text)
        return ScanResult(hits, mask(text, hits), any(h.action is Action.BLOCK for h in hits))

    def find(self, text: str, *, min_end: int = 0) -> list[Hit]:
        """Hits in ``text`` whose original span ends after ``min_end`` (streaming uses this)."""
        if not text:
            return []
        scan = _Text(text)
        raw, allows = self._raw_hits(self._plain, scan.canon, scan.folded, text, min_end)
        more: list[Hit] = []
        if self._pinyin.ac is not None:  # same-sounding characters (opt-in terms)
            sounds = self._raw_hits(self._pinyin, scan.sounds_canon(), scan.sounds, text,
                                    min_end)[0]
            more += self._not_innocent(sounds, text) if sounds else sounds
        # Latin spellings: only where the text holds a Latin letter at all.
        if self._spelled.ac is not None and scan.latin_runs():
            more += self._spelled_hits(scan, min_end)
        if more:
            seen = {(h.start, h.end, h.term) for h in raw}
            for h in more:
                if (h.start, h.end, h.term) not in seen:
                    seen.add((h.start, h.end, h.term))
                    raw.append(h)
        if allows:
            raw = [h for h in raw if not any(a0 <= h.start and h.end <= a1 for a0, a1 in allows)]
        raw.sort(key=lambda h: (h.start, -h.end))
        return raw

    def _not_innocent(self, hits: list[Hit], text: str) -> list[Hit]:
        """Homophone hits minus those inside a common word that only sounds alike (坚韧): a
        substring search around each hit, cheaper than another pass over the whole text."""
        out = []
        for h in hits:
            words = self._innocent.get(h.term, ())
            if not any(_covers(text, h.start, h.end, w) for w in words):
                out.append(h)
        return out

    def _spelled_hits(self, scan: _Text, min_end: int) -> list[Hit]:
        assert self._spelled.ac is not None
        text = scan.text
        spans: list[tuple[int, int, int]] = []  # (key index, first, last canonical position)
        near = spell_near(scan.canon, scan.latin_runs(), self._reach, NEAR_IN_PYTHON)
        if near is not None:
            matches = self._spelled.ac.find_matches_as_indexes(near.text, overlapping=True)
            if not matches:
                return []
            spans = list(near.spans(matches))
        else:
            f = scan.arrays()
            # Only the stretches near a letter that can be in a spelling are spelled and
            # searched, joined by an inert separator; the other letters are inert too.
            usable = self._atoms.covered(f)
            sel = np.flatnonzero(near_latin(f, self._reach, usable))
            if len(sel) == 0:
                return []
            pos = np.insert(sel, np.flatnonzero(np.diff(sel) > 1) + 1, -1)
            at = np.maximum(pos, 0)
            codes = np.where(pos >= 0, f.codes[at], FAR).astype(np.uint32)
            inert = (pos < 0) | (latin_letters(f)[at] & ~usable[at])
            spelled = spell(Folded(from_codes(codes), codes, f.orig, f.run_start, f.run_len),
                            ~inert)
            matches = self._spelled.ac.find_matches_as_indexes(spelled.text, overlapping=True)
            if not matches:
                return []
            # A match must begin and end on whole characters (not inside a syllable's
            # letters) and hold a Latin letter (characters alone are the plain and homophone
            # passes' job).
            m = np.array(matches, dtype=np.intp)
            width_a = np.asarray(spelled.width, dtype=np.intp)
            origin = np.repeat(np.arange(len(width_a)), width_a)
            first_s, last_s = origin[m[:, 1]], origin[m[:, 2] - 1]
            ends_a = np.cumsum(width_a)
            whole = (m[:, 1] == ends_a[first_s] - width_a[first_s]) & (
                m[:, 2] == ends_a[last_s])
            first_a, last_a = pos[first_s], pos[last_s]
            whole &= (first_a >= 0) & (last_a >= 0)
            letters = (f.codes >= ord("a")) & (f.codes <= ord("z"))
            before = np.concatenate(([0], np.cumsum(letters)))
            keep = np.flatnonzero(whole & (before[last_a + 1] > before[first_a]))
            spans = list(zip(m[keep, 0].tolist(), first_a[keep].tolist(),
                             last_a[keep].tolist(), strict=True))
        if not spans:
            return []
        way = scan.folded()
        hits: list[Hit] = []
        for idx, first, last in spans:
            start, end = way.span(first, last)
            if end <= min_end:
                continue
            for k in self._spelled.values[idx]:
                assert k.spelling is not None
                got = verify(text, start, end, k.spelling, _word_char)
                if got is not None:
                    s, e, _ = got
                    t = k.term
                    hits.append(Hit(s, e, text[s:e], t.text, t.category, t.severity,
                                    t.action, True))
        return hits

    def _raw_hits(
        self, auto: _Automaton, canon: str, folded: Callable[[], Folded | ShortFolded], text: str,
        min_end: int,
    ) -> tuple[list[Hit], list[tuple[int, int]]]:
        """Hits of ``auto`` over the canonical text ``canon``; ``folded`` gives its way back to
        the original, asked for only when something matched."""
        hits: list[Hit] = []
        allows: list[tuple[int, int]] = []
        if auto.ac is None or not canon:
            return hits, allows
        matches = auto.ac.find_matches_as_indexes(canon, overlapping=True)
        if not matches:
            return hits, allows
        arr = _Arrays(folded(), len(matches))
        for idx, first, stop in matches:
            last = stop - 1
            for k in auto.values[idx]:
                start, end = arr.span(first, last)
                if not k.term.allow and end <= min_end:
                    continue
                if not arr.enough_repeats(first, k.repeats):
                    continue
                if k.bounded:
                    bounds = arr.latin_bounds(text, first, last, k)
                    if bounds is None:
                        continue
                    start, end = bounds
                if k.term.allow:
                    allows.append((start, end))
                    continue
                t = k.term
                hits.append(Hit(start, end, text[start:end], t.text, t.category, t.severity,
                                t.action, k.pinyin))
        return hits, allows


class _Text:
    """One text being scanned and its foldings, each made on first use.

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


def _covers(text: str, start: int, end: int, word: str) -> bool:
    """``word`` occurs in ``text`` around [start, end)."""
    lo = max(0, end - len(word))
    pos = text.find(word, lo, start + len(word))
    while pos >= 0:
        if pos <= start and pos + len(word) >= end:
            return True
        pos = text.find(word, pos + 1, start + len(word))
    return False


def mask(text: str, hits: Iterable[Hit]) -> str:
    """Replace the letters of blocking and masking hits with MASK_CHAR (flags stay visible)."""
    chars = list(text)
    for h in hits:
        if h.action is Action.FLAG:
            continue
        for i in range(h.start, h.end):
            if not chars[i].isspace():
                chars[i] = MASK_CHAR
    return "".join(chars)


class StreamingScanner:
    """Scans text that arrives in pieces (ASR partials, word by word).

    A hit is reported by the ``feed`` call that delivers its last character, even when the term
    straddles pieces, and only once. The scanner keeps a tail of the text long enough to hold the
    longest term in canonical form (evasion characters in between included), so memory stays
    bounded on endless streams.
    """

    def __init__(self, word_filter: WordFilter) -> None:
        self._filter = word_filter
        self._buf = ""
        self._offset = 0  # absolute index of self._buf[0] in the whole stream
        self._reported: set[tuple[int, str]] = set()
        self.hits: list[Hit] = []  # every hit so far, absolute spans

    def feed(self, piece: str) -> list[Hit]:
        old_len = len(self._buf)
        self._buf += piece
        found = self._filter.find(self._buf, min_end=old_len)
        new: list[Hit] = []
        for h in found:
            a = Hit(h.start + self._offset, h.end + self._offset, h.matched, h.term, h.category,
                    h.severity, h.action, h.via_pinyin)
            key = (a.start, a.term)  # the end may grow (``shi``+``t``+``t``): report once
            if key in self._reported:
                continue
            self._reported.add(key)
            new.append(a)
        self.hits += new
        self._trim()
        return new

    def _trim(self) -> None:
        keep = self._filter.max_len + 2  # +1 for the word-boundary character, +1 margin
        if len(self._buf) <= keep * 4:
            return
        f = fold(self._buf)
        if len(f.text) <= keep:
            cut = max(0, len(self._buf) - keep * 64)  # mostly separators: bound it anyway
        else:
            cut = int(f.orig[f.run_start[len(f.text) - keep]])
        if cut > 0:
            self._buf = self._buf[cut:]
            self._offset += cut
            self._reported = {r for r in self._reported if r[0] >= self._offset}
