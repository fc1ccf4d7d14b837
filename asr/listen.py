"""One caller turn: frames in, a :class:`core.call.ListenResult` out. The asyncio driver.

It ties the pure parts together without blocking the loop: per frame the VAD (silero ~0.1 ms,
inline) and the :class:`Endpointer`; recogniser work goes through the :class:`InferencePool` from a
separate feeder task, so a slow recogniser delays only its own final, never endpointing, DTMF or
the wall-clock limits. A watchdog task posts clock ticks so the limits hold even when frames stop.

Frames before speech start are kept as a short pre-roll and handed to the recogniser when speech
starts (the onset VAD needs to decide is part of the first word). Outcomes: ``ok``,
``no_input``, ``dtmf``, ``hangup``, ``timeout`` (hard limit hit; text so far is still returned),
``error`` (``error`` starts with ``over_budget:`` when the recogniser missed its deadline, with
``recognizer:`` when it failed). Timings are absolute clock times plus ``*_ms`` spans.
"""

from __future__ import annotations

import asyncio
import collections
import logging
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field, replace
from typing import Any, Literal

import numpy as np

from asr.bargein import BargeInConfig, BargeInDetector, BargeInEvent
from asr.endpoint import EndpointConfig, Endpointer, EndpointEvent, EndpointKind
from asr.grammar import GrammarError, as_written, digit_string_jsgf, phrase_list
from asr.ledger import TurnLatency
from asr.models import get_engine
from asr.pool import InferencePool, PoolError
from asr.recognizer import Engine, FinalResult, RecognizerError, RecognizerOptions, Stream
from asr.textnorm import digits_from_speech
from asr.vad import Vad, make_vad
from core.call import (
    AudioFrameEvent,
    Call,
    CallEvent,
    DtmfEvent,
    HangupEvent,
    ListenResult,
    ListenSpec,
)
from core.clock import Clock
from core.tasks import TaskScope

log = logging.getLogger("ivr.asr.listen")
Status = Literal["ok", "no_input", "nomatch", "dtmf", "error", "hangup", "timeout"]
FRAME_S = 0.020


@dataclass(frozen=True, slots=True)
class ListenConfig:
    endpoint: EndpointConfig = field(default_factory=EndpointConfig)
    options: RecognizerOptions = field(default_factory=RecognizerOptions)
    preroll_ms: int = 300
    chunk_ms: int = 100  # audio handed to the recogniser per pool job
    open_timeout_s: float = 2.0
    feed_timeout_s: float = 2.0
    final_timeout_s: float = 1.5  # speech end -> recogniser final; beyond it: over_budget
    allow_dtmf: bool = True


@dataclass(slots=True)
class _Tick:
    at: float


_END = object()


async def _pump(events: AsyncIterator[CallEvent], q: asyncio.Queue[Any]) -> None:
    try:
        async for ev in events:
            q.put_nowait(ev)
    finally:
        q.put_nowait(_END)


async def _watchdog(ep: Endpointer, clock: Clock, q: asyncio.Queue[Any]) -> None:
    while ep.done is None:
        await clock.sleep_until(max(ep.next_deadline(), clock.now() + FRAME_S))
        q.put_nowait(_Tick(clock.now()))


class _Feeder:
    """Owns the stream: feeds queued chunks (merged when behind) and produces the final."""

    def __init__(
        self,
        stream: Stream,
        pool: InferencePool,
        cfg: ListenConfig,
        on_partial: Callable[[str, float], None] | None,
        clock: Clock,
    ) -> None:
        self.stream = stream
        self.pool = pool
        self.cfg = cfg
        self.on_partial = on_partial
        self.clock = clock
        self.q: asyncio.Queue[np.ndarray | None] = asyncio.Queue()
        self.lane = turn_lane(stream.engine_name, cfg.options)

    async def run(self) -> FinalResult:
        try:
            while True:
                chunk = await self.q.get()
                parts = [chunk]
                while not self.q.empty() and parts[-1] is not None:
                    parts.append(self.q.get_nowait())
                done = parts[-1] is None
                audio = [p for p in parts if p is not None]
                if audio:
                    pcm = np.concatenate(audio)
                    if self.stream.inline_feed:
                        partials = self.stream.feed(pcm)
                    else:
                        partials = await self.pool.run_in(
                            self.lane,
                            "asr.feed",
                            self.cfg.feed_timeout_s,
                            self.stream.feed,
                            pcm,
                        )
                    if self.on_partial is not None:
                        for p in partials:
                            self.on_partial(p.text, self.clock.now())
                if done:
                    return await self.pool.run_in(
                        self.lane,
                        "asr.finish",
                        self.cfg.final_timeout_s,
                        self.stream.finish,
                    )
        finally:
            self.stream.close()


def turn_lane(engine_name: str, options: RecognizerOptions) -> str:
    """The pool lane of a turn: free text on an engine is its own lane (lane limits keep a
    burst of long free-text decodes from taking every worker), menus and grammars another, so
    short menu turns keep moving while free-text decodes queue, even on the same model."""
    return engine_name if options.mode == "free" else f"{engine_name}:menu"


async def listen_turn(
    events: AsyncIterator[CallEvent],
    engine: Engine,
    vad: Vad,
    pool: InferencePool,
    clock: Clock,
    *,
    config: ListenConfig | None = None,
    turn: TurnLatency | None = None,
    on_partial: Callable[[str, float], None] | None = None,
) -> ListenResult:
    """Listen for one utterance on ``events`` (a fresh subscription to the call)."""
    cfg = config or ListenConfig()
    started = clock.now()
    timings: dict[str, float] = {"listen_start": started}
    try:
        if engine.light_open:
            stream = await pool.run_light("asr.open", cfg.open_timeout_s, engine.open,
                                          cfg.options)
        else:
            stream = await pool.run_in(
                engine.name, "asr.open", cfg.open_timeout_s, engine.open, cfg.options
            )
    except (RecognizerError, PoolError) as e:
        return _error(e, timings)
    ep = Endpointer(cfg.endpoint, started)
    preroll: collections.deque[np.ndarray] = collections.deque(maxlen=max(1, cfg.preroll_ms // 20))
    utterance: list[np.ndarray] = []
    chunk: list[np.ndarray] = []
    per_chunk = max(1, cfg.chunk_ms // 20)
    feeder = _Feeder(stream, pool, cfg, on_partial, clock)
    q: asyncio.Queue[Any] = asyncio.Queue()
    scope = TaskScope("asr.listen")
    scope.spawn(_pump(events, q), "pump")
    scope.spawn(_watchdog(ep, clock, q), "watchdog")
    feed_task: asyncio.Task[FinalResult] | None = None
    final_ev: EndpointEvent | None = None
    status: Status = "ok"
    digit: str | None = None
    # Endpointing runs on the audio timeline (20 ms per frame received), not on frame release
    # times: a loop stall that releases frames in a burst must not turn a pause between words
    # into a hangover. ``skew`` (release time - audio time of the latest frame) maps back.
    audio_t = started
    skew = 0.0
    try:
        while final_ev is None:
            item = await q.get()
            ev: EndpointEvent | None = None
            if isinstance(item, AudioFrameEvent):
                frame_start = audio_t
                audio_t += FRAME_S
                skew = item.timestamp - audio_t
                ev = ep.feed(vad.prob(item.pcm), frame_start)
                if ep.speech_start is None and ev is None:
                    preroll.append(item.pcm)
                    continue
                if ev is not None and ev.kind is EndpointKind.SPEECH_START:
                    timings["speech_start"] = (ev.speech_at or ev.at) + skew
                    chunk.extend(preroll)
                    utterance.extend(preroll)
                    preroll.clear()
                    feed_task = scope.spawn(feeder.run(), "feeder")
                    ev = None
                if ep.speech_start is not None:
                    chunk.append(item.pcm)
                    utterance.append(item.pcm)
                    if len(chunk) >= per_chunk:
                        feeder.q.put_nowait(np.concatenate(chunk))
                        chunk = []
            elif isinstance(item, _Tick):
                ev = ep.tick(item.at - skew)
            elif isinstance(item, DtmfEvent):
                if cfg.allow_dtmf:
                    status, digit = "dtmf", item.digit
                    break
            elif isinstance(item, HangupEvent) or item is _END:
                status = "hangup"
                break
            if ev is not None:
                final_ev = ev
        if final_ev is not None:
            timings["endpoint_at"] = final_ev.at + skew
            if final_ev.kind is EndpointKind.NO_INPUT:
                status = "no_input"
            elif final_ev.kind is EndpointKind.MAX_DURATION:
                status = "timeout"
        if status in ("ok", "timeout") and feed_task is not None:
            end = final_ev.speech_at + skew if final_ev and final_ev.speech_at else clock.now()
            timings["speech_end"] = end
            if turn is not None:
                turn.mark("speech_end", end)
            if chunk:
                feeder.q.put_nowait(np.concatenate(chunk))
            feeder.q.put_nowait(None)
            eta = pool.expected_wait_s(feeder.lane)
            if eta > cfg.final_timeout_s:
                # the queue cannot meet this turn's budget: say so now (filler prompt, keypad
                # fallback) rather than after the caller waited the whole budget in silence
                timings["expected_wait_ms"] = eta * 1000
                return _error(PoolError(f"recogniser queue needs ~{eta:.1f} s, budget "
                                        f"{cfg.final_timeout_s:.1f} s"), timings)
            try:
                final = await feed_task
            except (RecognizerError, PoolError) as e:
                return _error(e, timings)
            now = clock.now()
            timings["final"] = now
            timings["asr_ms"] = (now - end) * 1000
            timings.update({f"decode_{k}": v for k, v in final.timings.items()})
            if turn is not None:
                turn.mark("recognizer_final", now)
            audio = np.concatenate(utterance) if utterance else None
            if status == "ok" and final.status != "ok":
                status = "nomatch"  # speech the grammar does not cover, or no words in it
            text, alternatives = final.text, final.alternatives
            written = _phrases_as_written(cfg.options)
            if written:  # the phrase as the node wrote it, not the grammar's normalised sentence
                text = as_written(written, text)
                alternatives = tuple(as_written(written, a) for a in alternatives)
            return ListenResult(
                status,
                text,
                final.confidence,
                alternatives,
                audio=audio,
                timings=timings,
                heard=final.heard,
                language=final.language,
            )
        if status == "timeout":  # hard limit before speech ever started
            return ListenResult("timeout", timings=timings)
        return ListenResult(status, digit=digit, timings=timings)
    finally:
        if feed_task is None:
            stream.close()
        await scope.close(0.5)


def _phrases_as_written(options: RecognizerOptions) -> tuple[str, ...]:
    """The phrases a turn's result maps back to (:func:`asr.grammar.as_written`): a keyword
    turn's keywords, a grammar turn's phrases when the grammar is a phrase list (not JSGF, whose
    sentences are the grammar's own words). Why: such grammars hold their phrases normalised
    (两 -> 二, numerals read out), and the node matches its intents against the text it gets."""
    if options.mode == "keywords":
        return options.keywords
    if options.mode == "grammar" and options.grammar:
        try:
            return tuple(phrase_list(options.grammar) or ())
        except GrammarError:  # the recogniser already refused it: nothing to map
            return ()
    return ()


def _error(e: Exception, timings: dict[str, float]) -> ListenResult:
    prefix = "recognizer" if isinstance(e, RecognizerError) else "over_budget"
    log.info("listen failed: %s", e)
    return ListenResult("error", timings=timings, error=f"{prefix}: {e}")


async def watch_barge_in(
    events: AsyncIterator[CallEvent], vad: Vad, config: BargeInConfig | None = None
) -> BargeInEvent | None:
    """Consume a call's events while a prompt plays; return the barge-in (None on hangup/end).

    The caller of this (``Call.play``) cancels it when the prompt ends and stops playout when
    it returns an event; ``event.at`` minus ``event.speech_start`` is the detection part of the
    speech-start -> prompt-stop figure, the playout stop adds the rest.
    """
    det = BargeInDetector(config or BargeInConfig())
    async for ev in events:
        fired: BargeInEvent | None = None
        if isinstance(ev, AudioFrameEvent):
            fired = det.on_frame(vad.prob(ev.pcm), ev.timestamp - FRAME_S)
        elif isinstance(ev, DtmfEvent):
            fired = det.on_dtmf(ev.digit, ev.timestamp)
        elif isinstance(ev, HangupEvent):
            return None
        if fired is not None:
            return fired
    return None


def listen_config(
    spec: ListenSpec,
    *,
    grammar_hangover_ms: int = 200,
    min_speech_ms: int = 100,
    max_listen_s: float | None = None,
    final_timeout_s: float = 1.5,
    nomatch_threshold: float | None = None,
    grammar_prompt: bool = False,
) -> ListenConfig:
    """A flow node's :class:`core.call.ListenSpec` as a :class:`ListenConfig`.

    Menus (grammar/keywords) end on the shorter of the node's silence and
    ``grammar_hangover_ms``: their answers are short and a caller waits for the menu to react.
    A node ``budget_ms`` caps the recogniser's final (beyond it: the ``over_budget`` port).
    """
    hangover = spec.endpoint_silence_ms
    if spec.mode != "free":
        hangover = min(hangover, grammar_hangover_ms)
    endpoint = EndpointConfig(
        hangover_ms=hangover,
        min_speech_ms=min_speech_ms,
        no_input_timeout_s=spec.no_input_timeout_s,
        max_speech_s=spec.max_speech_s,
        max_listen_s=max_listen_s or spec.no_input_timeout_s + spec.max_speech_s,
    )
    digits = spec.mode == "digits"
    options = RecognizerOptions(
        mode="grammar" if spec.mode == "digits" else spec.mode,
        grammar=digit_string_jsgf(spec.language) if digits else spec.grammar,
        keywords=spec.keywords,
        language=spec.language,
        nomatch_threshold=nomatch_threshold,
        grammar_prompt=grammar_prompt,
    )
    final = spec.budget_ms / 1000 if spec.budget_ms else final_timeout_s
    return ListenConfig(
        endpoint=endpoint, options=options, final_timeout_s=final, allow_dtmf=spec.allow_dtmf
    )


def engine_for(spec: ListenSpec, default_engine: str = "whisper") -> str:
    """Which recogniser serves a node: its own choice, else Korean -> vosk, Mandarin or
    ``auto`` (detect zh/en) -> whisper-base, English free text -> whisper (tiny.en), English
    menus -> ``default_engine`` (whisper: its hypotheses matched against the grammar)."""
    if spec.engine:
        return spec.engine
    lang = spec.language.lower()
    if lang.startswith("ko"):
        return "vosk"
    if lang in ("auto", "cmn", "yue") or lang.startswith("zh"):
        return "whisper-base"
    return "whisper" if spec.mode == "free" else default_engine


async def listen_call(
    call: Call,
    spec: ListenSpec,
    pool: InferencePool,
    clock: Clock,
    *,
    vad_kind: str = "silero",
    default_engine: str = "whisper",
    model_paths: dict[str, str | None] | None = None,
    turn: TurnLatency | None = None,
    **config: Any,
) -> ListenResult:
    """``Call.listen`` in one call: pick and load (once) the engine, then :func:`listen_turn`
    on a fresh subscription to the call. ``config`` goes to :func:`listen_config`."""
    name = engine_for(spec, default_engine)
    path = (model_paths or {}).get(name)
    try:
        engine = await pool.run("asr.load", 60.0, get_engine, name, path, pool.workers)
    except (RecognizerError, PoolError) as e:
        return _error(e, {"listen_start": clock.now()})
    result = await listen_turn(
        call.events(),
        engine,
        make_vad(vad_kind),
        pool,
        clock,
        config=listen_config(spec, **config),
        turn=turn,
    )
    if spec.mode == "digits" and result.status == "ok":
        # the grammar's words ("one three eight", "幺三八") as the digits a collect node stores
        result = replace(result, text=digits_from_speech(result.text))
    return result
