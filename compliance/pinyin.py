"""Pinyin matching: ``dubo``, ``du博``, ``赌bo``, ``dǔ bó``, ``du3 bo2`` (and, opt-in, ``DB``
and same-sound characters) for ``赌博``.

One key per term, not one per spelling: the scanner also folds the text into the *spelled*
form (:func:`compliance.spelling.spell`: every Chinese character replaced by its pinyin, tone
marks, tone numbers and separators gone), where the term's key is its own spelling. So full,
mixed and toned spellings all meet the one key, and the automaton stays the size of the word
list. A raw match there is then checked unit by unit against the term (:func:`verify`): each
Chinese character in the match must be the term's own character at that syllable (or sound
like it, in homophone mode), each Latin run must spell the syllables it stands for, and a
Latin edge must sit on a word boundary (``dubo`` is not in ``dubois``).

How much of this a term gets is its :class:`PinyinMode`, set per term or per category:

- ``auto`` (the default): full and mixed spellings, except a full spelling that is an English
  word (``made`` for 妈的, from pyspellchecker's list) or shorter than four letters, and a mixed
  one whose Latin run is an English word; single-character terms get nothing.
- ``spelled``: every spelling, even one that is an English word.
- ``homophone``: ``spelled`` plus characters that sound the same (沙比 for 傻逼): this flags
  ordinary Chinese text often (~0.5 % of sentences with every term on, even with the innocent
  words of :mod:`compliance.homophones` skipped; docs/benchmarks.md), so it is opt-in.
- ``off``: the characters only.

``initials`` (opt-in per term) adds the first letters as a Latin key (``sb`` for 傻逼).
"""

from __future__ import annotations

import enum
import gzip
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from itertools import product
from typing import Any, NamedTuple

from compliance.normalize import (
    EXPANDED_BASE,
    PINYIN_BASE,
    fold_table,
    folded_char,
    nul_chars,
    pinyin_names,
    pinyin_table,
)
from compliance.spelling import spelled_key

MIN_AUTO_SPELLED_LETTERS = 4  # a shorter full spelling (``tama`` is 4) needs an explicit opt-in
MAX_ALTERNATES = 8  # extra keys per term (phrase readings, ü typed as v)
TONE_DIGITS = "12345"


class PinyinMode(enum.StrEnum):
    OFF = "off"
    AUTO = "auto"
    SPELLED = "spelled"
    HOMOPHONE = "homophone"


@dataclass(frozen=True, slots=True)
class Unit:
    """One character of a term: Chinese (with its spellings) or a literal (digit, letter)."""

    char: str
    spellings: tuple[str, ...] = ()
    syllable: int = 0  # first-reading syllable id, for homophones

    @property
    def chinese(self) -> bool:
        return bool(self.spellings)

    @property
    def flat(self) -> FlatUnit:
        return (self.char, self.spellings, self.syllable)


# A Unit as a plain tuple (char, spellings, syllable): what a compiled filter keeps per unit.
# A plain tuple of str and int leaves the garbage collector's lists once a collection has seen
# it (a Unit, or a named tuple, stays tracked for good), and a 100k-term filter holds ~210k.
FlatUnit = tuple[str, tuple[str, ...], int]


@dataclass(frozen=True, slots=True)
class TermSpelling:
    """What the scanner needs of a term for pinyin matching."""

    keys: tuple[str, ...]  # spelled-form keys: the term's own first, then alternates
    units: tuple[Unit, ...]
    mode: PinyinMode
    initials: str | None  # the initials key (plain folding), when asked for


@lru_cache(maxsize=1)
def english_words() -> frozenset[str]:
    """English words (pyspellchecker's frequency list, MIT): a spelling that is one of these
    (``made``, ``fan``) is an innocent word first, so it needs an explicit opt-in."""
    raw = resources.files("spellchecker").joinpath("resources/en.json.gz").read_bytes()
    return frozenset(json.loads(gzip.decompress(raw)))


def is_innocent(letters: str) -> bool:
    return len(letters) < MIN_AUTO_SPELLED_LETTERS or letters in english_words()


@lru_cache(maxsize=1)
def _lists() -> tuple[list[int], list[int], int]:
    """The fold and syllable tables as Python lists: per-character reads of numpy arrays cost
    ~10x more, and :func:`verify` reads a few per raw match."""
    return fold_table().tolist(), pinyin_table().tolist(), len(pinyin_names())


def _syllable(ch: str) -> int:
    _, syl, n = _lists()
    cp = ord(ch)
    if cp >= len(syl):
        return -1
    sid = syl[cp] - PINYIN_BASE
    return sid if 0 <= sid < n else -1


def _is_latin(ch: str) -> bool:
    """``ch`` folds to ASCII letters (what makes a Latin piece in :func:`_pieces`)."""
    table = _lists()[0]
    cp = ord(ch)
    if cp >= len(table):
        return False
    if table[cp] < EXPANDED_BASE:
        return ord("a") <= table[cp] <= ord("z")
    return folded_char(ch).isalpha()  # ﬁ: its letters are all ASCII


def units_of(term: str) -> list[Unit]:
    from pypinyin import Style, lazy_pinyin  # noqa: PLC0415 - loads its dictionaries

    table = _lists()[0]
    chars = "".join(folded_char(c) if ord(c) < len(table) else c for c in term)
    chars = chars.replace("\0", "")
    if not chars:
        return []

    def keep(run: str) -> Any:  # non-Chinese runs come back one item per character
        return list(run)

    phrase = lazy_pinyin(chars, style=Style.NORMAL, errors=keep)
    if len(phrase) != len(chars):
        phrase = list(chars)
    names = pinyin_names()
    out = []
    for ch, reading in zip(chars, phrase, strict=True):
        sid = _syllable(ch)
        if sid < 0:
            out.append(Unit(ch))
            continue
        options = [names[sid], reading, reading.replace("v", "u")]  # lü typed lv or lu
        out.append(Unit(ch, tuple(dict.fromkeys(o for o in options if o.isascii())), sid))
    return out


def term_spelling(term: str, mode: PinyinMode, *, initials: bool = False,
                  ) -> TermSpelling | None:
    """The keys of ``term`` in the spelled folding for ``mode``, or None when it gets none."""
    if mode is PinyinMode.OFF and not initials:
        return None
    units = units_of(term)
    chinese = [u for u in units if u.chinese]
    if not chinese:
        return None
    keys: list[str] = []
    minimum = 2 if mode is PinyinMode.AUTO else 1
    if mode is not PinyinMode.OFF and len(chinese) >= minimum:
        keys.append(spelled_key(term))
        if any(len(u.spellings) > 1 for u in units):  # polyphones, ü typed v
            combos = list(product(*[u.spellings or (u.char,) for u in units]))[:MAX_ALTERNATES]
        else:
            combos = [tuple(u.spellings[0] if u.chinese else u.char for u in units)]
        for combo in combos:
            alt = spelled_key("".join(combo))
            if alt and alt not in keys:
                keys.append(alt)
    initial_key = None
    if initials and len(chinese) >= 2:
        initial_key = "".join(u.spellings[0][0] if u.chinese else u.char for u in units)
    if not keys and initial_key is None:
        return None
    return TermSpelling(tuple(keys), tuple(units), mode, initial_key)


_RUNS = re.compile(r"(.)\1+")


def _collapse(s: str) -> str:
    return _RUNS.sub(r"\1", s)


class _Piece(NamedTuple):
    """One unit of a matched text (a named tuple: verify() makes a few per raw match, and a
    frozen dataclass cost ~20x more to make)."""

    kind: str  # "cjk", "latin" or "literal"
    text: str


def _pieces(text: str) -> list[_Piece]:
    """The matched text as units: Chinese characters, Latin runs (``d u b o``, letters split by
    separators or tone numbers, is one run), literal characters.

    One ``str.translate`` folds the whole text (NUL for a dropped character, so a tone number
    still sees what follows it; characters beyond the BMP stay as they are), then one loop
    over the folded characters: verify() asks this for every spelled candidate."""
    folded = text.translate(nul_chars())
    _, syl, n_syl = _lists()
    n_table = len(syl)
    out: list[_Piece] = []
    latin = ""  # the Latin run so far (a Latin piece is the last one while it is not empty)
    last = len(folded) - 1
    for i, ch in enumerate(folded):
        if "a" <= ch <= "z":
            latin += ch
            continue
        if ch == "\0":
            continue
        if latin and ch in TONE_DIGITS and (i == last or not folded[i + 1].isdigit()):
            continue  # du3
        if latin:
            out.append(_Piece("latin", latin))
            latin = ""
        cp = ord(ch)
        sid = syl[cp] - PINYIN_BASE if cp < n_table else -1
        out.append(_Piece("cjk" if 0 <= sid < n_syl else "literal", ch))
    if latin:
        out.append(_Piece("latin", latin))
    return out


def _align(pieces: list[_Piece], units: tuple[FlatUnit, ...], homophone: bool) -> bool:
    """Can ``pieces`` spell ``units`` in order: characters equal (or same-sounding), Latin runs
    spelling one or more syllables?"""

    def go(i: int, j: int) -> bool:
        if i == len(pieces):
            return j == len(units)
        if j == len(units):
            return False
        p = pieces[i]
        char, spellings, syllable = units[j]
        if p.kind != "latin":
            if p.text == char:
                return go(i + 1, j + 1)
            if p.kind == "cjk" and spellings and homophone and _syllable(p.text) == syllable:
                return go(i + 1, j + 1)
            return False
        want = _collapse(p.text)
        for k in range(1, len(units) - j + 1):
            if want in _spelled_as(units[j : j + k]) and go(i + 1, j + k):
                return True
        return False

    return go(0, 0)


@lru_cache(maxsize=65536)
def _spelled_as(units: tuple[FlatUnit, ...]) -> frozenset[str]:
    """Every way ``units`` can be spelled in Latin letters, repeats collapsed (a term's units
    are asked again and again while scanning: cached)."""
    combos = product(*[spellings or (char,) for char, spellings, _ in units])
    return frozenset(_collapse("".join(c)) for c in combos)


def warm_verify() -> None:
    """Makes the tables :func:`verify_units` reads (the fold and syllable lists, the
    translation table of :func:`_pieces`) now: a filter's compile calls this, so the first
    scan after it does not pay for them."""
    _lists()
    nul_chars()


def verify(text: str, start: int, end: int, spelling: TermSpelling,
           word_char: Callable[[str], bool]) -> tuple[int, int, str] | None:
    """A raw match of ``spelling``'s key over ``text[start:end]``: the span (widened over a
    trailing tone number) and what kind of match it is, or None when it is not one."""
    return verify_units(text, start, end, tuple(u.flat for u in spelling.units),
                        spelling.mode, word_char=word_char)


def verify_units(text: str, start: int, end: int, units: tuple[FlatUnit, ...], mode: str, *,
                 word_char: Callable[[str], bool]) -> tuple[int, int, str] | None:
    """:func:`verify` of a spelling kept flat (:attr:`Unit.flat`, the mode as its value), as a
    compiled filter holds it."""
    last = end - 1
    if end < len(text) and text[end] in TONE_DIGITS and (
            end + 1 == len(text) or not text[end + 1].isdigit()):
        end += 1
    # The word-boundary checks below, first and without splitting the match into pieces: they
    # turn away most raw matches (a syllable at the end of an English word, ``...de`` + 的).
    # A Latin first (last) character is the first (last) piece's, so this decides the same.
    if (start > 0 and _is_latin(text[start]) and word_char(text[start - 1])) or (
            end < len(text) and _is_latin(text[last]) and word_char(text[end])):
        return None
    pieces = _pieces(text[start:end])
    if not pieces:
        return None
    latin = [p.text for p in pieces if p.kind == "latin"]
    cjk = [p for p in pieces if p.kind == "cjk"]
    homophone = mode == PinyinMode.HOMOPHONE
    if not latin:
        literal = [p.text for p in pieces] == [u[0] for u in units]
        if literal or not homophone:
            return None  # the characters themselves: the plain pass reports them
    if pieces[0].kind == "latin" and start > 0 and word_char(text[start - 1]):
        return None
    if pieces[-1].kind == "latin" and end < len(text) and word_char(text[end]):
        return None
    # The innocent-word checks before the alignment: they need only the pieces and turn away
    # most raw matches in Latin text (a short or English run of letters).
    if mode == PinyinMode.AUTO:
        if not cjk and is_innocent("".join(latin)):
            return None
        if any(len(run) >= MIN_AUTO_SPELLED_LETTERS and run in english_words() for run in latin):
            return None
    if not _align(pieces, units, homophone):
        return None
    kind = "homophone" if not latin else ("spelled" if not cjk else "mixed")
    return start, end, kind
