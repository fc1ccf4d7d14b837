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

from compliance.confusables import confusable_map, expansion_map

BMP_SIZE = 0x10000
DROP = 0  # lookup-table value for characters that are removed (separators, symbols)
# Table values from here on stand for a character that folds to several letters (ﬁ -> fi):
# expansions()[value - EXPANDED_BASE]. Beyond Unicode, so no character is one.
EXPANDED_BASE = 0x110000
# One code point per toneless syllable, from U+0100: two bytes in UTF-8, where the automaton
# reads text (three in the private use area, which made the homophone pass ~1.5x slower). The
# few letters there that folded text can hold move to the private use area, which folding
# empties, so no character and no syllable share a code point.
PINYIN_BASE = 0x0100
DISPLACED_BASE = 0xE000

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


def _fold_char(cp: int, t2s: dict[int, int], looks: dict[int, int],
               expands: dict[int, int]) -> int:
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
    if cp in expands:  # ﬁ ǆ ㎏ -> fi dz kg (㎏ is a symbol too)
        return expands[cp]
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
    expands = {cp: EXPANDED_BASE + i for i, cp in enumerate(expansion_map())}
    return np.fromiter((_fold_char(cp, t2s, looks, expands) for cp in range(BMP_SIZE)),
                       np.uint32, BMP_SIZE)


@lru_cache(maxsize=1)
def expansions() -> tuple[str, ...]:
    """The letters of each expanding character, by its table value minus EXPANDED_BASE."""
    return tuple(expansion_map().values())


def _expand(kept: npt.NDArray[np.uint32], orig: npt.NDArray[np.intp],
            ) -> tuple[npt.NDArray[np.uint32], npt.NDArray[np.intp]]:
    """Kept codes with each expanding character's letters in its place, every letter keeping
    the character's original index (the way back from a hit inside ``ﬁ`` is ``ﬁ``)."""
    big = np.flatnonzero(kept >= EXPANDED_BASE)
    letters = expansions()
    lens = np.ones(len(kept), dtype=np.intp)
    lens[big] = [len(letters[int(kept[i]) - EXPANDED_BASE]) for i in big]
    out = np.repeat(kept, lens)
    at = np.cumsum(lens) - lens
    for i in big.tolist():
        word = letters[int(kept[i]) - EXPANDED_BASE]
        out[at[i] : at[i] + len(word)] = [ord(c) for c in word]
    return out, np.repeat(orig, lens)


def _fold_astral(cp: int) -> int:
    """Beyond the BMP: mathematical letters (𝐬𝓬𝖆𝗺) and digits (𝟏) fold, other letters stay,
    the rest (emoji ...) is dropped."""
    looks = confusable_map().get(cp)
    if looks is not None:
        return looks
    if cp in _astral_expanding():  # 🆐 -> dj
        return _astral_expanding()[cp]
    ch = chr(cp)
    cat = unicodedata.category(ch)
    if cat == "Nd":
        return ord("0") + unicodedata.digit(ch)
    return cp if cat[0] in "LN" else DROP


@lru_cache(maxsize=1)
def _astral_expanding() -> dict[int, int]:
    return {cp: EXPANDED_BASE + i for i, cp in enumerate(expansion_map()) if cp >= BMP_SIZE}


def folded_char(ch: str) -> str:
    """What one character folds to: ``"\0"`` when it is dropped, several letters for an
    expanding one (the Python paths that look at single characters of the original text)."""
    cp = ord(ch)
    c = _fold_list()[cp] if cp < BMP_SIZE else _fold_astral(cp)
    if c >= EXPANDED_BASE:
        return expansions()[c - EXPANDED_BASE]
    return chr(c)


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
    span = np.arange(PINYIN_BASE, PINYIN_BASE + len(syllables))
    if (table[span] != span).any() or (fold_table()[DISPLACED_BASE:][:len(span)] != DROP).any():
        raise AssertionError("the syllable code points are not free")  # a pypinyin change
    table[span] = DISPLACED_BASE + span - PINYIN_BASE
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
    if len(kept) and int(kept.max()) >= EXPANDED_BASE:
        kept, orig = _expand(kept, orig)
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


def resound(f: Folded) -> Folded:
    """``fold(text, pinyin=True)`` from ``f = fold(text)``: the syllables of the canonical
    characters, runs of one syllable merged. Equal characters sound equal, so the syllable
    runs are unions of ``f``'s runs and only canonical-length arrays are touched."""
    sounds = to_pinyin(f.codes)
    n = len(sounds)
    if n == 0:
        return f
    first = np.empty(n, dtype=bool)
    first[0] = True
    np.not_equal(sounds[1:], sounds[:-1], out=first[1:])
    starts = np.flatnonzero(first)
    canon = sounds[starts]
    run_start = f.run_start[starts]
    run_len = np.diff(run_start, append=len(f.orig))
    return Folded(canon.tobytes().decode("utf-32-le"), canon, f.orig, run_start, run_len)


SHORT_TEXT = 256  # below this, a list lookup per character beats numpy's per-call overhead


def canonical(term: str, *, pinyin: bool = False) -> tuple[str, tuple[int, ...]]:
    """A term's canonical key and its run lengths (``ass`` -> ``as``, (1, 2)): what
    :func:`fold` makes of it, in plain Python (compiling a list calls this per term, and numpy's
    per-call overhead is most of the cost on a few characters)."""
    table = _fold_list()
    codes = [table[cp] if cp < BMP_SIZE else _fold_astral(cp) for cp in map(ord, term)]
    if any(c >= EXPANDED_BASE for c in codes):
        letters = expansions()
        codes = [x for c in codes for x in (
            map(ord, letters[c - EXPANDED_BASE]) if c >= EXPANDED_BASE else (c,))]
    if pinyin:
        sounds = _sound_list()
        codes = [sounds[c] if c < BMP_SIZE else c for c in codes]
    canon: list[int] = []
    runs: list[int] = []
    for c in codes:
        if c == DROP:
            continue
        if canon and canon[-1] == c:
            runs[-1] += 1
        else:
            canon.append(c)
            runs.append(1)
    return "".join(map(chr, canon)), tuple(runs)


@lru_cache(maxsize=1)
def _fold_list() -> list[int]:
    return fold_table().tolist()


@lru_cache(maxsize=1)
def _sound_list() -> list[int]:
    return pinyin_table().tolist()


_BEYOND_BMP = re.compile("[\U00010000-\U0010ffff]")  # what the BMP tables do not cover
_REPEATED = re.compile(r"(.)(?=\1)", re.DOTALL)  # a character the same one follows


@lru_cache(maxsize=1)
def kept_chars() -> list[str]:
    """:func:`fold_table` for ``str.translate``: each BMP character's folded character, ``""``
    for a dropped one, the letters of an expanding one (a list: ``translate`` reads it by
    index, ~3x faster than a dict)."""
    return [x.replace("\0", "") for x in nul_chars()]


@lru_cache(maxsize=1)
def sound_chars() -> list[str]:
    """:func:`pinyin_table` for ``str.translate``: a Chinese character's syllable character."""
    return [chr(c) for c in _sound_list()]


def collapse(kept: str) -> str:
    """Runs of one character to one: what :func:`finish` does to the text, without arrays."""
    return _REPEATED.sub("", kept)  # a literal replacement: no Python call per run


def fold_short(text: str) -> tuple[str, str] | None:
    """``(kept, canonical)`` of a short text without the way back, by ``str.translate`` (a
    few microseconds where numpy's per-call overhead costs tens), or None for text beyond the
    BMP (emoji, mathematical letters: :func:`fold` handles it). ``kept`` is the folded text
    with separators dropped, before runs are collapsed."""
    if _BEYOND_BMP.search(text):
        return None
    kept = text.translate(kept_chars())
    return kept, collapse(kept)


@lru_cache(maxsize=1)
def nul_chars() -> list[str]:
    """:func:`fold_table` for ``str.translate``, NUL for a dropped character."""
    letters = expansions()
    return [letters[c - EXPANDED_BASE] if c >= EXPANDED_BASE else chr(c) for c in _fold_list()]


@dataclass(frozen=True, slots=True)
class ShortFolded:
    """:class:`Folded` of a short text as Python lists: for the few partials with a raw match,
    building lists costs less than numpy's calls, and hits index them one by one anyway."""

    text: str
    orig: list[int]
    run_start: list[int]
    run_len: list[int]

    def span(self, first: int, last: int) -> tuple[int, int]:
        start = self.orig[self.run_start[first]]
        return start, self.orig[self.run_start[last] + self.run_len[last] - 1] + 1


def fold_lists(text: str, *, pinyin: bool = False) -> ShortFolded:
    """:func:`fold` of a BMP text (see :func:`fold_short`), in plain Python."""
    table = nul_chars()
    folded = text.translate(table)
    if len(folded) == len(text):
        orig = [i for i, c in enumerate(folded) if c != "\0"]
    else:  # a character folded to several letters: each keeps its index
        orig = [i for i, c in enumerate(text) for x in table[ord(c)] if x != "\0"]
    if pinyin:
        folded = folded.translate(sound_chars())  # NUL stays NUL
    kept = folded.replace("\0", "")
    canon = collapse(kept)
    if len(canon) == len(kept):
        return ShortFolded(canon, orig, list(range(len(kept))), [1] * len(kept))
    run_start: list[int] = []
    run_len: list[int] = []
    prev = ""
    for i, c in enumerate(kept):
        if c == prev:
            run_len[-1] += 1
        else:
            run_start.append(i)
            run_len.append(1)
            prev = c
    return ShortFolded(canon, orig, run_start, run_len)


def sounds_short(kept: str) -> str:
    """The syllable folding's canonical text from :func:`fold_short`'s ``kept``."""
    return collapse(kept.translate(sound_chars()))
