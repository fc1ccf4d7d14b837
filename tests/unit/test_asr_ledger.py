"""The per-turn latency ledger: marks, spans, budget, Prometheus export."""

from __future__ import annotations

import math

import pytest

from asr.ledger import LatencyLedger, TurnLatency, percentile


def turn(total_ms: float, budget: int | None = 350, kind: str = "grammar") -> TurnLatency:
    t = TurnLatency("call-1", "menu", budget_ms=budget, kind=kind)
    t.mark("speech_end", 10.0)
    t.mark("recognizer_final", 10.0 + total_ms / 3000)
    t.mark("decision", 10.0 + total_ms / 2000)
    t.mark("first_audio", 10.0 + total_ms / 1000)
    return t


def test_spans_and_budget() -> None:
    t = turn(300)
    d = t.as_dict()
    assert d["total_ms"] == pytest.approx(300)
    assert d["asr_ms"] == pytest.approx(100)
    assert d["decision_ms"] == pytest.approx(50)
    assert d["playout_ms"] == pytest.approx(150)
    assert d["over_budget"] is False
    assert turn(400).over_budget is True
    assert turn(400, budget=None).over_budget is None


def test_incomplete_turn_has_no_total() -> None:
    t = TurnLatency("c", "n", budget_ms=100)
    t.mark("speech_end", 1.0)
    assert t.total_ms is None and t.over_budget is None


def test_unknown_and_repeated_stage_rejected() -> None:
    t = TurnLatency("c", "n")
    with pytest.raises(ValueError, match="unknown stage 'speech_ended'"):
        t.mark("speech_ended", 1.0)
    t.mark("decision", 1.0)
    with pytest.raises(ValueError, match="already marked"):
        t.mark("decision", 2.0)


def test_percentiles_nearest_rank() -> None:
    vals = [float(i) for i in range(1, 101)]
    assert percentile(vals, 50) == 50 and percentile(vals, 95) == 95 and percentile(vals, 99) == 99
    assert math.isnan(percentile([], 50))


def test_summary_and_prometheus() -> None:
    led = LatencyLedger()
    for ms in (200, 250, 300, 700):
        led.add(turn(ms))
    led.add(turn(800, budget=900, kind="free"))
    s = led.summary()
    assert s["grammar"]["turns"] == 4 and s["grammar"]["over_budget"] == 1
    assert s["grammar"]["p50_ms"] == pytest.approx(250)
    text = led.prometheus()
    assert 'ivr_turn_latency_seconds_bucket{kind="grammar",le="0.35"} 3' in text
    assert 'ivr_turn_latency_seconds_bucket{kind="grammar",le="+Inf"} 4' in text
    assert 'ivr_turn_latency_seconds_count{kind="free"} 1' in text
    assert 'ivr_turn_over_budget_total{kind="grammar"} 1' in text
    assert 'ivr_turn_over_budget_total{kind="free"} 0' in text


def test_counters_cover_every_turn_while_the_window_stays_bounded() -> None:
    """A long-running engine: Prometheus counters never shrink, memory does not grow."""
    from asr.ledger import LatencyLedger, TurnLatency

    ledger = LatencyLedger(window=3)
    for i in range(5):
        t = TurnLatency("c", "n", budget_ms=250, kind="grammar")
        t.mark("speech_end", 10.0)
        t.mark("first_audio", 10.0 + 0.1 * (i + 1))  # 100..500 ms
        ledger.add(t)
    assert len(ledger.turns) == 3
    text = ledger.prometheus()
    assert 'ivr_turn_latency_seconds_count{kind="grammar"} 5' in text
    assert 'ivr_turn_latency_seconds_bucket{kind="grammar",le="0.2"} 2' in text
    assert 'ivr_turn_over_budget_total{kind="grammar"} 3' in text  # 300, 400, 500 ms > 250
    assert ledger.summary()["grammar"]["turns"] == 3.0
