"""The latency ledger of a caller turn, as a call keeps it between the question and the answer.

A turn is opened by the speech layer when ``listen`` hears the caller stop (``speech_end``,
``recognizer_final``); the flow's next ``say``/``play`` marks ``decision`` before any synthesis;
the media session stamps the answer's first RTP packet (``first_audio``). Then the turn is
finished: written to the trace and handed to the speech layer's ledger (metrics, bus).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, Protocol

from core.call import CallTrace

log = logging.getLogger("ivr.call")


class Turn(Protocol):
    marks: dict[str, float]

    def mark(self, name: str, at: float) -> None: ...


class TurnTracker:
    def __init__(self, now: Callable[[], float], trace: CallTrace,
                 finish: Callable[[Any], dict[str, Any]] | None) -> None:
        self._now = now
        self._trace = trace
        self._finish = finish
        self.pending: Turn | None = None  # a caller turn awaiting its answer

    def begin_answer(self) -> Turn | None:
        """The flow starts answering the pending turn: mark its ``decision`` now."""
        turn, self.pending = self.pending, None
        if turn is not None:
            turn.mark("decision", self._now())
        return turn

    def finish(self, turn: Turn, first_sent_at: float | None) -> None:
        """Complete and publish the turn's ledger; bookkeeping never breaks a call."""
        try:
            if first_sent_at is not None and "first_audio" not in turn.marks:
                turn.mark("first_audio", first_sent_at)
            if self._finish is not None:
                self._trace.add("latency.turn", **self._finish(turn))
        except Exception:  # a ledger bug must not cost the caller their call
            log.exception("latency ledger")
