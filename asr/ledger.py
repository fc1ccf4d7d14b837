"""The latency ledger: where each caller turn's time went, against the node's budget.

A turn is four marks on one monotonic clock: ``speech_end`` (VAD says the caller stopped),
``recognizer_final`` (text ready), ``decision`` (the flow picked its next edge) and
``first_audio`` (first RTP packet of the answer left). The figure the caller hears is
``speech_end -> first_audio``; the others say which stage ate it. Marks are set by whoever owns
that moment (listen driver, interpreter, RTP sender); this module only stores and reports.
"""

from __future__ import annotations

import collections
import math
from dataclasses import dataclass, field
from typing import Any

STAGES = ("speech_end", "recognizer_final", "decision", "first_audio")
# Prometheus histogram buckets for turn latency, seconds
RECENT_TURNS = 10_000  # turns kept for percentiles; counters cover every turn
BUCKETS_S = (0.1, 0.2, 0.3, 0.35, 0.5, 0.6, 0.8, 0.9, 1.2, 2.0, 5.0)


@dataclass(slots=True)
class TurnLatency:
    call_id: str
    node_id: str
    budget_ms: int | None = None
    kind: str = "grammar"  # grammar | free | dtmf: which target applies
    marks: dict[str, float] = field(default_factory=dict)

    def mark(self, stage: str, at: float) -> None:
        if stage not in STAGES:
            raise ValueError(f"ledger: unknown stage {stage!r} (one of {', '.join(STAGES)})")
        if stage in self.marks:
            raise ValueError(f"ledger: stage {stage!r} already marked for node {self.node_id}")
        self.marks[stage] = at

    def span_ms(self, start: str, end: str) -> float | None:
        a, b = self.marks.get(start), self.marks.get(end)
        return None if a is None or b is None else (b - a) * 1000

    @property
    def total_ms(self) -> float | None:
        """Speech end -> first answer audio: what the caller waits."""
        return self.span_ms("speech_end", "first_audio")

    @property
    def over_budget(self) -> bool | None:
        total = self.total_ms
        if self.budget_ms is None or total is None:
            return None
        return total > self.budget_ms

    def as_dict(self) -> dict[str, Any]:
        """For the call trace: absolute marks plus the per-stage spans in ms."""
        return {
            "call_id": self.call_id,
            "node_id": self.node_id,
            "kind": self.kind,
            "budget_ms": self.budget_ms,
            "marks": dict(self.marks),
            "asr_ms": self.span_ms("speech_end", "recognizer_final"),
            "decision_ms": self.span_ms("recognizer_final", "decision"),
            "playout_ms": self.span_ms("decision", "first_audio"),
            "total_ms": self.total_ms,
            "over_budget": self.over_budget,
        }


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100); NaN for no values."""
    if not values:
        return math.nan
    s = sorted(values)
    k = max(0, min(len(s) - 1, math.ceil(q / 100 * len(s)) - 1))
    return s[k]


class LatencyLedger:
    """All finished turns of a process: cumulative histogram counters for Prometheus (they
    never shrink, as counters must not) and a bounded window of recent turns for percentiles,
    so a long-running engine does not grow with every turn it ever served."""

    def __init__(self, window: int = RECENT_TURNS) -> None:
        self.turns: collections.deque[TurnLatency] = collections.deque(maxlen=window)
        self._buckets: dict[str, list[int]] = {}
        self._sum_s: dict[str, float] = {}
        self._count: dict[str, int] = {}
        self._over: dict[str, int] = {}

    def add(self, turn: TurnLatency) -> None:
        self.turns.append(turn)
        kind = turn.kind
        self._over[kind] = self._over.get(kind, 0) + (1 if turn.over_budget else 0)
        total = turn.total_ms
        if total is None:
            return
        v = total / 1000
        counts = self._buckets.setdefault(kind, [0] * len(BUCKETS_S))
        for i, b in enumerate(BUCKETS_S):
            if v <= b:
                counts[i] += 1
        self._sum_s[kind] = self._sum_s.get(kind, 0.0) + v
        self._count[kind] = self._count.get(kind, 0) + 1

    def summary(self) -> dict[str, dict[str, float]]:
        """Percentiles over the recent window, per turn kind."""
        out: dict[str, dict[str, float]] = {}
        for kind in sorted({t.kind for t in self.turns}):
            totals = [t.total_ms for t in self.turns if t.kind == kind and t.total_ms is not None]
            over = [t for t in self.turns if t.kind == kind and t.over_budget]
            out[kind] = {
                "turns": float(len(totals)),
                "p50_ms": percentile(totals, 50),
                "p95_ms": percentile(totals, 95),
                "p99_ms": percentile(totals, 99),
                "over_budget": float(len(over)),
            }
        return out

    def prometheus(self, prefix: str = "ivr_turn") -> str:
        """Histogram of speech_end -> first_audio per turn kind, plus an over-budget counter."""
        lines = [
            f"# HELP {prefix}_latency_seconds Caller speech end to first answer RTP packet.",
            f"# TYPE {prefix}_latency_seconds histogram",
        ]
        kinds = sorted(set(self._count) | set(self._over))
        for kind in kinds:
            counts = self._buckets.get(kind, [0] * len(BUCKETS_S))
            for b, n in zip(BUCKETS_S, counts, strict=True):
                lines.append(f'{prefix}_latency_seconds_bucket{{kind="{kind}",le="{b}"}} {n}')
            n_all = self._count.get(kind, 0)
            lines.append(f'{prefix}_latency_seconds_bucket{{kind="{kind}",le="+Inf"}} {n_all}')
            lines.append(f'{prefix}_latency_seconds_sum{{kind="{kind}"}} '
                         f'{self._sum_s.get(kind, 0.0):.6f}')
            lines.append(f'{prefix}_latency_seconds_count{{kind="{kind}"}} {n_all}')
        lines += [
            f"# HELP {prefix}_over_budget_total Turns slower than their node's budget.",
            f"# TYPE {prefix}_over_budget_total counter",
        ]
        for kind in kinds:
            lines.append(f'{prefix}_over_budget_total{{kind="{kind}"}} {self._over.get(kind, 0)}')
        return "\n".join(lines) + "\n"
