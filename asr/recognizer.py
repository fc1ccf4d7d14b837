"""The streaming recogniser interface and the base class every backend shares.

A backend is two small classes. An :class:`Engine` holds a loaded model (loaded once per process,
shared by every call, see :mod:`asr.models`) and opens a :class:`Stream` per utterance. The base
``Stream`` owns what every backend needs so backends only implement ``_accept``/``_final``:
resampling 8 kHz call audio to the model's rate (streaming, state carried across frames),
counting audio and compute time (RTF, decode time after the last frame), turning backend
exceptions into :class:`RecognizerError`, and refusing use after ``finish``.

Streams are blocking and not thread-safe: the asyncio side drives one stream from one pool job
at a time (:mod:`asr.listen`). Timeouts belong to the pool, not here.
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from audio.pcm import Pcm
from audio.resample import Upsampler2x

Mode = Literal["free", "keywords", "grammar"]
Status = Literal["ok", "nomatch", "noinput"]


class RecognizerError(RuntimeError):
    """A backend failed or was misused; ``engine`` and the message say which and why."""

    def __init__(self, engine: str, message: str) -> None:
        super().__init__(f"{engine}: {message}")
        self.engine = engine


@dataclass(frozen=True, slots=True)
class RecognizerOptions:
    """What one listen asks for. ``grammar`` is JSGF text; ``keywords`` are whole phrases."""

    mode: Mode = "free"
    grammar: str | None = None
    keywords: tuple[str, ...] = ()
    hints: tuple[str, ...] = ()  # biasing phrases (whisper prompt); ignored where unsupported
    partials: bool = False
    language: str = "en-US"  # BCP-47-ish ("en-US", "zh-CN", "cmn"); "auto" detects (zh/en)
    nbest: int = 0  # hypotheses to decode; 0: the engine's default for the mode
    words: bool = False  # word timings in the final (an extra alignment pass)
    nomatch_threshold: float | None = None  # calibrated confidence below which: nomatch
    # small grammars: their phrases as whisper's prompt, judged by the prompted model (opt-in:
    # fewer false rejects of short answers, more wrong and out-of-grammar accepts; asr/nomatch.py)
    grammar_prompt: bool = False

    def __post_init__(self) -> None:
        if self.mode == "grammar" and not self.grammar:
            raise ValueError("recognizer options: mode 'grammar' needs grammar (JSGF text)")
        if self.mode == "keywords" and not self.keywords:
            raise ValueError("recognizer options: mode 'keywords' needs at least one keyword")


@dataclass(frozen=True, slots=True)
class PartialResult:
    text: str
    audio_s: float  # audio consumed when this partial was produced


@dataclass(frozen=True, slots=True)
class Word:
    """One recognised word: text, start/end in seconds from the utterance start, confidence."""

    w: str
    start: float
    end: float
    conf: float


@dataclass(frozen=True, slots=True)
class Decision:
    """What a backend's ``_final`` returns beyond text/confidence/alternatives."""

    text: str
    confidence: float
    alternatives: tuple[str, ...] = ()
    status: Status = "ok"
    heard: str = ""  # the free hypothesis a grammar result was matched from
    words: tuple[Word, ...] = ()
    language: str = ""
    features: dict[str, float] = field(default_factory=dict)  # what the confidence came from


@dataclass(frozen=True, slots=True)
class FinalResult:
    """A finished utterance. ``timings`` are durations in seconds measured by the stream.

    ``status``: ``ok``; ``nomatch`` when something was said that the grammar does not cover
    (or the recogniser heard no words in what the VAD took for speech: noise, music);
    ``noinput`` only from callers that run their own VAD over a whole file (the CLI).
    ``heard`` is the free hypothesis behind a grammar result (for traces and tuning).
    """

    text: str
    confidence: float
    alternatives: tuple[str, ...] = ()
    engine: str = ""
    timings: dict[str, float] = field(default_factory=dict)  # audio_s, compute_s, finish_s, rtf
    status: Status = "ok"
    heard: str = ""
    words: tuple[Word, ...] = ()
    language: str = ""
    features: dict[str, float] = field(default_factory=dict)


class Stream(ABC):
    """One utterance. ``feed`` 8 kHz int16 frames, then ``finish`` exactly once."""

    # True when feed only buffers (microseconds): the driver then feeds on the loop instead of
    # queueing a pool job behind other calls' decodes.
    inline_feed: bool = False
    # An empty text after speech (grammar/keyword streams): the VAD heard sound, the recogniser
    # no words -> ``nomatch`` rather than an ``ok`` with nothing in it.
    empty_is_nomatch: bool = False

    def __init__(self, engine_name: str, rate: int) -> None:
        if rate not in (8000, 16000):
            raise RecognizerError(engine_name, f"unsupported model rate {rate} (8000 or 16000)")
        self.engine_name = engine_name
        self.rate = rate
        self._up = Upsampler2x() if rate == 16000 else None
        self._audio_samples_8k = 0
        self._compute_s = 0.0
        self._finished = False

    @property
    def audio_s(self) -> float:
        return self._audio_samples_8k / 8000

    def feed(self, pcm8k: Pcm) -> list[PartialResult]:
        """Give audio (any length, 8 kHz int16); returns partial results, possibly none."""
        if self._finished:
            raise RecognizerError(self.engine_name, "feed() after finish()")
        if pcm8k.dtype != np.int16:
            raise RecognizerError(self.engine_name, f"audio must be int16, got {pcm8k.dtype}")
        t0 = time.perf_counter()
        self._audio_samples_8k += len(pcm8k)
        pcm = self._up.process(pcm8k) if self._up is not None else pcm8k
        try:
            partial = self._accept(pcm)
        except RecognizerError:
            raise
        except Exception as e:  # a backend's own error type: wrap with the engine name
            raise RecognizerError(self.engine_name, f"decoding failed: {e!r}") from e
        finally:
            self._compute_s += time.perf_counter() - t0
        return [PartialResult(partial, self.audio_s)] if partial else []

    def finish(self) -> FinalResult:
        """End of utterance: the final text. ``finish_s`` is the compute after the last frame."""
        if self._finished:
            raise RecognizerError(self.engine_name, "finish() called twice")
        self._finished = True
        t0 = time.perf_counter()
        try:
            if self._up is not None:
                self._accept(self._up.flush())
            final = self._final()
        except RecognizerError:
            raise
        except Exception as e:
            raise RecognizerError(self.engine_name, f"final decoding failed: {e!r}") from e
        finish_s = time.perf_counter() - t0
        self._compute_s += finish_s
        audio_s = self.audio_s
        d = final if isinstance(final, Decision) else Decision(*final)
        text = d.text.strip()
        status = d.status
        if status == "ok" and not text and self.empty_is_nomatch:
            status = "nomatch"
        return FinalResult(
            text=text,
            confidence=float(d.confidence),
            alternatives=tuple(dict.fromkeys(a for a in d.alternatives if a and a != text)),
            engine=self.engine_name,
            status=status,
            heard=d.heard,
            words=d.words,
            language=d.language,
            features=d.features,
            timings={
                "audio_s": audio_s,
                "compute_s": self._compute_s,
                "finish_s": finish_s,
                "rtf": self._compute_s / audio_s if audio_s else 0.0,
            },
        )

    def close(self) -> None:  # noqa: B027 - optional hook, most backends hold nothing
        """Give back pooled resources (decoders); safe to call more than once."""

    @abstractmethod
    def _accept(self, pcm: Pcm) -> str | None:
        """Consume audio at ``self.rate``; return a partial text when there is a new one."""

    @abstractmethod
    def _final(self) -> tuple[str, float, tuple[str, ...]] | Decision:
        """Return (text, confidence 0..1, alternatives), or a :class:`Decision`, for
        everything fed."""


class Engine(ABC):
    """A loaded model shared by all calls. ``open`` may be slow (grammar compile): pool it."""

    name: str = ""
    # ``open`` does no model work (whisper: buffers, and a grammar compile that is cached): it
    # runs on the pool's light thread, not behind the decodes holding the inference workers
    light_open: bool = False

    @abstractmethod
    def open(self, options: RecognizerOptions) -> Stream: ...

    def supports(self, mode: Mode) -> bool:
        return True

    def prewarm(self, options: RecognizerOptions, count: int = 1) -> None:  # noqa: B027 - optional
        """Build per-stream resources ahead (at flow publish / start-up), so ``open`` is cheap
        during a call. Blocking. Default: nothing to build."""
