"""Inspection rules: one class per rule type, each scoped by speaker and time window.

A rule is declared in JSON (``{"type": "phrase", "speaker": "engine", "phrases": [...],
"window": {"to_ms": 30000}}``), checked when loaded (:class:`RuleError` names the field) and
evaluated against an :class:`InspectionContext` (the transcript, the call's trace and record).
It returns an :class:`Outcome`: ``pass``, ``fail`` or ``na`` (the rule does not apply to this
call, e.g. no turn in its window), with :class:`Evidence` (speaker, ms offsets, text, node id)
for every hit, so a player can jump there.

Text rules live here; timing, flow and outcome rules in :mod:`inspection.rules_call`.
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any, ClassVar

from inspection.lexicons import lexicon
from inspection.textmatch import char_span_ms, find_phrase
from inspection.transcript import Transcript, Turn, speaker_name

PASS, FAIL, NA = "pass", "fail", "na"
MAX_PATTERN_CHARS = 500


class RuleError(ValueError):
    """A rule declaration is wrong; the message names the field (``rules[3].window.to_ms``)."""


@dataclass(frozen=True, slots=True)
class Evidence:
    speaker: str  # caller | engine | any
    start_ms: int
    end_ms: int
    text: str = ""
    node_id: str = ""
    detail: str = ""

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(slots=True)
class Outcome:
    status: str  # pass | fail | na
    evidence: list[Evidence] = field(default_factory=list)
    detail: str = ""


@dataclass(slots=True)
class InspectionContext:
    """What rules read. ``record``: the call record as a dict (``answer_at``, ``disposition``,
    ``flow_result``...); ``trace``: its trace entries; ``words``: the tenant's sensitive-word
    filter (:class:`compliance.words.WordFilter`) or None when none is configured."""

    transcript: Transcript
    trace: list[dict[str, Any]]
    record: Mapping[str, Any]
    words: Any = None

    def offset_ms(self, at: float) -> int:
        """A trace time (wall clock) as ms into the recording, which starts at answer."""
        start = self.record.get("answer_at") or self.record.get("invite_at") or at
        return max(0, int(round((float(at) - float(start)) * 1000)))


@dataclass(frozen=True, slots=True)
class Window:
    """Where in the call a rule looks: ``from_ms``..``to_ms`` from the start, or the last
    ``last_ms`` of it. A turn counts when it overlaps the window."""

    from_ms: int = 0
    to_ms: int | None = None
    last_ms: int | None = None

    def bounds(self, duration_ms: int) -> tuple[int, int]:
        if self.last_ms is not None:
            return max(0, duration_ms - self.last_ms), duration_ms
        return self.from_ms, duration_ms if self.to_ms is None else min(self.to_ms, duration_ms)

    def overlaps(self, start_ms: int, end_ms: int, duration_ms: int) -> bool:
        a, b = self.bounds(duration_ms)
        return start_ms < b and end_ms > a


def _int(spec: Mapping[str, Any], key: str, where: str, default: int | None = None,
         minimum: int = 0) -> int | None:
    value = spec.get(key, default)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or value < minimum:
        raise RuleError(f"{where}.{key}: expected a number >= {minimum}, got {value!r}")
    return int(value)


def _float(spec: Mapping[str, Any], key: str, where: str, default: float | None = None,
           *, lo: float = 0.0, hi: float = float("inf")) -> float | None:
    value = spec.get(key, default)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not lo <= value <= hi:
        raise RuleError(f"{where}.{key}: expected a number in {lo}..{hi}, got {value!r}")
    return float(value)


def _strings(spec: Mapping[str, Any], key: str, where: str, *, required: bool = True) -> list[str]:
    value = spec.get(key, [])
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
        raise RuleError(f"{where}.{key}: expected a list of non-empty strings")
    if required and not value:
        raise RuleError(f"{where}.{key}: required")
    return [v.strip() for v in value]


def _choice(spec: Mapping[str, Any], key: str, where: str, choices: tuple[str, ...],
            default: str) -> str:
    value = spec.get(key, default)
    if value not in choices:
        raise RuleError(f"{where}.{key}: {value!r} is not one of {', '.join(choices)}")
    return str(value)


RULE_TYPES: dict[str, type[Rule]] = {}


def rule_type(cls: type[Rule]) -> type[Rule]:
    RULE_TYPES[cls.type_name] = cls
    return cls


class Rule(ABC):
    """Base: parses ``speaker`` and ``window``; subclasses parse their own fields."""

    type_name: ClassVar[str]
    default_speaker: ClassVar[str] = "any"
    fields: ClassVar[tuple[str, ...]] = ()

    def __init__(self, spec: Mapping[str, Any], where: str) -> None:
        self.where = where
        known = {"type", "speaker", "window", "id", "name", *self.fields}
        unknown = sorted(set(spec) - known)
        if unknown:
            raise RuleError(f"{where}.{unknown[0]}: unknown field for rule type "
                            f"{self.type_name!r}")
        try:
            self.speaker = speaker_name(str(spec.get("speaker", self.default_speaker)))
        except ValueError as e:
            raise RuleError(f"{where}.{e}") from None
        w = spec.get("window", {}) or {}
        if not isinstance(w, Mapping):
            raise RuleError(f"{where}.window: expected an object")
        ww = f"{where}.window"
        self.window = Window(_int(w, "from_ms", ww, 0) or 0, _int(w, "to_ms", ww),
                             _int(w, "last_ms", ww))

    def turns(self, ctx: InspectionContext) -> list[Turn]:
        d = ctx.transcript.duration_ms
        return [t for t in ctx.transcript.by(self.speaker)
                if self.window.overlaps(t.start_ms, t.end_ms, d)]

    @abstractmethod
    def evaluate(self, ctx: InspectionContext) -> Outcome: ...


def make_rule(spec: Any, where: str = "rule") -> Rule:
    if not isinstance(spec, Mapping):
        raise RuleError(f"{where}: expected an object")
    kind = spec.get("type")
    cls = RULE_TYPES.get(str(kind))
    if cls is None:
        raise RuleError(f"{where}.type: {kind!r} is not one of {', '.join(sorted(RULE_TYPES))}")
    return cls(spec, where)


class _TextRule(Rule):
    """Phrases present (pass when found) or absent (fail on every occurrence)."""

    fields: ClassVar[tuple[str, ...]] = ("expect", "match", "threshold", "phrases")

    def __init__(self, spec: Mapping[str, Any], where: str) -> None:
        super().__init__(spec, where)
        self.expect = _choice(spec, "expect", where, ("present", "absent"), self.default_expect)
        self.fuzzy = _choice(spec, "match", where, ("exact", "fuzzy"), "exact") == "fuzzy"
        self.threshold = _float(spec, "threshold", where, 0.8, lo=0.5, hi=1.0) or 0.8
        self.phrases: list[str] = []

    default_expect: ClassVar[str] = "present"

    def hits(self, ctx: InspectionContext) -> list[Evidence]:
        found = []
        for turn in self.turns(ctx):
            for phrase in self.phrases:
                for h in find_phrase(turn, phrase, fuzzy=self.fuzzy, threshold=self.threshold):
                    found.append(Evidence(turn.speaker, h.start_ms, h.end_ms, h.text,
                                          detail=phrase))
        found.sort(key=lambda e: e.start_ms)
        return found

    def evaluate(self, ctx: InspectionContext) -> Outcome:
        found = self.hits(ctx)
        if self.expect == "present":
            if found:
                return Outcome(PASS, found[:1])
            a, b = self.window.bounds(ctx.transcript.duration_ms)
            return Outcome(FAIL, [Evidence(self.speaker, a, b, detail="not said")],
                           f"none of {self.phrases} said by {self.speaker}")
        return Outcome(FAIL if found else PASS, found)


@rule_type
class PhraseRule(_TextRule):
    """``phrases`` present or absent, ``match`` exact or fuzzy."""

    type_name = "phrase"

    def __init__(self, spec: Mapping[str, Any], where: str) -> None:
        super().__init__(spec, where)
        self.phrases = _strings(spec, "phrases", where)


@rule_type
class LexiconRule(_TextRule):
    """A built-in lexicon (``complaint``, ``negative``, ``positive``, ``greeting``, ``closing``;
    zh and en) plus the rule's own ``phrases``; absent by default (a complaint fails)."""

    type_name = "lexicon"
    default_speaker = "caller"
    default_expect = "absent"
    fields = (*_TextRule.fields, "lexicon")

    def __init__(self, spec: Mapping[str, Any], where: str) -> None:
        super().__init__(spec, where)
        try:
            self.phrases = [*lexicon(str(spec.get("lexicon", ""))),
                            *_strings(spec, "phrases", where, required=False)]
        except ValueError as e:
            raise RuleError(f"{where}.{e}") from None


@rule_type
class RegexRule(Rule):
    """A regular expression over each turn's text (case-insensitive), present or absent."""

    type_name = "regex"
    fields = ("pattern", "expect")

    def __init__(self, spec: Mapping[str, Any], where: str) -> None:
        super().__init__(spec, where)
        pattern = spec.get("pattern")
        if not isinstance(pattern, str) or not pattern or len(pattern) > MAX_PATTERN_CHARS:
            raise RuleError(f"{where}.pattern: expected a regular expression of 1.."
                            f"{MAX_PATTERN_CHARS} characters")
        try:
            self.pattern = re.compile(pattern, re.IGNORECASE)
        except re.error as e:
            raise RuleError(f"{where}.pattern: {e}") from None
        self.expect = _choice(spec, "expect", where, ("present", "absent"), "absent")

    def evaluate(self, ctx: InspectionContext) -> Outcome:
        found = []
        for turn in self.turns(ctx):
            for m in self.pattern.finditer(turn.text):
                a, b = char_span_ms(turn, m.start(), m.end())
                found.append(Evidence(turn.speaker, a, b, m.group(0)))
        if self.expect == "present":
            return Outcome(PASS, found[:1]) if found else Outcome(FAIL, detail="no match")
        return Outcome(FAIL if found else PASS, found)


@rule_type
class SensitiveWordsRule(Rule):
    """The tenant's sensitive-word lists (compliance), optionally only some ``categories``:
    every occurrence fails the rule. N/A when no word list is configured."""

    type_name = "sensitive"
    fields = ("categories", "min_severity")

    def __init__(self, spec: Mapping[str, Any], where: str) -> None:
        super().__init__(spec, where)
        self.categories = set(_strings(spec, "categories", where, required=False))
        self.min_severity = _int(spec, "min_severity", where, 1, 1) or 1

    def evaluate(self, ctx: InspectionContext) -> Outcome:
        if ctx.words is None:
            return Outcome(NA, detail="no sensitive-word list")
        found = []
        for turn in self.turns(ctx):
            for h in ctx.words.find(turn.text):
                if (self.categories and h.category not in self.categories) \
                        or h.severity < self.min_severity:
                    continue
                a, b = char_span_ms(turn, h.start, h.end)
                found.append(Evidence(turn.speaker, a, b, h.matched,
                                      detail=f"{h.category}:{h.term}"))
        return Outcome(FAIL if found else PASS, found)


@rule_type
class ScriptRule(Rule):
    """Required script ``steps`` in order (greeting, identity check, disclosure, closing):
    each step is a name and phrases (fuzzy by default). Fails naming the first missing or
    out-of-order step."""

    type_name = "script"
    default_speaker = "engine"
    fields = ("steps", "match", "threshold")

    def __init__(self, spec: Mapping[str, Any], where: str) -> None:
        super().__init__(spec, where)
        steps = spec.get("steps")
        if not isinstance(steps, list) or not steps:
            raise RuleError(f"{where}.steps: expected a list of {{name, phrases}}")
        self.steps: list[tuple[str, list[str]]] = []
        for i, st in enumerate(steps):
            w = f"{where}.steps[{i}]"
            if not isinstance(st, Mapping) or not isinstance(st.get("name"), str):
                raise RuleError(f"{w}.name: required")
            self.steps.append((st["name"], _strings(st, "phrases", w)))
        self.fuzzy = _choice(spec, "match", where, ("exact", "fuzzy"), "fuzzy") == "fuzzy"
        self.threshold = _float(spec, "threshold", where, 0.8, lo=0.5, hi=1.0) or 0.8

    def evaluate(self, ctx: InspectionContext) -> Outcome:
        turns = self.turns(ctx)
        evidence: list[Evidence] = []
        after = -1
        for name, phrases in self.steps:
            first: Evidence | None = None
            for turn in turns:
                for p in phrases:
                    for h in find_phrase(turn, p, fuzzy=self.fuzzy, threshold=self.threshold):
                        if h.start_ms > after and (first is None or h.start_ms < first.start_ms):
                            first = Evidence(turn.speaker, h.start_ms, h.end_ms, h.text,
                                             detail=name)
            if first is None:
                a, b = self.window.bounds(ctx.transcript.duration_ms)
                evidence.append(Evidence(self.speaker, max(a, after), b,
                                         detail=f"missing: {name}"))
                return Outcome(FAIL, evidence, f"step {name!r} missing or out of order")
            evidence.append(first)
            after = first.start_ms
        return Outcome(PASS, evidence)


TextRules = Callable[[str], Any]
