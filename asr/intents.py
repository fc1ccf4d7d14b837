"""Map recognised text to a node's intents (menu choices) by phrase matching.

Grammar results already are one of the phrases; free text (whisper) is matched by normalised
word containment, longest phrase first, so "I'd like to talk to an agent, please" -> ``agent``.
"""

from __future__ import annotations

import re

_WORDS = re.compile(r"[\w']+")


def normalise(text: str) -> str:
    return " ".join(_WORDS.findall(text.lower()))


def match_intent(text: str, intents: dict[str, tuple[str, ...]]) -> str | None:
    """The intent whose phrase occurs in ``text`` (whole words); None when none does."""
    norm = f" {normalise(text)} "
    best: tuple[int, str] | None = None
    for name, phrases in intents.items():
        for p in phrases:
            np_ = normalise(p)
            if np_ and f" {np_} " in norm and (best is None or len(np_) > best[0]):
                best = (len(np_), name)
    return best[1] if best else None
