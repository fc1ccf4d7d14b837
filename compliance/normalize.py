"""Text folding for sensitive-word matching, vectorised with numpy.

Evasions (case, full-width forms, look-alike letters from other scripts (:mod:`confusables`),
accents, traditional characters, 1/一/①/壹, symbols or zero-width characters between
characters, repeated characters) are undone by one per-code-point lookup
table plus two array passes, not a Python loop per character: the scanner must run at tens of
MB/s. The same folding is applied to the terms, so a term and any evasive spelling of it meet in
one canonical form, and index arrays map every canonical position back to the original text so
hits report real spans.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources

import numpy as np
import numpy.typing as npt

from compliance.confusables import confusable_map

BMP_SIZE = 0x10000
DROP = 0  # lookup-table value for characters that are removed (separators, symbols)
PINYIN_BASE = 0xE000  # private use area (folded away in text): one code point per syllable

_DIGIT_STYLES: dict[int, str] = {
    **{ord(c): str(i) for i, c in enumerate("零一二三四五六七八九")},
    **{ord(c): str(i) for i, c in enumerate("〇壹贰叁肆伍陆柒捌玖")},
    ord("两"): "2", ord("兩"): "2", ord("貳"): "2", ord("參"): "3", ord("陸"): "6",
    ord("幺"): "1",  # yao: how 1 is read out in phone numbers
}


def _opencc_table() -> dict[int, int]:
    """Traditional -> simplified, one character to one character (first candidate)."""
    out: dict[int, int] = {}
    text = resources.files("opencc").joinpath("dictionary/TSCharacters.txt").read_text("utf-8")
    for line in text.splitlines():
        src, _, dst = line.partition("\t")
        cand = dst.split(" ")[0] if dst else ""
        if len(src) == 1 and len(cand) == 1:
            out[ord(src)] = ord(cand)
    return out


def _fold_char(cp: int, t2s: dict[int, int], looks: dict[int, int]) -> int:
    ch = chr(cp)
    cat = unicodedata.category(ch)
    if cp in _DIGIT_STYLES:
        return ord(_DIGIT_STYLES[cp])
    if cat == "Nd":
        return ord("0") + unicodedata.digit(ch)
    if cat in {"No", "Nl"}:
        value = unicodedata.numeric(ch, -1.0)
        if 0 <= value <= 9 and value == int(value):
            return ord("0") + int(value)  # ① ⑴ ⒈ Ⅰ -> digit
    if cp in looks:  # ѕ с а 𝐬 ⓢ é -> s c a s s e (before the drop: ⓢ is a symbol)
        return looks[cp]
    if cat[0] not in "LN":
        return DROP  # punctuation, symbols, spaces, zero-width (Cf), controls
    if 0xFF21 <= cp <= 0xFF5A:  # full-width Latin letters
        cp -= 0xFEE0
        ch = chr(cp)
    cp = t2s.get(cp, cp)
    low = chr(cp).lower()
    return ord(low) if len(low) == 1 else cp


@lru_cache(maxsize=1)
def fold_table() -> npt.NDArray[np.uint32]:
    """The lookup table for the Basic Multilingual Plane (256 KiB), built once per process."""
    t2s = _opencc_table()
    looks = confusable_map()
    return np.fromiter((_fold_char(cp, t2s, looks) for cp in range(BMP_SIZE)), np.uint32,
                       BMP_SIZE)


def _fold_astral(cp: int) -> int:
    """Beyond the BMP: mathematical letters (𝐬𝓬𝖆𝗺) and digits (𝟏) fold, other letters stay,
    the rest (emoji ...) is dropped."""
    looks = confusable_map().get(cp)
    if looks is not None:
        return looks
    ch = chr(cp)
    cat = unicodedata.category(ch)
    if cat == "Nd":
        return ord("0") + unicodedata.digit(ch)
    return cp if cat[0] in "LN" else DROP


@lru_cache(maxsize=1)
def pinyin_table() -> npt.NDArray[np.uint32]:
    """Folded code point -> one code point per toneless pinyin syllable (others unchanged).

    Homophone matching compares syllables, so 傻逼 and 沙比 meet; polyphonic characters use
    their first reading on both sides, which keeps term and text consistent.
    """
    from pypinyin import pinyin_dict  # noqa: PLC0415 - only loaded when a pinyin term exists

    table = np.arange(BMP_SIZE, dtype=np.uint32)
    syllables: dict[str, int] = {}
    for cp, readings in pinyin_dict.pinyin_dict.items():
        if cp >= BMP_SIZE:
            continue
        first = readings.split(",")[0]
        decomposed = unicodedata.normalize("NFD", first)
        plain = "".join(c for c in decomposed if not unicodedata.combining(c))
        plain = plain.replace("ü", "v")
        table[cp] = PINYIN_BASE + syllables.setdefault(plain, len(syllables))
    _SYLLABLES.update({v: k for k, v in syllables.items()})
    return table


_SYLLABLES: dict[int, str] = {}  # syllable id -> Latin spelling, filled by pinyin_table()


def pinyin_names() -> dict[int, str]:
    """Syllable id -> its Latin spelling (``sha``), for the spelled-out pinyin variant."""
    pinyin_table()
    return _SYLLABLES


@dataclass(frozen=True, slots=True)
class Folded:
    """Canonical text plus the arrays that map it back to the original.

    ``text[i]`` stands for a run of ``run_len[i]`` equal characters that starts at original
    index ``orig[run_start[i]]``; ``orig`` lists the original indexes of the kept characters.
    """

    text: str
    codes: npt.NDArray[np.uint32]
    orig: npt.NDArray[np.intp]
    run_start: npt.NDArray[np.intp]
    run_len: npt.NDArray[np.intp]

    def span(self, first: int, last: int) -> tuple[int, int]:
        """Original [start, end) covering canonical positions first..last inclusive."""
        start = int(self.orig[self.run_start[first]])
        end = int(self.orig[self.run_start[last] + self.run_len[last] - 1]) + 1
        return start, end


def to_codes(text: str) -> npt.NDArray[np.uint32]:
    return np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32)


def from_codes(codes: npt.NDArray[np.uint32]) -> str:
    return codes.astype(np.uint32, copy=False).tobytes().decode("utf-32-le")


def fold_codes(raw: npt.NDArray[np.uint32]) -> npt.NDArray[np.uint32]:
    """Per-character folding, by table in the BMP and one by one beyond it (rare)."""
    table = fold_table()
    big = raw >= BMP_SIZE
    if big.any():
        out = table[np.where(big, 0, raw)]
        for i in np.nonzero(big)[0]:
            out[i] = _fold_astral(int(raw[i]))
        return out
    return table[raw]


def fold(text: str, *, pinyin: bool = False) -> Folded:
    """Fold ``text``: drop separators, map styles, collapse repeats; keep the way back."""
    codes = fold_codes(to_codes(text))
    return finish(to_pinyin(codes) if pinyin else codes)


def fold_both(text: str) -> tuple[Folded, Folded]:
    """The plain and the pinyin folding of ``text``, sharing the per-character pass."""
    codes = fold_codes(to_codes(text))
    return finish(codes), finish(to_pinyin(codes))


def to_pinyin(codes: npt.NDArray[np.uint32]) -> npt.NDArray[np.uint32]:
    if len(codes) and int(codes.max()) >= BMP_SIZE:
        small = codes < BMP_SIZE
        return np.where(small, pinyin_table()[np.where(small, codes, 0)], codes)
    return pinyin_table()[codes]


def finish(codes: npt.NDArray[np.uint32]) -> Folded:
    """Drop separators and collapse runs of folded ``codes``, keeping the original indexes.

    Called on every scan, mostly on short ASR partials, where numpy's per-call overhead is the
    cost: hence as few array operations as possible."""
    orig = np.flatnonzero(codes)  # DROP is 0
    kept = codes[orig]
    n = len(kept)
    if n == 0:
        empty = np.zeros(0, dtype=np.intp)
        return Folded("", kept, orig, empty, empty)
    first = np.empty(n, dtype=bool)
    first[0] = True
    np.not_equal(kept[1:], kept[:-1], out=first[1:])
    run_start = np.flatnonzero(first)
    bounds = np.empty(len(run_start) + 1, dtype=np.intp)
    bounds[:-1] = run_start
    bounds[-1] = n
    run_len = bounds[1:] - run_start
    canon = kept[run_start]
    return Folded(canon.tobytes().decode("utf-32-le"), canon, orig, run_start, run_len)


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


SHORT_TEXT = 256  # below this, a list lookup per character beats numpy's per-call overhead


@lru_cache(maxsize=1)
def _spelled_strings() -> list[str]:
    syl = pinyin_table().tolist()
    names = pinyin_names()
    return [names.get(s - PINYIN_BASE, chr(cp)) if s >= PINYIN_BASE else chr(cp)
            for cp, s in enumerate(syl)]


@dataclass(frozen=True, slots=True)
class Spelled:
    """A spelled folding: ``text`` and how many letters each canonical character became."""

    text: str
    width: npt.NDArray[np.intp] | list[int]

    def origin(self) -> npt.NDArray[np.intp]:
        """Per letter, the canonical index it came from (computed only when a key matched)."""
        return np.repeat(np.arange(len(self.width)), self.width)


_TONE_RE = re.compile(r"(?<=[a-z])[1-5](?![0-9])")


FAR = 1  # stands in for a Chinese character too far from any Latin letter to matter


def near_latin(f: Folded, reach: int) -> npt.NDArray[np.bool_]:
    """Canonical positions within ``reach`` characters of a Latin letter."""
    latin = (f.codes >= ord("a")) & (f.codes <= ord("z"))
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


def has_latin(codes: npt.NDArray[np.uint32]) -> bool:
    """Folded ``codes`` hold an ASCII letter (so a pinyin spelling may be in the text)."""
    return bool(np.any((codes >= ord("a")) & (codes <= ord("z"))))


def canonical(term: str, *, pinyin: bool = False) -> tuple[str, tuple[int, ...]]:
    """A term's canonical key and its run lengths (``ass`` -> ``as``, (1, 2))."""
    f = fold(term, pinyin=pinyin)
    return f.text, tuple(int(x) for x in f.run_len)


@lru_cache(maxsize=1)
def _fold_list() -> list[int]:
    return fold_table().tolist()


def spelled_key(text: str) -> str:
    """A term's (or a typed spelling's) key in the spelled folding: what :func:`spell` makes of
    :func:`fold`, in plain Python (compiling a list calls this per term)."""
    table = _fold_list()
    codes = [table[cp] if cp < BMP_SIZE else _fold_astral(cp) for cp in map(ord, text)]
    canon: list[int] = []
    for c in codes:
        if c != DROP and (not canon or canon[-1] != c):
            canon.append(c)
    strings = _spelled_strings()
    parts = [strings[c] if c < BMP_SIZE else chr(c) for c in canon]
    for m in _TONE_RE.finditer("".join(map(chr, canon))):
        parts[m.start()] = ""
    return "".join(parts)
