"""Pinyin spellings of a Chinese term: the keys that catch ``dubo``, ``du博``, ``赌bo``,
``dǔ bó``, ``du3 bo2``, ``DB`` and (opt-in) same-sound characters for ``赌博``.

The text is never transliterated: each term is expanded, once, into the spellings people type,
and those go into the same automaton as the term. Tone marks and separators cost nothing here
because the text folding already drops them (``dǔ-bó`` folds to ``dubo``); tone numbers get one
extra key. A Latin edge of a key must sit on a word boundary in the text (``dubo`` is not in
``dubois``), which is what keeps spelled keys out of ordinary English.

How much of this a term gets is its :class:`PinyinMode`, set per term or per category:

- ``auto`` (the default): the full spelling and the mixed spellings, except that a full spelling
  that is an English word (``made`` for 妈的) or shorter than four letters is left out;
  single-character terms get nothing (``si``, ``cao`` are everywhere).
- ``spelled``: every spelling, even one that is an English word.
- ``homophone``: ``spelled`` plus characters that sound the same (沙比 for 傻逼), which is what
  flags ordinary Chinese most often, so it is opt-in (measured in docs/benchmarks.md).
- ``off``: the characters only.

``initials`` (opt-in per term) adds the first letters (``sb`` for 傻逼).
"""

from __future__ import annotations

import enum
import gzip
import json
import unicodedata
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from itertools import product
from typing import Any

from compliance.normalize import (
    DROP,
    PINYIN_BASE,
    fold_codes,
    pinyin_names,
    pinyin_table,
    to_codes,
)

MIN_AUTO_SPELLED_LETTERS = 4  # a shorter full spelling (``tama`` is 4) needs an explicit opt-in
MAX_SPELLINGS = 8  # full spellings per term (polyphones x ü written u or v)
MAX_MIXED_SYLLABLES = 6  # longer terms get full spellings only
MIXED_BOTH_WAYS_UP_TO = 4  # up to this length: one syllable spelled, and all but one spelled


class PinyinMode(enum.StrEnum):
    OFF = "off"
    AUTO = "auto"
    SPELLED = "spelled"
    HOMOPHONE = "homophone"


@dataclass(frozen=True, slots=True)
class Spelling:
    """One extra key of a term: its text (to be folded like any term) and where it matches.

    ``homophone`` keys live in the syllable space (characters read as syllables); the others
    in the plain folded space. ``bound_start``/``bound_end``: that edge is a Latin letter and
    must sit on a word boundary."""

    text: str
    kind: str  # spelled, tones, mixed, initials, homophone
    bound_start: bool
    bound_end: bool
    homophone: bool = False


@dataclass(frozen=True, slots=True)
class _Unit:
    char: str  # the folded character (or literal: a digit, a Latin letter)
    spellings: tuple[str, ...]  # empty for a literal
    tone3: str = ""

    @property
    def chinese(self) -> bool:
        return bool(self.spellings)


@lru_cache(maxsize=1)
def english_words() -> frozenset[str]:
    """English words (pyspellchecker's frequency list, MIT): a full spelling that is one of
    these (``made``, ``fan``) is an innocent word first, so it needs an explicit opt-in."""
    raw = resources.files("spellchecker").joinpath("resources/en.json.gz").read_bytes()
    return frozenset(json.loads(gzip.decompress(raw)))


def is_innocent(letters: str) -> bool:
    return len(letters) < MIN_AUTO_SPELLED_LETTERS or letters in english_words()


def _units(term: str) -> list[_Unit]:
    from pypinyin import Style, lazy_pinyin  # noqa: PLC0415 - loads its dictionaries

    codes = fold_codes(to_codes(term))
    chars = "".join(chr(c) for c in codes.tolist() if c != DROP)
    if not chars:
        return []
    def keep(run: str) -> Any:  # non-Chinese runs come back one item per character
        return list(run)

    normal = lazy_pinyin(chars, style=Style.NORMAL, errors=keep)
    tones = lazy_pinyin(chars, style=Style.TONE3, errors=keep, neutral_tone_with_five=False)
    if len(normal) != len(chars) or len(tones) != len(chars):
        return []
    first = pinyin_table()
    names = pinyin_names()
    units = []
    for ch, spelled, tone3 in zip(chars, normal, tones, strict=True):
        if spelled == ch or not spelled.isascii():
            units.append(_Unit(ch, ()))
            continue
        options = [spelled]
        sid = int(first[ord(ch)]) if ord(ch) < len(first) else 0
        reading = names.get(sid - PINYIN_BASE) if sid >= PINYIN_BASE else None
        if reading and reading not in options:
            options.append(reading)  # the character's first reading, as the text side uses
        options += [o.replace("v", "u") for o in options if "v" in o]  # lü typed as lu
        units.append(_Unit(ch, tuple(dict.fromkeys(options)), tone3))
    return units


def _is_word_char(ch: str) -> bool:
    return ch.isascii() and ch.isalnum()


def spellings(term: str, mode: PinyinMode, *, initials: bool = False) -> list[Spelling]:
    """Every extra key of ``term`` for ``mode`` (and its initials when asked)."""
    if mode is PinyinMode.OFF and not initials:
        return []
    units = _units(term)
    chinese = [u for u in units if u.chinese]
    if len(chinese) < (1 if mode is not PinyinMode.AUTO else 2):
        return []
    out: list[Spelling] = []

    def add(parts: list[str], latin: list[bool], kind: str, homophone: bool = False) -> None:
        text = "".join(parts)
        start = latin[0] or _is_word_char(parts[0][:1])
        end = latin[-1] or _is_word_char(parts[-1][-1:])
        out.append(Spelling(text, kind, start, end, homophone))

    if mode is not PinyinMode.OFF:
        fulls = list(product(*[u.spellings or (u.char,) for u in units]))[:MAX_SPELLINGS]
        for combo in fulls:
            letters = "".join(p for p, u in zip(combo, units, strict=True) if u.chinese)
            if mode is PinyinMode.AUTO and is_innocent(letters):
                continue
            add(list(combo), [u.chinese for u in units], "spelled")
            if combo == fulls[0]:
                tones = [u.tone3 or u.char for u in units]
                if tones != list(combo):
                    add(tones, [u.chinese for u in units], "tones")
        homophone = mode is PinyinMode.HOMOPHONE
        for latin in _mixed_patterns(units):
            parts = [u.spellings[0] if spell else u.char for u, spell in zip(units, latin,
                                                                             strict=True)]
            if mode is PinyinMode.AUTO and _english_run(parts, latin):
                continue  # 他made: "made" is an English word first
            add(parts, latin, "mixed", homophone)
        if homophone:
            add([u.char for u in units], [False] * len(units), "homophone", True)
    if initials and len(chinese) >= 2:
        parts = [u.spellings[0][0] if u.chinese else u.char for u in units]
        add(parts, [u.chinese for u in units], "initials")
    return _dedupe(out)


def _english_run(parts: list[str], latin: list[bool]) -> bool:
    runs: list[str] = [""]
    for part, spelled in zip(parts, latin, strict=True):
        if spelled:
            runs[-1] += part
        elif runs[-1]:
            runs.append("")
    return any(len(r) >= MIN_AUTO_SPELLED_LETTERS and r in english_words() for r in runs)


def _mixed_patterns(units: list[_Unit]) -> list[list[bool]]:
    """Which syllables are spelled: one at a time, and for short terms all but one."""
    idx = [i for i, u in enumerate(units) if u.chinese]
    if not 2 <= len(idx) <= MAX_MIXED_SYLLABLES:
        return []
    patterns = [[i == j for i in range(len(units))] for j in idx]
    if len(idx) <= MIXED_BOTH_WAYS_UP_TO:
        patterns += [[i in idx and i != j for i in range(len(units))] for j in idx]
    unique: dict[tuple[bool, ...], list[bool]] = {}
    for p in patterns:
        spelled = sum(p[i] for i in idx)
        if 0 < spelled < len(idx):
            unique.setdefault(tuple(p), p)
    return list(unique.values())


def _dedupe(items: list[Spelling]) -> list[Spelling]:
    seen: set[tuple[str, bool]] = set()
    out = []
    for s in items:
        key = (unicodedata.normalize("NFC", s.text), s.homophone)
        if key not in seen:
            seen.add(key)
            out.append(s)
    return out
