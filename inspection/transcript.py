"""A call's transcript: words with timings per speaker, merged into turns (pure).

Speaker is the recording's channel: ``caller`` (left) and ``engine`` (right, the IVR or the
agent). Times are milliseconds from the start of the recording, which starts at answer.
Silences and talk-over come from the speech regions of both channels (the VAD's), not from the
words: a cough or an unrecognised word is still talk, and whisper's word edges drift.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

SPEAKERS = ("caller", "engine")
SPEAKER_ALIASES = {"caller": "caller", "customer": "caller", "left": "caller",
                   "engine": "engine", "agent": "engine", "ivr": "engine", "right": "engine",
                   "any": "any", "both": "any"}


def speaker_name(value: str) -> str:
    """``agent``/``ivr`` -> ``engine``, ``customer`` -> ``caller``; ValueError names the field."""
    try:
        return SPEAKER_ALIASES[value.strip().lower()]
    except (KeyError, AttributeError):
        raise ValueError(f"speaker: {value!r} is not one of caller, engine (agent), any") \
            from None


@dataclass(frozen=True, slots=True)
class TWord:
    """One recognised word on the call's timeline."""

    text: str
    start_ms: int
    end_ms: int
    conf: float


@dataclass(slots=True)
class Turn:
    """One stretch of speech by one speaker (a VAD region) and the words heard in it."""

    speaker: str
    start_ms: int
    end_ms: int
    text: str = ""
    words: list[TWord] = field(default_factory=list)
    confidence: float = 0.0
    language: str = ""

    @property
    def duration_ms(self) -> int:
        return self.end_ms - self.start_ms

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["words"] = [[w.text, w.start_ms, w.end_ms, round(w.conf, 3)] for w in self.words]
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Turn:
        words = [TWord(str(w[0]), int(w[1]), int(w[2]), float(w[3])) for w in d.get("words", [])]
        return cls(d["speaker"], int(d["start_ms"]), int(d["end_ms"]), d.get("text", ""), words,
                   float(d.get("confidence", 0.0)), d.get("language", ""))


Span = tuple[int, int]


@dataclass(slots=True)
class Transcript:
    """Both channels' turns in time order, the call's length and its speech regions."""

    duration_ms: int
    turns: list[Turn]
    language: str = ""
    speech: dict[str, list[Span]] = field(default_factory=dict)  # speaker -> regions (ms)
    engine_name: str = ""

    def by(self, speaker: str) -> list[Turn]:
        return [t for t in self.turns if speaker in ("any", t.speaker)]

    def text(self) -> str:
        """One line per turn, ``caller: ...``: what search matches."""
        return "\n".join(f"{t.speaker}: {t.text}" for t in self.turns if t.text)

    def as_dict(self) -> dict[str, Any]:
        return {"duration_ms": self.duration_ms, "language": self.language,
                "engine": self.engine_name, "turns": [t.as_dict() for t in self.turns],
                "speech": {k: [list(s) for s in v] for k, v in self.speech.items()}}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Transcript:
        return cls(int(d["duration_ms"]), [Turn.from_dict(t) for t in d.get("turns", [])],
                   d.get("language", ""),
                   {k: [(int(a), int(b)) for a, b in v] for k, v in d.get("speech", {}).items()},
                   d.get("engine", ""))


def regions(probs: Sequence[float], frame_ms: int = 20, *, threshold: float = 0.5,
            min_speech_ms: int = 100, bridge_ms: int = 400) -> list[Span]:
    """Speech regions from per-frame VAD probabilities: runs above ``threshold`` of at least
    ``min_speech_ms``, with gaps shorter than ``bridge_ms`` joined (pauses inside a sentence
    are not turns). Pure: the caller runs the VAD."""
    spans: list[Span] = []
    start: int | None = None
    for i, p in enumerate(probs):
        if p >= threshold and start is None:
            start = i
        elif p < threshold and start is not None:
            spans.append((start * frame_ms, i * frame_ms))
            start = None
    if start is not None:
        spans.append((start * frame_ms, len(probs) * frame_ms))
    joined: list[Span] = []
    for a, b in spans:
        if joined and a - joined[-1][1] < bridge_ms:
            joined[-1] = (joined[-1][0], b)
        else:
            joined.append((a, b))
    return [(a, b) for a, b in joined if b - a >= min_speech_ms]


def union(spans: Iterable[Span]) -> list[Span]:
    out: list[Span] = []
    for a, b in sorted(spans):
        if out and a <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], b))
        else:
            out.append((a, b))
    return out


def intersections(left: Sequence[Span], right: Sequence[Span]) -> list[Span]:
    """Where both channels speak at once (talk-over), in time order."""
    out: list[Span] = []
    i = j = 0
    while i < len(left) and j < len(right):
        a, b = max(left[i][0], right[j][0]), min(left[i][1], right[j][1])
        if a < b:
            out.append((a, b))
        if left[i][1] < right[j][1]:
            i += 1
        else:
            j += 1
    return out


def gaps(spans: Sequence[Span], duration_ms: int, *, edges: bool = False) -> list[Span]:
    """Silences between speech regions of ``spans`` (a union). ``edges`` also counts the time
    before the first and after the last region (ring-up of a recording, the hang-up tail)."""
    out: list[Span] = []
    last = 0
    for i, (a, b) in enumerate(spans):
        if a > last and (edges or i > 0):
            out.append((last, a))
        last = max(last, b)
    if edges and duration_ms > last:
        out.append((last, duration_ms))
    return out
