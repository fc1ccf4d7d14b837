"""Rule types, scorecards and the transcript's timing maths on hand-made transcripts.

The transcripts here are constructed (the real-call test, tests/integration/
test_inspection_calls.py, is where audio goes in); they pin each rule's semantics: speaker and
window scoping, N/A, evidence offsets, and the errors a bad declaration gets.
"""

from __future__ import annotations

from typing import Any

import pytest

from compliance.words import Term, WordFilter
from inspection.rules import InspectionContext, RuleError, make_rule
from inspection.scorecard import load_scorecard, score_call
from inspection.transcript import Transcript, Turn, TWord, gaps, intersections, regions, union


def turn(speaker: str, start: int, text: str, *, ms_per_word: int = 400,
         conf: float = 0.9) -> Turn:
    words = []
    t = start
    for w in text.split():
        words.append(TWord(w.strip(",.!?"), t, t + ms_per_word - 50, conf))
        t += ms_per_word
    return Turn(speaker, start, t, text, words, conf, "en")


def ctx(*turns: Turn, duration: int = 60_000, trace: list[dict[str, Any]] | None = None,
        record: dict[str, Any] | None = None, words: Any = None) -> InspectionContext:
    speech: dict[str, list[tuple[int, int]]] = {"caller": [], "engine": []}
    for t in turns:
        speech[t.speaker].append((t.start_ms, t.end_ms))
    tr = Transcript(duration, sorted(turns, key=lambda t: t.start_ms), "en", speech)
    return InspectionContext(tr, trace or [], record or {"answer_at": 1000.0}, words)


def test_regions_join_short_pauses_and_drop_clicks() -> None:
    probs = [0.0] * 10 + [1.0] * 20 + [0.0] * 10 + [1.0] * 20 + [0.0] * 50 + [1.0] * 2
    assert regions(probs) == [(200, 1200)]  # 200 ms pause joined, 40 ms click dropped
    assert union([(0, 100), (50, 200), (300, 400)]) == [(0, 200), (300, 400)]
    assert intersections([(0, 1000), (2000, 3000)], [(500, 2500)]) == [(500, 1000), (2000, 2500)]
    assert gaps([(100, 200), (900, 1000)], 2000) == [(200, 900)]
    assert gaps([(100, 200)], 2000, edges=True) == [(0, 100), (200, 2000)]


def test_phrase_present_is_scoped_by_speaker_and_window() -> None:
    c = ctx(turn("caller", 1000, "this call is recorded"),
            turn("engine", 40_000, "this call is recorded for quality"))
    rule = make_rule({"type": "phrase", "speaker": "engine", "phrases": ["this call is recorded"],
                      "window": {"to_ms": 30_000}})
    out = rule.evaluate(c)
    assert out.status == "fail"  # the caller said it, and the engine only after 30 s
    assert (out.evidence[0].start_ms, out.evidence[0].end_ms) == (0, 30_000)
    rule = make_rule({"type": "phrase", "speaker": "agent", "phrases": ["this call is recorded"]})
    out = rule.evaluate(c)
    assert out.status == "pass" and out.evidence[0].start_ms == 40_000
    assert out.evidence[0].end_ms == 40_000 + 3 * 400 + 350


def test_fuzzy_matches_a_near_phrase_exact_does_not() -> None:
    c = ctx(turn("engine", 0, "this call may be recorded"))
    exact = make_rule({"type": "phrase", "speaker": "engine", "phrases": ["this call is recorded"]})
    fuzzy = make_rule({"type": "phrase", "speaker": "engine", "match": "fuzzy",
                       "phrases": ["this call is recorded"]})
    assert exact.evaluate(c).status == "fail"
    assert fuzzy.evaluate(c).status == "pass"


def test_chinese_phrases_match_by_character_with_times() -> None:
    t = Turn("engine", 2000, 2000 + 1600, "本次通话将被录音", [
        TWord("本次", 2000, 2400, 0.9), TWord("通话", 2400, 2800, 0.9),
        TWord("将被", 2800, 3200, 0.9), TWord("录音", 3200, 3600, 0.9)], 0.9, "zh")
    out = make_rule({"type": "phrase", "speaker": "engine", "phrases": ["通话將被錄音"]}) \
        .evaluate(ctx(t))  # traditional characters in the rule still match
    assert out.status == "pass" and (out.evidence[0].start_ms, out.evidence[0].end_ms) == \
        (2400, 3600)
    out = make_rule({"type": "lexicon", "lexicon": "complaint"}).evaluate(
        ctx(Turn("caller", 0, 900, "我要投诉你们", [TWord("我要投诉你们", 0, 900, 0.8)], 0.8)))
    assert out.status == "fail" and out.evidence[0].text in ("投诉", "我要投诉")


def test_absent_phrases_fail_with_every_occurrence() -> None:
    c = ctx(turn("caller", 0, "this is unacceptable I want a refund"),
            turn("caller", 10_000, "a refund now"))
    out = make_rule({"type": "lexicon", "lexicon": "complaint"}).evaluate(c)
    assert out.status == "fail"
    assert [(e.text, e.start_ms) for e in out.evidence] == \
        [("unacceptable", 800), ("refund", 2400), ("refund", 10_400)]


def test_regex_and_sensitive_words_carry_the_words_times() -> None:
    c = ctx(turn("caller", 5000, "my card is 4111 1111 you idiot"),
            words=WordFilter([Term("idiot", category="abuse")]))
    out = make_rule({"type": "regex", "pattern": r"\d{4} \d{4}"}).evaluate(c)
    assert out.status == "fail" and out.evidence[0].start_ms == 5000 + 3 * 400
    out = make_rule({"type": "sensitive", "categories": ["abuse"]}).evaluate(c)
    assert out.status == "fail"
    (e,) = out.evidence
    assert (e.text, e.start_ms, e.detail) == ("idiot", 5000 + 6 * 400, "abuse:idiot")
    assert make_rule({"type": "sensitive", "categories": ["fraud"]}).evaluate(c).status == "pass"
    assert make_rule({"type": "sensitive"}).evaluate(ctx(turn("caller", 0, "x"))).status == "na"


def test_script_steps_must_come_in_order() -> None:
    rule = make_rule({"type": "script", "steps": [
        {"name": "greeting", "phrases": ["hello"]},
        {"name": "verify", "phrases": ["date of birth"]},
        {"name": "closing", "phrases": ["goodbye"]}]})
    good = ctx(turn("engine", 0, "hello there"), turn("engine", 5000, "your date of birth"),
               turn("engine", 9000, "goodbye"))
    out = rule.evaluate(good)
    assert out.status == "pass" and [e.start_ms for e in out.evidence] == [0, 5400, 9000]
    swapped = ctx(turn("engine", 0, "goodbye hello"), turn("engine", 5000, "goodbye"),
                  turn("engine", 9000, "your date of birth"))
    out = rule.evaluate(swapped)
    assert out.status == "fail" and out.evidence[-1].detail == "missing: closing"


def test_silence_and_talk_over_from_speech_regions() -> None:
    c = ctx(turn("engine", 0, "one two three four five"), turn("caller", 1000, "stop stop"),
            turn("caller", 15_000, "hello"), duration=20_000)
    out = make_rule({"type": "silence", "max_gap_ms": 8000}).evaluate(c)
    assert out.status == "fail" and [(e.start_ms, e.end_ms) for e in out.evidence] == \
        [(2000, 15_000)]
    out = make_rule({"type": "silence", "max_non_talk_pct": 50}).evaluate(c)
    assert out.status == "fail" and out.detail == "non-talk 88%"
    out = make_rule({"type": "talk_over", "min_overlap_ms": 500}).evaluate(c)
    assert out.status == "fail"
    assert [(e.speaker, e.start_ms, e.end_ms) for e in out.evidence] == [("caller", 1000, 1800)]
    assert make_rule({"type": "talk_over", "speaker": "engine"}).evaluate(c).status == "pass"


def test_rate_confidence_disposition() -> None:
    fast = Turn("engine", 0, 2000, " ".join(["word"] * 10),
                [TWord("word", i * 200, i * 200 + 150, 0.9) for i in range(10)], 0.3)
    c = ctx(fast, record={"answer_at": 0, "disposition": "answered", "hangup_side": "caller",
                          "flow_result": {"status": "completed"}})
    out = make_rule({"type": "speaking_rate", "max_wpm": 200}).evaluate(c)
    assert out.status == "fail" and out.evidence[0].detail == "300 per minute"
    assert make_rule({"type": "asr_confidence", "speaker": "engine"}).evaluate(c).status == "fail"
    assert make_rule({"type": "asr_confidence"}).evaluate(c).status == "na"  # no caller turn
    assert make_rule({"type": "disposition", "field": "flow_status",
                      "in": ["completed"]}).evaluate(c).status == "pass"
    out = make_rule({"type": "disposition", "field": "hangup_side",
                     "not_in": ["caller"]}).evaluate(c)
    assert out.status == "fail" and out.evidence[0].detail == "hangup_side=caller"


TRACE = [
    {"at": 100.0, "kind": "node.enter", "node_id": "start", "type": "start"},
    {"at": 101.0, "kind": "node.enter", "node_id": "menu", "type": "menu"},
    {"at": 104.5, "kind": "latency.turn", "node_id": "menu", "total_ms": 1450.0,
     "budget_ms": 1200},
    {"at": 105.0, "kind": "node.enter", "node_id": "agent", "type": "transfer"},
]


def test_flow_path_and_latency_from_the_trace() -> None:
    c = ctx(trace=TRACE, record={"answer_at": 100.0})
    out = make_rule({"type": "flow_path", "reached": "transfer",
                     "requires": ["verify_speaker"]}).evaluate(c)
    assert out.status == "fail"
    (e,) = out.evidence
    assert (e.node_id, e.start_ms, e.detail) == ("agent", 5000, "transfer without verify_speaker")
    assert make_rule({"type": "flow_path", "reached": "transfer",
                      "requires": ["menu"]}).evaluate(c).status == "pass"
    assert make_rule({"type": "flow_path", "reached": "hangup",
                      "requires": ["menu"]}).evaluate(c).status == "na"
    assert make_rule({"type": "flow_path", "forbid": ["agent"]}).evaluate(c).status == "fail"
    out = make_rule({"type": "latency"}).evaluate(c)
    assert out.status == "fail" and out.evidence[0].node_id == "menu"
    assert out.evidence[0].start_ms == 4500 and out.evidence[0].detail == "1450 ms > 1200 ms"
    assert make_rule({"type": "latency", "budget_ms": 2000}).evaluate(c).status == "pass"


@pytest.mark.parametrize(("spec", "field"), [
    ({"type": "phrasee"}, "rule.type"),
    ({"type": "phrase"}, "rule.phrases"),
    ({"type": "phrase", "phrases": ["x"], "speaker": "boss"}, "rule.speaker"),
    ({"type": "phrase", "phrases": ["x"], "window": {"to_ms": -5}}, "rule.window.to_ms"),
    ({"type": "phrase", "phrases": ["x"], "colour": "red"}, "rule.colour"),
    ({"type": "regex", "pattern": "(unclosed"}, "rule.pattern"),
    ({"type": "silence"}, "rule.max_gap_ms"),
    ({"type": "lexicon", "lexicon": "rude"}, "rule.lexicon"),
    ({"type": "script", "steps": [{"name": "a"}]}, "rule.steps[0].phrases"),
])
def test_bad_rules_name_the_field(spec: dict[str, Any], field: str) -> None:
    with pytest.raises(RuleError) as e:
        make_rule(spec)
    assert str(e.value).startswith(field + ":"), str(e.value)


CARD = {"id": "t", "pass_score": 80, "sample_pct": 0, "sections": [
    {"name": "A", "weight": 60, "items": [
        {"id": "hello", "points": 1, "rule": {"type": "phrase", "phrases": ["hello"]}},
        {"id": "bye", "points": 3, "rule": {"type": "phrase", "phrases": ["goodbye"]}}]},
    {"name": "B", "weight": 40, "items": [
        {"id": "path", "points": 1,
         "rule": {"type": "flow_path", "reached": "hangup", "requires": ["menu"]}}]},
    {"name": "C", "weight": 20, "items": [
        {"id": "words", "points": 1, "auto_fail": True, "rule": {"type": "sensitive"}}]}]}


def test_scorecard_weights_na_and_auto_fail() -> None:
    card = load_scorecard(CARD)
    s = score_call(card, ctx(turn("engine", 0, "hello")))
    # A: 1 of 4 points; B and C N/A (never reached hangup, no word list): A alone counts
    assert s.sections == {"A": 25.0, "B": None, "C": None}
    assert s.score == 25.0 and not s.passed and s.reasons == ["score 25 < 80"]
    words = WordFilter([Term("idiot", category="abuse")])
    s = score_call(card, ctx(turn("engine", 0, "hello goodbye"), words=words))
    assert s.score == 100.0 and s.passed and not s.needs_review
    s = score_call(card, ctx(turn("engine", 0, "hello goodbye idiot"), words=words))
    assert s.score == 0.0 and s.auto_failed and s.reasons == ["auto_fail: words"]
    (item,) = [i for i in s.items if i.id == "words"]
    assert item.evidence[0].start_ms == 800


def test_scorecard_errors_name_the_field() -> None:
    bad = {**CARD, "sections": [{"name": "A", "items": [
        {"id": "x", "rule": {"type": "phrase", "phrases": ["a"]}},
        {"id": "x", "rule": {"type": "phrase", "phrases": ["b"]}}]}]}
    with pytest.raises(RuleError, match=r"^sections\[0\]\.items\[1\]\.id: 'x' is used twice"):
        load_scorecard(bad)
    with pytest.raises(RuleError, match=r"^sections\[0\]\.items\[0\]\.rule\.window: expected"):
        load_scorecard({**CARD, "sections": [{"name": "A", "items": [
            {"id": "x", "rule": {"type": "phrase", "phrases": ["a"], "window": 5}}]}]})
    with pytest.raises(RuleError, match=r"^pass_score"):
        load_scorecard({**CARD, "pass_score": 120})


def test_fuzzy_chinese_forgives_homophones_not_other_words() -> None:
    heard = Turn("caller", 0, 1200, "走的是坦图", [TWord(c, i * 200, i * 200 + 180, 0.9)
                                             for i, c in enumerate("走的是坦图")], 0.9)
    rule = make_rule({"type": "phrase", "speaker": "caller", "match": "fuzzy",
                      "phrases": ["坦途"]})
    out = rule.evaluate(ctx(heard))
    assert out.status == "pass" and (out.evidence[0].start_ms, out.evidence[0].text) == \
        (600, "坦图")
    exact = make_rule({"type": "phrase", "speaker": "caller", "phrases": ["坦途"]})
    assert exact.evaluate(ctx(heard)).status == "fail"
    other = make_rule({"type": "phrase", "speaker": "caller", "match": "fuzzy",
                       "phrases": ["坎坷"]})
    assert other.evaluate(ctx(heard)).status == "fail"
