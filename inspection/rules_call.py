"""Rules over timing, the flow's path, latency and the call's outcome (one class per type).

Silence and talk-over read the speech regions of both channels; speaking rate and confidence the
turns; flow path, latency and disposition the call's trace and record, with the node id in the
evidence so the console can light the node up on the graph.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from inspection.rules import (
    FAIL,
    NA,
    PASS,
    Evidence,
    InspectionContext,
    Outcome,
    Rule,
    RuleError,
    _choice,
    _float,
    _int,
    _strings,
    rule_type,
)
from inspection.textmatch import timed_tokens
from inspection.transcript import gaps, intersections, union


@rule_type
class SilenceRule(Rule):
    """Dead air: no one speaks for more than ``max_gap_ms`` (between the first and the last
    speech of the call), or non-talk time above ``max_non_talk_pct`` of the call."""

    type_name = "silence"
    fields = ("max_gap_ms", "max_non_talk_pct")

    def __init__(self, spec: Mapping[str, Any], where: str) -> None:
        super().__init__(spec, where)
        self.max_gap_ms = _int(spec, "max_gap_ms", where)
        self.max_pct = _float(spec, "max_non_talk_pct", where, hi=100)
        if self.max_gap_ms is None and self.max_pct is None:
            raise RuleError(f"{where}.max_gap_ms: give max_gap_ms or max_non_talk_pct")

    def evaluate(self, ctx: InspectionContext) -> Outcome:
        t = ctx.transcript
        sides = [s for k, v in t.speech.items() if self.speaker in ("any", k) for s in v]
        talk = union(sides)
        if not t.duration_ms:
            return Outcome(NA, detail="empty recording")
        evidence: list[Evidence] = []
        if self.max_gap_ms is not None:
            evidence += [Evidence("any", a, b, detail=f"silence {b - a} ms")
                         for a, b in gaps(talk, t.duration_ms)
                         if b - a > self.max_gap_ms
                         and self.window.overlaps(a, b, t.duration_ms)]
        talk_ms = sum(b - a for a, b in talk)
        pct = 100.0 * (t.duration_ms - talk_ms) / t.duration_ms
        detail = f"non-talk {pct:.0f}%"
        if self.max_pct is not None and pct > self.max_pct:
            evidence.append(Evidence("any", 0, t.duration_ms, detail=detail))
        return Outcome(FAIL if evidence else PASS, evidence, detail)


@rule_type
class TalkOverRule(Rule):
    """Both speak at once for ``min_overlap_ms`` or more (default 300): more than
    ``max_count`` such overlaps (default 0) fails. The evidence names who cut in (the side
    whose speech started second)."""

    type_name = "talk_over"
    fields = ("min_overlap_ms", "max_count")

    def __init__(self, spec: Mapping[str, Any], where: str) -> None:
        super().__init__(spec, where)
        self.min_ms = _int(spec, "min_overlap_ms", where, 300) or 0
        self.max_count = _int(spec, "max_count", where, 0) or 0

    def evaluate(self, ctx: InspectionContext) -> Outcome:
        t = ctx.transcript
        caller, engine = t.speech.get("caller", []), t.speech.get("engine", [])
        evidence = []
        for a, b in intersections(caller, engine):
            if b - a < self.min_ms or not self.window.overlaps(a, b, t.duration_ms):
                continue
            c0 = max(s for s, e in caller if s <= a)
            e0 = max(s for s, e in engine if s <= a)
            who = "caller" if c0 >= e0 else "engine"
            if self.speaker not in ("any", who):
                continue
            evidence.append(Evidence(who, a, b, detail=f"overlap {b - a} ms"))
        return Outcome(FAIL if len(evidence) > self.max_count else PASS, evidence)


@rule_type
class SpeakingRateRule(Rule):
    """Words per minute of each turn (Chinese: characters per minute) outside
    ``min_wpm``..``max_wpm``; turns shorter than ``min_turn_ms`` (1500) are not judged."""

    type_name = "speaking_rate"
    default_speaker = "engine"
    fields = ("min_wpm", "max_wpm", "min_turn_ms")

    def __init__(self, spec: Mapping[str, Any], where: str) -> None:
        super().__init__(spec, where)
        self.min_wpm = _float(spec, "min_wpm", where)
        self.max_wpm = _float(spec, "max_wpm", where)
        self.min_turn_ms = _int(spec, "min_turn_ms", where, 1500) or 0
        if self.min_wpm is None and self.max_wpm is None:
            raise RuleError(f"{where}.max_wpm: give min_wpm or max_wpm")

    def evaluate(self, ctx: InspectionContext) -> Outcome:
        judged = [t for t in self.turns(ctx) if t.duration_ms >= self.min_turn_ms and t.text]
        if not judged:
            return Outcome(NA, detail="no turn long enough")
        evidence = []
        for t in judged:
            wpm = len(timed_tokens(t)) * 60_000 / t.duration_ms
            if (self.min_wpm is not None and wpm < self.min_wpm) or \
                    (self.max_wpm is not None and wpm > self.max_wpm):
                evidence.append(Evidence(t.speaker, t.start_ms, t.end_ms, t.text[:80],
                                         detail=f"{wpm:.0f} per minute"))
        return Outcome(FAIL if evidence else PASS, evidence)


@rule_type
class ConfidenceRule(Rule):
    """Turns the recogniser was unsure of (confidence below ``min_confidence``): more than
    ``max_low_pct`` of the judged turns fails. Usually a review trigger, not a penalty."""

    type_name = "asr_confidence"
    default_speaker = "caller"
    fields = ("min_confidence", "max_low_pct")

    def __init__(self, spec: Mapping[str, Any], where: str) -> None:
        super().__init__(spec, where)
        self.min_conf = _float(spec, "min_confidence", where, 0.5, hi=1) or 0.0
        self.max_low_pct = _float(spec, "max_low_pct", where, 0, hi=100) or 0.0

    def evaluate(self, ctx: InspectionContext) -> Outcome:
        judged = [t for t in self.turns(ctx) if t.text]
        if not judged:
            return Outcome(NA, detail="no recognised turn")
        low = [Evidence(t.speaker, t.start_ms, t.end_ms, t.text[:80],
                        detail=f"confidence {t.confidence:.2f}")
               for t in judged if t.confidence < self.min_conf]
        pct = 100.0 * len(low) / len(judged)
        return Outcome(FAIL if pct > self.max_low_pct else PASS, low, f"{pct:.0f}% low")


@rule_type
class DispositionRule(Rule):
    """The call's outcome: ``field`` (``disposition``, ``flow_status``, ``hangup_side``,
    ``hangup_cause``) ``in`` or ``not_in`` a list of values."""

    type_name = "disposition"
    fields = ("field", "in", "not_in")

    def __init__(self, spec: Mapping[str, Any], where: str) -> None:
        super().__init__(spec, where)
        self.field = _choice(spec, "field", where,
                             ("disposition", "flow_status", "hangup_side", "hangup_cause"),
                             "disposition")
        self.allowed = _strings(spec, "in", where, required=False)
        self.refused = _strings(spec, "not_in", where, required=False)
        if not self.allowed and not self.refused:
            raise RuleError(f"{where}.in: give in or not_in")

    def evaluate(self, ctx: InspectionContext) -> Outcome:
        rec = ctx.record
        if self.field == "flow_status":
            value = str((rec.get("flow_result") or {}).get("status", ""))
        else:
            value = str(rec.get(self.field, ""))
        bad = (self.allowed and value not in self.allowed) or value in self.refused
        d = ctx.transcript.duration_ms
        ev = [Evidence("any", d, d, value, detail=f"{self.field}={value}")]
        return Outcome(FAIL if bad else PASS, ev if bad else [])


def _entered(ctx: InspectionContext) -> list[tuple[int, str, str]]:
    return [(ctx.offset_ms(e["at"]), str(e.get("node_id", "")), str(e.get("type", "")))
            for e in ctx.trace if e.get("kind") == "node.enter"]


@rule_type
class FlowPathRule(Rule):
    """Conditions on the path through the flow: reaching ``reached`` (a node id or type)
    without having passed every one of ``requires`` before it ("reached transfer without
    verify_speaker") fails; ``forbid`` fails when any of those nodes is entered at all.
    N/A when the call never reached ``reached``."""

    type_name = "flow_path"
    fields = ("reached", "requires", "forbid")

    def __init__(self, spec: Mapping[str, Any], where: str) -> None:
        super().__init__(spec, where)
        self.reached = spec.get("reached")
        if self.reached is not None and not isinstance(self.reached, str):
            raise RuleError(f"{where}.reached: expected a node id or type")
        self.requires = _strings(spec, "requires", where, required=False)
        self.forbid = _strings(spec, "forbid", where, required=False)
        if not self.reached and not self.forbid:
            raise RuleError(f"{where}.reached: give reached (with requires) or forbid")

    def evaluate(self, ctx: InspectionContext) -> Outcome:
        path = _entered(ctx)
        evidence = [Evidence("engine", at, at, node_id=node, detail=f"entered {kind}")
                    for at, node, kind in path if node in self.forbid or kind in self.forbid]
        if self.reached:
            hits = [i for i, (_, node, kind) in enumerate(path) if self.reached in (node, kind)]
            if not hits and not self.forbid:
                return Outcome(NA, detail=f"never reached {self.reached}")
            for i in hits[:1]:
                before = {x for _, node, kind in path[:i] for x in (node, kind)}
                missing = [r for r in self.requires if r not in before]
                if missing:
                    at, node, kind = path[i]
                    evidence.append(Evidence("engine", at, at, node_id=node,
                                             detail=f"{kind} without {', '.join(missing)}"))
        return Outcome(FAIL if evidence else PASS, evidence)


@rule_type
class LatencyRule(Rule):
    """Turns over their latency budget (``latency.turn`` in the trace: the node's
    ``budget_ms``, or the rule's own ``budget_ms``); more than ``max_count`` (0) fails."""

    type_name = "latency"
    default_speaker = "engine"
    fields = ("budget_ms", "max_count")

    def __init__(self, spec: Mapping[str, Any], where: str) -> None:
        super().__init__(spec, where)
        self.budget_ms = _int(spec, "budget_ms", where)
        self.max_count = _int(spec, "max_count", where, 0) or 0

    def evaluate(self, ctx: InspectionContext) -> Outcome:
        turns = [e for e in ctx.trace if e.get("kind") == "latency.turn"]
        if not turns:
            return Outcome(NA, detail="no measured turn")
        evidence = []
        for e in turns:
            total = e.get("total_ms")
            budget = self.budget_ms if self.budget_ms is not None else e.get("budget_ms")
            if total is None or budget is None or float(total) <= float(budget):
                continue
            at = ctx.offset_ms(e["at"])
            evidence.append(Evidence("engine", at, at, node_id=str(e.get("node_id", "")),
                                     detail=f"{float(total):.0f} ms > {budget} ms"))
        return Outcome(FAIL if len(evidence) > self.max_count else PASS, evidence)
