"""Keyword and intent matching on what the caller said, Chinese included.

Recognisers write Chinese without spaces ("我想查余额"), so whole-word matching needs a word
segmenter: CJK runs are cut into words by jieba (dictionary only, HMM off, so the cut is
predictable; its dictionary ships inside the wheel, nothing is downloaded). Both the text and
every keyword are normalised the same way first: NFKC (full-width ``ＶＩＰ１`` -> ``VIP1``,
compatibility ideographs), case folding, and traditional -> simplified characters (OpenCC
``t2s``), so "查詢餘額" finds the keyword "查询余额".

A keyword matches when its normalised text occurs in the caller's text starting and ending on
word boundaries. Chinese words are compared without separators, so a keyword the segmenter cuts
differently ("转人工" -> 转/人工, while the text has 转人工 as one word) still matches, but never
inside a longer word ("用卡" does not match "信用卡"). The longest matching keyword wins ("不需要"
beats "需要"); ties go to the intent declared first, so flow authors control precedence by order.
"""

from __future__ import annotations

import logging
import re
import threading
import unicodedata
from collections.abc import Mapping, Sequence
from functools import lru_cache
from typing import Any

_CJK = "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0003134f"
_RUN_RE = re.compile(rf"([{_CJK}]+)|((?:(?![{_CJK}])[^\W_])+)")  # CJK runs | other word runs
_lock = threading.Lock()
_state: dict[str, Any] = {}


def _jieba() -> Any:
    """The segmenter, loaded once (about a second: callers run matching off the event loop)."""
    seg = _state.get("jieba")
    if seg is None:
        with _lock:
            seg = _state.get("jieba")
            if seg is None:
                import jieba  # noqa: PLC0415 - heavy, only for CJK text

                jieba.setLogLevel(logging.WARNING)
                jieba.initialize()
                _state["jieba"] = seg = jieba
    return seg


def _t2s(text: str) -> str:
    cc = _state.get("t2s")
    if cc is None:
        with _lock:
            cc = _state.get("t2s")
            if cc is None:
                from opencc import OpenCC  # noqa: PLC0415 - only for CJK text

                _state["t2s"] = cc = OpenCC("t2s")
    return str(cc.convert(text))


def normalise(text: str) -> str:
    """NFKC, case-folded, traditional Chinese as simplified."""
    text = unicodedata.normalize("NFKC", text).casefold()
    if re.search(f"[{_CJK}]", text):
        text = _t2s(text)
    return text


def words(text: str) -> list[str]:
    """Normalised words: CJK runs segmented by jieba, other runs split on non-word characters."""
    out: list[str] = []
    for cjk, other in _RUN_RE.findall(normalise(text)):
        if cjk:
            out.extend(w for w in _jieba().lcut(cjk, HMM=False) if w.strip())
        else:
            out.append(other)
    return out


def _is_cjk(word: str) -> bool:
    return bool(re.match(f"[{_CJK}]", word))


def _joined(ws: Sequence[str]) -> tuple[str, frozenset[int]]:
    """Words joined (a space only between two non-CJK words) and the word boundary offsets."""
    parts: list[str] = []
    bounds = {0}
    pos = 0
    for i, w in enumerate(ws):
        if i and not _is_cjk(w) and not _is_cjk(ws[i - 1]):
            parts.append(" ")
            pos += 1
            bounds.add(pos)
        parts.append(w)
        pos += len(w)
        bounds.add(pos)
    return "".join(parts), frozenset(bounds)


@lru_cache(maxsize=8192)
def phrase_key(phrase: str) -> str:
    """A keyword as the matcher compares it (cached: keywords repeat on every turn)."""
    return _joined(words(phrase))[0]


def occurs_on_boundaries(text: str, bounds: frozenset[int], key: str) -> bool:
    start = text.find(key)
    while start >= 0:
        if start in bounds and start + len(key) in bounds:
            return True
        start = text.find(key, start + 1)
    return False


class KeywordIntentMatcher:
    """Keyword/synonym matching: an intent matches when one of its phrases appears as whole
    words (see the module doc); the longest matching phrase wins, ties go to the first intent."""

    def match(self, text: str, intents: Mapping[str, Sequence[str]]) -> str | None:
        said, bounds = _joined(words(text))
        best: tuple[int, str] | None = None
        for intent, phrases in intents.items():
            for phrase in phrases:
                key = phrase_key(phrase)
                if not key or (best is not None and len(key) <= best[0]):
                    continue
                if occurs_on_boundaries(said, bounds, key):
                    best = (len(key), intent)
        return best[1] if best else None
