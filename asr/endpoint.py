"""Endpointing: when did the caller start and stop talking, and when do we give up.

Pure: VAD probabilities and frame times in, at most one event out per call; no clock inside.
``tick(now)`` lets the driver enforce the wall-clock limits when no frames arrive at all (a dead
RTP stream must not hang a listen either).

Rules, all measured on the frame timeline the driver passes in:
- speech starts after ``min_speech_ms`` of consecutive frames above ``start_threshold``; the
  reported start is the first of those frames (that is what barge-in latency is measured from);
- speech ends after ``hangover_ms`` of frames below ``end_threshold`` (hysteresis: a word's soft
  tail does not end it); the reported end is the end of the last speech frame;
- ``no_input_timeout_s`` without speech start -> NO_INPUT;
- ``max_speech_s`` after speech start, or ``max_listen_s`` after the listen began, whichever is
  first -> MAX_DURATION (a caller who never stops, hold music, a line of noise).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

FRAME_S = 0.020


class EndpointKind(enum.Enum):
    SPEECH_START = "speech_start"
    SPEECH_END = "speech_end"
    NO_INPUT = "no_input"
    MAX_DURATION = "max_duration"


@dataclass(frozen=True, slots=True)
class EndpointEvent:
    kind: EndpointKind
    at: float  # when the endpointer decided (time of the frame/tick that triggered it)
    speech_at: float | None = None  # speech start (SPEECH_START) or speech end (SPEECH_END)


@dataclass(frozen=True, slots=True)
class EndpointConfig:
    hangover_ms: int = 300
    min_speech_ms: int = 100
    start_threshold: float = 0.5
    end_threshold: float = 0.35
    no_input_timeout_s: float = 5.0
    max_speech_s: float = 15.0
    max_listen_s: float = 20.0

    def __post_init__(self) -> None:
        for name in ("hangover_ms", "min_speech_ms"):
            if getattr(self, name) < 0:
                raise ValueError(f"endpoint {name} must be >= 0, got {getattr(self, name)}")
        for name in ("no_input_timeout_s", "max_speech_s", "max_listen_s"):
            if getattr(self, name) <= 0:
                raise ValueError(f"endpoint {name} must be > 0, got {getattr(self, name)}")
        if not 0.0 <= self.end_threshold <= self.start_threshold <= 1.0:
            raise ValueError("endpoint thresholds need 0 <= end_threshold <= start_threshold <= 1")


class Endpointer:
    """One listen's endpointing state machine. Feed frames in order; stop after a final event."""

    def __init__(self, config: EndpointConfig, started_at: float) -> None:
        self.config = config
        self.started_at = started_at
        self.speech_start: float | None = None
        self.speech_end: float | None = None
        self.done: EndpointKind | None = None
        self._run_start: float | None = None  # first frame of the current above-threshold run
        self._silence_start: float | None = None  # first frame of the current silence run

    @property
    def in_speech(self) -> bool:
        return self.speech_start is not None and self.done is None

    def feed(
        self, prob: float, frame_start: float, frame_s: float = FRAME_S
    ) -> EndpointEvent | None:
        """One frame's speech probability; ``frame_start`` is when the frame began."""
        if self.done is not None:
            return None
        cfg = self.config
        frame_end = frame_start + frame_s
        if self.speech_start is None:
            if prob >= cfg.start_threshold:
                if self._run_start is None:
                    self._run_start = frame_start
                if (frame_end - self._run_start) * 1000 >= cfg.min_speech_ms - 1e-6:
                    self.speech_start = self._run_start
                    return EndpointEvent(EndpointKind.SPEECH_START, frame_end, self._run_start)
            else:
                self._run_start = None
        elif prob < cfg.end_threshold:
            if self._silence_start is None:
                self._silence_start = frame_start
            if (frame_end - self._silence_start) * 1000 >= cfg.hangover_ms - 1e-6:
                self.speech_end = self._silence_start
                self.done = EndpointKind.SPEECH_END
                return EndpointEvent(EndpointKind.SPEECH_END, frame_end, self._silence_start)
        else:
            self._silence_start = None
        return self.tick(frame_end)

    def tick(self, now: float) -> EndpointEvent | None:
        """Check the time limits; call on every frame and from a timer when frames stop."""
        if self.done is not None:
            return None
        cfg = self.config
        waiting = self.speech_start is None and self._run_start is None
        if waiting and now - self.started_at >= cfg.no_input_timeout_s - 1e-9:
            self.done = EndpointKind.NO_INPUT
            return EndpointEvent(EndpointKind.NO_INPUT, now)
        limit = self.started_at + cfg.max_listen_s
        if self.speech_start is not None:
            limit = min(limit, self.speech_start + cfg.max_speech_s)
        if now >= limit - 1e-9:
            self.done = EndpointKind.MAX_DURATION
            return EndpointEvent(EndpointKind.MAX_DURATION, now)
        return None

    def next_deadline(self) -> float:
        """The earliest time ``tick`` could fire, for the driver's timer."""
        cfg = self.config
        limit = self.started_at + cfg.max_listen_s
        if self.speech_start is None:
            return min(limit, self.started_at + cfg.no_input_timeout_s)
        return min(limit, self.speech_start + cfg.max_speech_s)
