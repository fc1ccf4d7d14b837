"""Inspecting one finished call: its record and recording in, a stored result out (blocking).

Runs in the worker's thread pool (or the CLI): transcribe both channels, build the rules'
context from the transcript and the call's trace, score it on the tenant's most specific
active scorecard for the call's flow and campaign (:mod:`inspection.scoping`; the operator's
``default`` tenant's when none of the tenant's fits; the built-in :data:`BASIC_SCORECARD` when
nobody's does) and store transcript, text and score.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from engine.cdr import CallRecord, CallRecords
from inspection.rules import InspectionContext
from inspection.scoping import parse_scope, pick
from inspection.scorecard import Score, load_scorecard, score_call
from inspection.store import InspectionResultRow, ResultStore, ScorecardStore
from inspection.transcribe import TranscribeStats, transcribe_recording
from inspection.transcript import Transcript
from storage import Database
from storage.tenancy import EVERY_TENANT

# What every call gets until a tenant imports its own scorecard: dead air, talk-over,
# sensitive words, complaints, latency overruns.
BASIC_SCORECARD: dict[str, Any] = {
    "id": "basic", "name": "Basic call hygiene", "pass_score": 80, "sections": [
        {"name": "Conduct", "weight": 1, "items": [
            {"id": "sensitive_words", "points": 3, "auto_fail": True,
             "rule": {"type": "sensitive", "speaker": "any"}},
            {"id": "complaint", "points": 1, "review": True,
             "rule": {"type": "lexicon", "lexicon": "complaint", "speaker": "caller"}},
        ]},
        {"name": "Call handling", "weight": 1, "items": [
            {"id": "dead_air", "points": 1, "rule": {"type": "silence", "max_gap_ms": 8000}},
            {"id": "talk_over", "points": 1,
             "rule": {"type": "talk_over", "min_overlap_ms": 1000, "max_count": 1}},
            {"id": "latency", "points": 1, "rule": {"type": "latency", "max_count": 0}},
        ]},
    ]}


class InspectionError(RuntimeError):
    """This call cannot be inspected (no record, no recording): retrying will not help."""


@dataclass(slots=True)
class Inspected:
    record: CallRecord
    transcript: Transcript
    score: Score
    stats: TranscribeStats
    row: InspectionResultRow


def call_language(record: CallRecord, default: str) -> str:
    """The language the call was in: the flow's choice in the trace (``flow.language``,
    set when ``auto`` decided), else ``default`` (the flow's or the configured one)."""
    for e in reversed(record.trace):
        if e.get("kind") == "flow.language" and e.get("language"):
            return str(e["language"])
    return default


class Inspector:
    def __init__(self, db: Database, *, words_for: Callable[[str], Any] | None = None,
                 language_for: Callable[[CallRecord], str] | None = None,
                 load_engine: Callable[[str], Any] | None = None, vad_kind: str = "silero",
                 default_language: str = "en") -> None:
        self.records = CallRecords(db)
        self.results = ResultStore(db)
        self.scorecards = ScorecardStore(db)
        self.words_for = words_for
        self.language_for = language_for
        self.load_engine = load_engine
        self.vad_kind = vad_kind
        self.default_language = default_language

    def scorecard_for(self, rec: CallRecord) -> tuple[dict[str, Any], int]:
        """The document and version of the scorecard that scores ``rec``."""
        for tenant in dict.fromkeys((rec.tenant, "default")):
            got = pick(self.scorecards.active(tenant), lambda c: parse_scope(c[0].get("scope")),
                       rec.flow_id, rec.campaign_id)
            if got is not None:
                return got
        return BASIC_SCORECARD, 0

    def inspect(self, call_id: str, *, store: bool = True) -> Inspected:
        rec = self.records.get(call_id, tenants=EVERY_TENANT)
        if rec is None:
            raise InspectionError(f"call {call_id}: no call record")
        if not rec.recording_path or not Path(rec.recording_path).is_file():
            raise InspectionError(f"call {rec.id}: no recording ({rec.recording_path or 'none'})")
        default = self.language_for(rec) if self.language_for else self.default_language
        transcript, stats = transcribe_recording(
            Path(rec.recording_path), call_language(rec, default),
            load_engine=self.load_engine, vad_kind=self.vad_kind)
        return self.score(rec, transcript, stats, store=store)

    def score(self, rec: CallRecord, transcript: Transcript, stats: TranscribeStats, *,
              store: bool = True) -> Inspected:
        doc, version = self.scorecard_for(rec)
        card = load_scorecard(doc)
        words = self.words_for(rec.tenant) if self.words_for else None
        ctx = InspectionContext(transcript, rec.trace, rec.as_dict(), words)
        score = score_call(card, ctx, rec.id)
        row = InspectionResultRow(
            call_id=rec.id, tenant=rec.tenant, inspected_at=time.time(), scorecard=card.id,
            scorecard_version=version, flow_id=rec.flow_id, campaign_id=rec.campaign_id,
            score=score.score,
            passed=score.passed, auto_failed=score.auto_failed, needs_review=score.needs_review,
            review_state="queued" if score.needs_review else "", language=transcript.language,
            text=transcript.text(), transcript=transcript.as_dict(), result=score.as_dict(),
            stats={"audio_s": round(stats.audio_s, 3), "compute_s": round(stats.compute_s, 3),
                   "rtf": round(stats.rtf, 4), "regions": stats.regions,
                   "engine": transcript.engine_name})
        if store:
            self.results.save(row)
        return Inspected(rec, transcript, score, stats, row)
