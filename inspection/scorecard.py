"""Scorecards: sections of weighted items, each item one rule; auto-fail items; N/A.

A section's score is the points its passing items earned over the points of its applicable items
(N/A items leave both sides), times the section's weight; the call's score is the sum over the
weights of the sections that had anything applicable, scaled to 100. A failed ``auto_fail`` item
makes the score 0 whatever else passed (Contact Lens "automatic fail"). A call needs a person
when it did not pass, an item marked ``review`` fired, or it falls in the ``sample_pct`` sample.

Declared in JSON; :func:`load_scorecard` checks everything and names the field of the first
problem (``sections[1].items[0].rule.window.to_ms``). A scorecard's ``scope`` (flows and/or
campaigns, or none: the tenant's default) decides which calls it scores
(:mod:`inspection.scoping`).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import inspection.rules_call  # noqa: F401 - registers the timing, flow and outcome rule types
from inspection.rules import FAIL, NA, PASS, Evidence, InspectionContext, Rule, RuleError, make_rule
from inspection.scoping import ID as _ID
from inspection.scoping import Scope, parse_scope


@dataclass(frozen=True, slots=True)
class Item:
    id: str
    name: str
    section: str
    points: float
    rule: Rule
    auto_fail: bool = False
    review: bool = False  # a hit sends the call to a reviewer even if it passed


@dataclass(frozen=True, slots=True)
class Section:
    name: str
    weight: float
    items: tuple[Item, ...]


@dataclass(frozen=True, slots=True)
class Scorecard:
    id: str
    name: str
    sections: tuple[Section, ...]
    pass_score: float = 80.0
    sample_pct: float = 0.0
    document: Mapping[str, Any] = field(default_factory=dict)
    scope: Scope = field(default_factory=Scope)

    @property
    def items(self) -> list[Item]:
        return [i for s in self.sections for i in s.items]


@dataclass(slots=True)
class ItemResult:
    id: str
    name: str
    section: str
    status: str  # pass | fail | na
    points: float
    earned: float
    auto_fail: bool
    evidence: list[Evidence]
    detail: str = ""
    rule_type: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {"id": self.id, "name": self.name, "section": self.section,
                "status": self.status, "points": self.points, "earned": self.earned,
                "auto_fail": self.auto_fail, "detail": self.detail, "rule_type": self.rule_type,
                "evidence": [e.as_dict() for e in self.evidence]}


@dataclass(slots=True)
class Score:
    scorecard: str
    score: float
    passed: bool
    auto_failed: bool
    needs_review: bool
    reasons: list[str]
    items: list[ItemResult]
    sections: dict[str, float | None]  # section -> 0..100, None when all N/A

    def as_dict(self) -> dict[str, Any]:
        return {"scorecard": self.scorecard, "score": self.score, "passed": self.passed,
                "auto_failed": self.auto_failed, "needs_review": self.needs_review,
                "reasons": self.reasons, "sections": self.sections,
                "items": [i.as_dict() for i in self.items]}


def _number(d: Mapping[str, Any], key: str, where: str, default: float, hi: float) -> float:
    v = d.get(key, default)
    if isinstance(v, bool) or not isinstance(v, int | float) or not 0 <= v <= hi:
        raise RuleError(f"{where + '.' if where else ''}{key}: expected a number in "
                        f"0..{hi:g}, got {v!r}")
    return float(v)


def load_scorecard(doc: Any) -> Scorecard:
    """A scorecard from its JSON document; RuleError names the field of the first problem."""
    if not isinstance(doc, Mapping):
        raise RuleError("scorecard: expected a JSON object")
    sid = doc.get("id")
    if not isinstance(sid, str) or not _ID.match(sid):
        raise RuleError("id: expected 1-64 letters, digits, _ . : -")
    scope = parse_scope(doc.get("scope"))
    sections_doc = doc.get("sections")
    if not isinstance(sections_doc, list) or not sections_doc:
        raise RuleError("sections: expected a non-empty list")
    sections: list[Section] = []
    seen: set[str] = set()
    for si, s in enumerate(sections_doc):
        sw = f"sections[{si}]"
        if not isinstance(s, Mapping) or not isinstance(s.get("name"), str) or not s["name"]:
            raise RuleError(f"{sw}.name: required")
        items_doc = s.get("items")
        if not isinstance(items_doc, list) or not items_doc:
            raise RuleError(f"{sw}.items: expected a non-empty list")
        items = []
        for ii, it in enumerate(items_doc):
            iw = f"{sw}.items[{ii}]"
            if not isinstance(it, Mapping):
                raise RuleError(f"{iw}: expected an object")
            iid = it.get("id")
            if not isinstance(iid, str) or not _ID.match(iid):
                raise RuleError(f"{iw}.id: expected 1-64 letters, digits, _ . : -")
            if iid in seen:
                raise RuleError(f"{iw}.id: {iid!r} is used twice")
            seen.add(iid)
            items.append(Item(iid, str(it.get("name") or iid), s["name"],
                              _number(it, "points", iw, 1.0, 1000),
                              make_rule(it.get("rule"), f"{iw}.rule"),
                              bool(it.get("auto_fail", False)), bool(it.get("review", False))))
        sections.append(Section(s["name"], _number(s, "weight", sw, 1.0, 1000), tuple(items)))
    return Scorecard(sid, str(doc.get("name") or sid), tuple(sections),
                     _number(doc, "pass_score", "", 80.0, 100),
                     _number(doc, "sample_pct", "", 0.0, 100),
                     json.loads(json.dumps(doc)), scope)


def sampled(call_id: str, pct: float) -> bool:
    """A stable pick of ``pct`` % of calls (the same call is always in or out)."""
    h = int.from_bytes(hashlib.sha256(call_id.encode()).digest()[:4], "big")
    return h % 10_000 < pct * 100


def score_call(card: Scorecard, ctx: InspectionContext, call_id: str = "") -> Score:
    results: list[ItemResult] = []
    for item in card.items:
        try:
            out = item.rule.evaluate(ctx)
        except Exception as e:  # one broken rule must not hide the others' findings
            results.append(ItemResult(item.id, item.name, item.section, NA, item.points, 0.0,
                                      item.auto_fail, [], f"rule error: {e}"[:200],
                                      item.rule.type_name))
            continue
        earned = item.points if out.status == PASS else 0.0
        results.append(ItemResult(item.id, item.name, item.section, out.status, item.points,
                                  earned, item.auto_fail, out.evidence, out.detail,
                                  item.rule.type_name))
    per_section: dict[str, float | None] = {}
    total = weights = 0.0
    for sec in card.sections:
        mine = [r for r in results if r.section == sec.name and r.status != NA]
        possible = sum(r.points for r in mine)
        if not mine or possible == 0:
            per_section[sec.name] = None
            continue
        frac = sum(r.earned for r in mine) / possible
        per_section[sec.name] = round(100 * frac, 1)
        total += frac * sec.weight
        weights += sec.weight
    auto_failed = any(r.auto_fail and r.status == FAIL for r in results)
    score = 0.0 if auto_failed else round(100 * total / weights, 1) if weights else 100.0
    passed = not auto_failed and score >= card.pass_score
    reasons = []
    if auto_failed:
        reasons.append("auto_fail: " + ", ".join(r.id for r in results
                                                  if r.auto_fail and r.status == FAIL))
    elif not passed:
        reasons.append(f"score {score:g} < {card.pass_score:g}")
    flagged = {i.id for i in card.items if i.review}
    fired = [r.id for r in results if r.id in flagged and r.status == FAIL]
    if fired:
        reasons.append("review: " + ", ".join(fired))
    if call_id and card.sample_pct and sampled(call_id, card.sample_pct):
        reasons.append("sample")
    return Score(card.id, score, passed, auto_failed, bool(reasons), reasons, results,
                 per_section)
