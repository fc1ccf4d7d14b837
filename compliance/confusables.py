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

Every mapping is one code point to one code point, so offsets into the original text survive.
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


def _prototypes() -> dict[str, str]:
    """Look-alike character -> the ASCII letter (lower case) it imitates, from TR39."""
    raw = resources.files("confusable_homoglyphs").joinpath("confusables.json")
    data: dict[str, list[dict[str, str]]] = json.loads(raw.read_text("utf-8"))
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
