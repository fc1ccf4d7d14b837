"""Keeping homophone matching off ordinary words.

Homophone terms (opt-in, :class:`compliance.pinyin.PinyinMode.HOMOPHONE`) match any characters
with the same toneless syllables, and Mandarin has few syllables: 贱人 (jianren) sounds like
坚韧 and 兼任, 冰毒 like 病毒. Measured on the People's Daily and on product reviews, homophones
for a few abuse terms flagged ~0.15 % of ordinary sentences, nearly all through such words.

So when a filter has homophone terms, every common word of jieba's dictionary (349k words with
frequencies, MIT) that sounds like one of them, or contains such a stretch, and does not contain
the term itself becomes an innocent word: a homophone hit that lies inside one of them in the
text is dropped. Evasions are rarely dictionary words (煞笔 and 沙比 are rare there, under
``MIN_INNOCENT_FREQ``), so they still hit.
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import lru_cache
from importlib import resources

import ahocorasick_rs

from compliance.normalize import fold

MIN_INNOCENT_FREQ = 10  # jieba counts: 坚韧 249, 兼任 1004; 煞笔 3, 沙比 6 stay evasions
SEPARATOR = "x"  # between words in the joined dictionary: survives folding, in no CJK key


@lru_cache(maxsize=1)
def common_words() -> tuple[str, ...]:
    raw = resources.files("jieba").joinpath("dict.txt").read_text("utf-8")
    out = []
    for line in raw.splitlines():
        word, _, rest = line.partition(" ")
        freq = rest.split(" ", 1)[0]
        if len(word) >= 2 and freq.isdigit() and int(freq) >= MIN_INNOCENT_FREQ and (
                not word.isascii()):
            out.append(word)
    return tuple(out)


def innocent_words(terms: Iterable[str]) -> dict[str, tuple[str, ...]]:
    """Per term: the common words that hold a same-sounding stretch of it but not the term."""
    keys = {fold(t, pinyin=True).text: t for t in terms}
    keys = {k: t for k, t in keys.items() if k}
    if not keys:
        return {}
    words = common_words()
    joined = SEPARATOR.join(words)
    folded = fold(joined, pinyin=True)
    ac = ahocorasick_rs.AhoCorasick(list(keys))
    patterns = list(keys.values())
    # canonical position -> word index: separators fold to themselves, so count them
    sep = ord(SEPARATOR)
    word_of = (folded.codes == sep).cumsum().tolist()
    out: dict[str, set[str]] = {}
    for idx, first, _ in ac.find_matches_as_indexes(folded.text, overlapping=True):
        word = words[word_of[first]]
        if patterns[idx] not in word:
            out.setdefault(patterns[idx], set()).add(word)
    return {t: tuple(sorted(ws)) for t, ws in out.items()}
