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
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import ahocorasick_rs

from compliance import native
from compliance.homophones import innocent_words
from compliance.normalize import canonical, fold
from compliance.pinyin import (
    FlatUnit,
    PinyinMode,
    TermSpelling,
    english_words,
    term_spelling,
    verify_units,
    warm_verify,
)
from compliance.scantext import MatchArrays, ScanText, word_char
from compliance.spelling import Atoms

CATEGORIES = ("politics", "porn", "violence", "fraud", "abuse", "competitor", "custom")
MASK_CHAR = "*"


class Action(enum.StrEnum):
    BLOCK = "block"  # refuse to speak / send / publish
    MASK = "mask"  # replace with MASK_CHAR and go on
    FLAG = "flag"  # report only (inspection, statistics)


ACTIONS = tuple(Action)  # a key's action by its place here (see Check)

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


# What a compiled filter keeps per automaton key, and why it is flat. A filter is built on
# first use and after every word change, after the engine's start-up gc.freeze(), so whatever
# it holds that the cyclic garbage collector tracks is walked by every full collection of the
# process: a 100k-term filter used to keep ~0.9M such objects (a _Key per key, a list per key,
# a TermSpelling and Units per term...), and a full collection stopped every call's audio for
# ~350 ms. Plain tuples of str, int, bool and None (and of such tuples) leave the collector's
# lists once a collection has seen them; lists, dicts of lists, dataclass instances (slots or
# not), named tuples and enum members never do. So a key's entry is a plain tuple of those,
# the term's action as its place in ACTIONS, and the filter keeps no Term.

# A plain-pass key (and a homophone-pass key): what the checks read (the native ones in
# _hits.c: allow, repeats or None when all runs are 1, bound_start, bound_end, the first and
# last runs), then the fields of its Hits after the span (term, category, severity, the
# action's place in ACTIONS, via_pinyin).
Check = tuple[bool, tuple[int, ...] | None, bool, bool, int, int, str, str, int, int, bool]
BOUND_START, BOUND_END = 2, 3  # their places in a Check
# A key of the spelled folding: (the term's place in the list, the term's units as
# Unit.flat, its PinyinMode's value, term, category, severity, the action's place in ACTIONS).
Spelled = tuple[int, tuple[FlatUnit, ...], str, str, str, int, int]


def _check(term: Term, runs: tuple[int, ...], bound_start: bool, bound_end: bool,
           pinyin: bool = False) -> Check:
    """The entry of a key of ``term`` whose canonical runs are ``runs``; ``bound_start`` (
    ``bound_end``): the key starts (ends) with a Latin letter and needs a word boundary there;
    ``pinyin``: a pinyin spelling, not the term's own characters."""
    return (term.allow, runs if max(runs) > 1 else None, bound_start, bound_end, runs[0],
            runs[-1], term.text, term.category, term.severity, ACTIONS.index(term.action),
            pinyin)


PREFIX4 = 4  # natively walked keys this long or longer get the four-letter start filter
PREFIX2 = 2  # keys walked from every start: this long or longer get the two-symbol filter


@dataclass
class _Automaton:
    """The native automata (compliance/_wordscan.c) when built, else ahocorasick-rs (Rust,
    contiguous NFA; pyahocorasick scans a node's children linearly, and a root with thousands
    of CJK children made it 3-7x slower on Chinese text).

    Natively, keys whose every term needs word boundaries (Latin words, initials) are kept
    apart in ``walks``, tries walked down only from where a word can start: Aho-Corasick
    follows failure links through every letter of Latin text, most of the scan's cost there.
    ``links`` False: walks only (the spelled pass). ``walk_all``: every key walked, from every
    start whose first two symbols begin a key (the homophone pass: in Chinese text nearly
    every syllable begins some key, so Aho-Corasick sat deep in the trie and followed failure
    links at most characters, where a pair of syllables rules out most starts at once)."""

    native: bool
    links: bool = True
    walk_all: bool = False
    ac: Any = None
    keys: dict[str, list[Any]] = field(default_factory=dict)  # while building, then emptied
    key_count: int = 0
    values: tuple[tuple[Any, ...], ...] = ()  # per key of ``ac``: its entries (Check, Spelled)
    walks: tuple[tuple[Any, tuple[tuple[Any, ...], ...]], ...] = ()
    # natively: (automaton, values, walked) of ``ac`` and ``walks``, for native.hits()
    sources: tuple[tuple[Any, tuple[tuple[Any, ...], ...], bool], ...] = ()

    def add(self, key: str, entry: Any) -> None:
        self.keys.setdefault(key, []).append(entry)

    def build(self) -> None:
        """The automata, and every key's entries as tuples (``keys`` is emptied: its lists
        would stay tracked by the garbage collector)."""
        keys = {p: tuple(v) for p, v in self.keys.items()}
        self.keys = {}
        self.key_count = len(keys)
        if not keys:
            return
        if not self.native:
            patterns = list(keys)
            self.values = tuple(keys[p] for p in patterns)
            self.ac = ahocorasick_rs.AhoCorasick(
                patterns, implementation=ahocorasick_rs.Implementation.ContiguousNFA)
            return
        walks = []
        if self.walk_all:
            for long in (True, False):
                walked = [p for p in keys if (len(p) >= PREFIX2) == long]
                if walked:
                    walks.append((native.automaton(walked, links=False, prefix2=long,
                                                   bounded=False),
                                  tuple(keys[p] for p in walked)))
            self.walks = tuple(walks)
            self.sources = tuple((w, v, True) for w, v in self.walks)
            return
        apart = {p for p, v in keys.items()
                 if not self.links or all(k[BOUND_START] or k[BOUND_END] for k in v)}
        rest = [p for p in keys if p not in apart]
        if rest:
            self.values = tuple(keys[p] for p in rest)
            self.ac = native.automaton(rest)
        for long in (True, False):
            walked = [p for p in keys if p in apart and (len(p) >= PREFIX4) == long]
            if walked:
                walks.append((native.automaton(walked, links=False, prefix4=long),
                              tuple(keys[p] for p in walked)))
        self.walks = tuple(walks)
        self.sources = ((*(((self.ac, self.values, False),) if self.ac is not None else ()),
                         *((w, v, True) for w, v in self.walks)))

    @property
    def empty(self) -> bool:
        return self.ac is None and not self.walks


@dataclass
class _Spelled:
    """Pinyin spellings of one kind of term, in the spelled folding (:mod:`compliance.spelling`).

    Homophone terms and the others are searched apart: a non-homophone term's Chinese
    characters must be its own, so the native pass leaves every other character out of the
    search (``relevant``), where a homophone term accepts any character that sounds alike."""

    auto: _Automaton
    reach: int = 1  # the most characters a term has: how far Chinese is spelled from Latin
    spellings: set[str] = field(default_factory=set)  # every Latin spelling of a term's unit
    chars: set[str] = field(default_factory=set)  # the terms' own characters
    syllables: set[int] = field(default_factory=set)  # homophone terms' syllable ids
    atoms: Atoms | None = None
    relevant: bytes = b""

    def add(self, sp: TermSpelling, term: Term, seq: int) -> None:
        self.reach = max(self.reach, len(sp.units))
        self.spellings.update(x for u in sp.units for x in (u.spellings or (u.char,)))
        self.chars.update(u.char for u in sp.units)
        if sp.mode is PinyinMode.HOMOPHONE:
            self.syllables.update(u.syllable for u in sp.units if u.chinese)
        entry: Spelled = (seq, tuple(u.flat for u in sp.units), sp.mode.value, term.text,
                          term.category, term.severity, ACTIONS.index(term.action))
        for skey in sp.keys:
            self.auto.add(skey, entry)

    def build(self) -> None:
        self.atoms = Atoms.of(self.spellings)
        self.auto.build()
        if self.auto.native and not self.auto.empty:
            self.relevant = native.relevant(self.chars, self.syllables)
        self.spellings, self.chars, self.syllables = set(), set(), set()  # built: not needed


class WordFilter:
    """An immutable compiled dictionary. Build once per list version, share across calls.

    ``category_pinyin`` sets the pinyin mode of terms that do not set their own (default
    ``auto`` for every category, see :mod:`compliance.pinyin`). ``native`` (default: when
    built) scans with the native inner loops; the Python paths find the same hits.
    """

    def __init__(self, terms: Iterable[Term], *,
                 category_pinyin: Mapping[str, PinyinMode] | None = None,
                 native_loops: bool | None = None) -> None:
        self.native = native.available() if native_loops is None else native_loops
        self._plain = _Automaton(self.native)
        # same-sounding characters, syllable folding
        self._pinyin = _Automaton(self.native, walk_all=True)
        # Latin spellings, in the spelled folding: of the other terms, of homophone terms
        self._spelled = (_Spelled(_Automaton(self.native, links=not self.native)),
                         _Spelled(_Automaton(self.native, links=not self.native)))
        self._innocent: dict[str, tuple[str, ...]] = {}  # term -> words its homophones skip
        homophone_terms: list[str] = []
        self.max_len = 1
        self.term_count = 0
        policy = dict(category_pinyin or {})
        for t in terms:
            self.term_count += 1
            key, runs = canonical(t.text)
            latin = key.isascii()
            self._plain.add(key, _check(t, runs, latin, latin))
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
                self._pinyin.add(pkey, _check(t, pruns, False, False, True))
            self._spelled[sp.mode is PinyinMode.HOMOPHONE].add(sp, t, self.term_count)
            self.max_len = max([self.max_len, *(len(k) for k in sp.keys)])
            if sp.initials:
                ikey, iruns = canonical(sp.initials)
                self._plain.add(ikey, _check(t, iruns, True, True, True))
        self._plain.build()
        self._pinyin.build()
        for group in self._spelled:
            group.build()
        # natively, both groups in one call: (tries, reach, relevant), and per trie its values
        self._spelled_groups = tuple((tuple(w for w, _ in g.auto.walks), g.reach, g.relevant)
                                     for g in self._spelled if g.auto.walks)
        self._spelled_values = tuple(v for g in self._spelled for _, v in g.auto.walks)
        if homophone_terms:
            self._innocent = innocent_words(homophone_terms)
        if any(g.auto.key_count for g in self._spelled):
            # Loaded now, not by the first scan that needs it (~0.25 s: the first scan after
            # a compile cost 2.5x the others when ``keys``, emptied by build(), was asked).
            english_words()
            warm_verify()
        autos = (self._plain, self._pinyin, *(g.auto for g in self._spelled))
        self.key_count = sum(a.key_count for a in autos)
        # The tables are plain tuples of atomics: out of the collector's lists now, not over
        # its next few full collections (see Check).
        native.untrack(tuple(t for a in autos for t in (a.values, *(v for _, v in a.walks))))

    def scan(self, text: str) -> ScanResult:
        """Every hit with its span, the masked text, and whether a blocking term was found."""
        hits = self.find(text)
        return ScanResult(hits, mask(text, hits), any(h.action is Action.BLOCK for h in hits))

    def find(self, text: str, *, min_end: int = 0) -> list[Hit]:
        """Hits in ``text`` whose original span ends after ``min_end`` (streaming uses this)."""
        if not text:
            return []
        if self.native:
            raw, allows, more = self._find_native(text, min_end)
        else:
            raw, allows, more = self._find_python(text, min_end)
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

    def _find_native(self, text: str, min_end: int,
                     ) -> tuple[list[Hit], list[tuple[int, int]], list[Hit]]:
        f = native.fold(text)
        raw: list[Hit] = []
        allows: list[tuple[int, int]] = []
        if not self._plain.empty:
            raw, allows = native.hits(f, text, self._plain.sources, min_end, hit_type=Hit,
                                      actions=ACTIONS)
        more: list[Hit] = []
        if not self._pinyin.empty:  # same-sounding characters (opt-in terms)
            got = native.hits(f.sounds(), text, self._pinyin.sources, min_end, hit_type=Hit,
                              actions=ACTIONS)[0]
            if got:
                more += self._not_innocent(got, text)
        spans = [(last, first, self._spelled_values[i], idx) for i, idx, first, last in
                 native.spelled(f, text, self._spelled_groups)] if self._spelled_groups else []
        if spans:
            more += self._spelled_hits(spans, f, text, min_end)
        return raw, allows, more

    def _find_python(self, text: str, min_end: int,
                     ) -> tuple[list[Hit], list[tuple[int, int]], list[Hit]]:
        scan = ScanText(text)
        raw: list[Hit] = []
        allows: list[tuple[int, int]] = []
        if self._plain.ac is not None and scan.canon:
            found = self._plain.ac.find_matches_as_indexes(scan.canon, overlapping=True)
            if found:
                matches = [(stop, first, idx, self._plain.values) for idx, first, stop in found]
                raw, allows = self._raw_hits(matches, scan.folded(), text, min_end)
        more: list[Hit] = []
        if self._pinyin.ac is not None and scan.canon:
            found = self._pinyin.ac.find_matches_as_indexes(scan.sounds_canon(),
                                                            overlapping=True)
            if found:
                matches = [(stop, first, idx, self._pinyin.values) for idx, first, stop in found]
                more += self._not_innocent(
                    self._raw_hits(matches, scan.sounds(), text, min_end)[0], text)
        # Latin spellings: only where the text holds a Latin letter at all.
        if scan.canon and scan.latin_runs():
            spans = []
            for g in self._spelled:
                if g.auto.ac is not None:
                    assert g.atoms is not None
                    spans += [(last, first, g.auto.values, idx) for idx, first, last in
                              scan.spelled_spans(g.auto.ac, g.atoms, g.reach)]
            if spans:
                more += self._spelled_hits(spans, scan.folded(), text, min_end)
        return raw, allows, more

    def _not_innocent(self, hits: list[Hit], text: str) -> list[Hit]:
        """Homophone hits minus those inside a common word that only sounds alike (坚韧): a
        substring search around each hit, cheaper than another pass over the whole text."""
        if not hits:
            return hits
        out = []
        for h in hits:
            words = self._innocent.get(h.term, ())
            if not any(_covers(text, h.start, h.end, w) for w in words):
                out.append(h)
        return out

    def _spelled_hits(self, spans: list[tuple[int, int, tuple[tuple[Spelled, ...], ...], int]],
                      way: Any,
                      text: str, min_end: int) -> list[Hit]:
        """Verified hits of the spelled candidates ``(last, first, values, key)``, in the order
        one automaton over all spellings would have found them (by end, longest first, terms
        in list order)."""
        if len(spans) > 1:
            spans.sort(key=lambda x: (x[0], x[1]))
        hits: list[Hit] = []
        for i, (last, first, values, idx) in enumerate(spans):
            if i and spans[i - 1][:2] == (last, first):
                continue  # done with the span's first key
            start, end = way.span(first, last)
            if end <= min_end:
                continue
            keys = values[idx]
            if i + 1 < len(spans) and spans[i + 1][:2] == (last, first):  # kept apart: merge
                same = [s for s in spans[i:] if s[:2] == (last, first)]
                keys = tuple(sorted((k for s in same for k in s[2][s[3]]), key=lambda k: k[0]))
            for _, units, mode, term, category, severity, action in keys:
                got = verify_units(text, start, end, units, mode, word_char=word_char)
                if got is not None:
                    s, e, _ = got
                    hits.append(Hit(s, e, text[s:e], term, category, severity, ACTIONS[action],
                                    True))
        return hits

    def _raw_hits(self, matches: list[tuple[int, int, int, tuple[tuple[Check, ...], ...]]],
                  folded: Any, text: str, min_end: int,
                  ) -> tuple[list[Hit], list[tuple[int, int]]]:
        """Hits of automaton ``matches`` ``(stop, first, key, values)`` over a canonical text
        whose way back to the original is ``folded``."""
        hits: list[Hit] = []
        allows: list[tuple[int, int]] = []
        arr = MatchArrays(folded, len(matches))
        for stop, first, idx, values in matches:
            last = stop - 1
            span = arr.span(first, last)
            for (allow, repeats, bound_start, bound_end, run_first, run_last, term, category,
                 severity, action, pinyin) in values[idx]:
                start, end = span
                if not allow and end <= min_end:
                    continue
                if repeats is not None and not arr.enough_repeats(first, repeats):
                    continue
                if bound_start or bound_end:
                    bounds = arr.latin_bounds(text, first, last, (run_first, run_last),
                                              bound_start=bound_start, bound_end=bound_end)
                    if bounds is None:
                        continue
                    start, end = bounds
                if allow:
                    allows.append((start, end))
                    continue
                hits.append(Hit(start, end, text[start:end], term, category, severity,
                                ACTIONS[action], pinyin))
        return hits, allows


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
