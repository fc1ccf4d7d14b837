"""Finding phrases in a turn and placing them on the timeline (pure).

A turn's words carry times; its text is what whisper wrote (punctuation, case). Matching runs on
normalised tokens (:func:`asr.textnorm.tokens`: lower case, simplified, one token per Han
character) each carrying the times of the word it came from, so a hit has start and end in ms.
``exact``: the phrase's tokens in a row. ``fuzzy``: a run of tokens whose letters are at least
``threshold`` similar (difflib ratio) to the phrase's: "this call may be recorded" still finds
"this call is recorded"; Chinese compares character by character with the grammar matcher's
pinyin-aware cost (:func:`asr.grammar.substitution_cost`), so the recogniser's homophones
(坦图 for 坦途, 鱼额 for 余额) still match.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass

from asr.grammar import substitution_cost
from asr.textnorm import has_han, tokens
from inspection.transcript import Turn

FUZZY_THRESHOLD = 0.8


@dataclass(frozen=True, slots=True)
class TextHit:
    start_ms: int
    end_ms: int
    text: str


def timed_tokens(turn: Turn) -> list[tuple[str, int, int]]:
    """(token, start_ms, end_ms) for every token of the turn."""
    if turn.words:
        return [(tok, w.start_ms, w.end_ms) for w in turn.words for tok in tokens(w.text)]
    toks = tokens(turn.text)  # no alignment: spread the turn's time over its tokens
    if not toks:
        return []
    step = turn.duration_ms / len(toks)
    return [(t, turn.start_ms + int(i * step), turn.start_ms + int((i + 1) * step))
            for i, t in enumerate(toks)]


def _joined(toks: list[str]) -> str:
    return "".join(toks) if all(len(t) == 1 and ord(t) > 0x2E80 for t in toks) else " ".join(toks)


def find_phrase(turn: Turn, phrase: str, *, fuzzy: bool = False,
                threshold: float = FUZZY_THRESHOLD) -> list[TextHit]:
    want = tokens(phrase)
    if not want:
        return []
    seq = timed_tokens(turn)
    words = [t for t, _, _ in seq]
    n = len(want)
    target = _joined(want)
    han = all(has_han(t) for t in want)

    def best_at(i: int) -> tuple[float, int] | None:
        if words[i:i + n] == want:
            return 1.0, n
        if not fuzzy:
            return None
        best: tuple[float, int] | None = None
        if han:  # Chinese: character by character, a homophone costs little (坦图 ~ 坦途)
            if i + n <= len(seq):
                r = 1.0 - sum(substitution_cost(a, b) for a, b in
                              zip(want, words[i:i + n], strict=True)) / n
                if r >= threshold:
                    best = (r, n)
            return best
        for size in sorted({max(1, n - 1), n, n + 1}):
            if i + size > len(seq):
                continue
            r = difflib.SequenceMatcher(None, _joined(words[i:i + size]), target).ratio()
            if r >= threshold and (best is None or r > best[0]):
                best = (r, size)
        return best

    hits: list[TextHit] = []
    i = 0
    while i < len(seq):
        best = best_at(i)
        if best is None:
            i += 1
            continue
        later = best_at(i + 1) if best[0] < 1.0 and i + 1 < len(seq) else None
        if later is not None and later[0] > best[0]:  # "your date of birth": start at "date"
            i, best = i + 1, later
        size = best[1]
        hits.append(TextHit(seq[i][1], seq[i + size - 1][2], _joined(words[i:i + size])))
        i += size
    return hits


def char_span_ms(turn: Turn, start: int, end: int) -> tuple[int, int]:
    """Times of the characters ``[start, end)`` of ``turn.text``: each word is located in the
    text in order; characters between words take the neighbour's time."""
    if not turn.words or not turn.text:
        n = max(1, len(turn.text))
        return (turn.start_ms + turn.duration_ms * start // n,
                turn.start_ms + turn.duration_ms * end // n)
    text = turn.text.lower()
    placed: list[tuple[int, int, int, int]] = []
    cursor = 0
    for w in turn.words:
        at = text.find(w.text.lower(), cursor)
        if at < 0:
            continue
        placed.append((at, at + len(w.text), w.start_ms, w.end_ms))
        cursor = at + len(w.text)
    if not placed:
        return turn.start_ms, turn.end_ms
    first = next((p for p in placed if p[1] > start), placed[-1])
    last = next((p for p in reversed(placed) if p[0] < end), placed[0])
    return first[2], max(first[2], last[3])
