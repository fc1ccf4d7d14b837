"""Look-alike letters folded to the ASCII letter they imitate (``ѕсаm`` -> ``scam``).

The data is Unicode's own: UTS #39 (TR39) ``confusables.txt``, as shipped (JSON, both
directions) by the ``confusable_homoglyphs`` package (MIT; the data is under the Unicode License,
© Unicode, Inc.). TR39 maps every character to a *prototype*; we keep only the characters whose
prototype is an ASCII letter (``m``'s prototype is ``rn``: its look-alikes map to ``m``; ``l``,
``I`` and ``1`` share ``l``: capitals map to ``i``, digits stay digits) and only from the scripts
people use to disguise Latin words: Latin (accents, small capitals, IPA), Cyrillic, Greek,
full-width, mathematical alphanumerics and letter-like symbols, circled and parenthesised
letters. Everything else (CJK, kana, Armenian, Cherokee, symbols such as ``×``) is left alone, so
no Chinese text and no ASCII text folds to anything new: ASCII itself is never remapped.

Letters with accents fold to their base letter (``dǔ bó`` -> ``du bo``, which is also how
pinyin with tone marks meets pinyin without).

Most mappings are one code point to one code point. Ligatures, digraphs and squared units
whose skeleton is several letters (``ﬁ`` -> ``fi``, ``ǆ`` -> ``dz``, ``㎏`` -> ``kg``: TR39's
prototype, or NFKC's where the package's data has none) fold to all of them
(:func:`expansion_map`); the folding keeps, for each letter, the index of the character it came
from, so hits still report original offsets. The reverse, several ASCII letters that look like
one (``rn`` for ``m``), is left out: ASCII is never remapped.
"""

from __future__ import annotations

import json
import unicodedata
from functools import lru_cache
from importlib import resources

ASCII_LETTERS = "abcdefghijklmnopqrstuvwxyz"
SCRIPTS = (  # Unicode character-name prefixes of the characters we fold
    "LATIN ", "CYRILLIC ", "GREEK ", "FULLWIDTH LATIN ", "MATHEMATICAL ", "SCRIPT ",
    "DOUBLE-STRUCK ", "BLACK-LETTER ", "KELVIN ", "ANGSTROM ", "SMALL ROMAN NUMERAL ",
    "ROMAN NUMERAL ", "CIRCLED LATIN ", "PARENTHESIZED LATIN ", "MODIFIER LETTER ",
    "SUPERSCRIPT LATIN ", "SUBSCRIPT LATIN ", "INFORMATION SOURCE", "ESTIMATED SYMBOL",
)
EXPANDING = ("SQUARE ",)  # also folded when their skeleton is several letters (㎏ SQUARE KG)


def in_scope(ch: str) -> bool:
    """A letter of the scripts above (not ASCII, not a digit: numbers fold elsewhere)."""
    if ch.isascii() or unicodedata.category(ch) in {"Nd", "No"}:
        return False
    return unicodedata.name(ch, "").startswith(SCRIPTS)


def _base_letter(ch: str) -> str | None:
    """``ǔ`` -> ``u``, ``Ё`` -> ``Е``: the base of a letter with combining marks."""
    decomposed = unicodedata.normalize("NFD", ch)
    if len(decomposed) > 1 and all(unicodedata.combining(c) for c in decomposed[1:]):
        return decomposed[0]
    return None


@lru_cache(maxsize=1)
def _data() -> dict[str, list[dict[str, str]]]:
    raw = resources.files("confusable_homoglyphs").joinpath("confusables.json")
    data: dict[str, list[dict[str, str]]] = json.loads(raw.read_text("utf-8"))
    return data


@lru_cache(maxsize=1)
def _prototypes() -> dict[str, str]:  # cached: expansion_map() asks again
    """Look-alike character -> the ASCII letter (lower case) it imitates, from TR39."""
    data = _data()
    out: dict[str, str] = {}

    def claim(target: str, letter: str) -> None:
        for entry in data.get(target, []):
            ch = entry["c"]
            if len(ch) == 1 and in_scope(ch):
                out.setdefault(ch, letter)

    for letter in ASCII_LETTERS:
        claim(letter, letter)
        claim(letter.upper(), letter)
    claim("rn", "m")  # TR39's prototype of m
    for ch, letter in list(out.items()):  # the l/I/1 class: capitals look like I
        if letter == "l" and unicodedata.category(ch) == "Lu":
            out[ch] = "i"
    return out


@lru_cache(maxsize=1)
def confusable_map() -> dict[int, int]:
    """Code point -> ASCII letter code point, for the BMP and beyond (math alphanumerics)."""
    protos = _prototypes()
    out: dict[int, int] = {}
    for cp in range(0x80, 0x20000):
        ch = chr(cp)
        if not in_scope(ch):
            continue
        target = _fold_one(ch, protos)
        if target is not None:
            out[cp] = ord(target)
    return out


def _fold_one(ch: str, protos: dict[str, str]) -> str | None:
    if ch in protos:
        return protos[ch]
    compat = unicodedata.normalize("NFKC", ch)  # ⓢ ⒮ 𝐬 ｓ ˢ -> s
    letters = [c for c in compat if unicodedata.category(c)[0] == "L"]
    if len(letters) == 1 and letters[0] != ch:
        one = letters[0]
        if one.isascii():
            return one.lower()
        if one in protos:
            return protos[one]
        ch = one
    base = _base_letter(ch)
    if base is not None:
        if base.isascii():
            return base.lower()
        if base in protos:
            return protos[base]
    return None


@lru_cache(maxsize=1)
def expansion_map() -> dict[int, str]:
    """Code point -> the two or more ASCII letters (lower case) of its skeleton, for the
    characters of the scripts above (and squared units) that no single letter stands for."""
    protos = _prototypes()
    data = _data()
    out: dict[int, str] = {}
    for cp in range(0x80, 0x20000):
        ch = chr(cp)
        scoped = in_scope(ch) or (not ch.isascii() and unicodedata.name(ch, "").startswith(
            EXPANDING))
        if not scoped or unicodedata.category(ch) in {"Nd", "No", "Nl"}:
            continue
        if _fold_one(ch, protos) is not None:
            continue
        # NFKC first: it keeps case classes as the one-to-one folding does (Ĳ -> IJ -> ij,
        # where TR39 has lJ); TR39 for look-alikes that have no compatibility form (ǁ -> ll).
        skeletons = [unicodedata.normalize("NFKC", ch)]
        skeletons += [e["c"] for e in data.get(ch, []) if len(e["c"]) > 1]
        for skeleton in skeletons:
            letters = [_letter(c, protos) for c in skeleton]
            if len(letters) > 1 and all(x is not None for x in letters):
                out[cp] = "".join(x for x in letters if x is not None)
                break
    return out


def _letter(ch: str, protos: dict[str, str]) -> str | None:
    """The ASCII letter one character of a skeleton folds to (``ž`` -> ``z``), if any."""
    if "a" <= ch.lower() <= "z" and ch.isascii():
        return ch.lower()
    return _fold_one(ch, protos) if in_scope(ch) else None
