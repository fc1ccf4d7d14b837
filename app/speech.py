"""The speech layer as a call sees it: ``say`` (TTS), ``listen`` (VAD + recogniser), speech
barge-in, and the per-turn latency ledger.

Implements ``engine.sipcall.SpeechHooks`` over the ``asr`` library. All model work goes through
one bounded :class:`asr.pool.InferencePool` sized to the cores, so a slow synthesis or
recognition never blocks the event loop or other calls; its timeouts become ``error`` results
the flow maps to its ``error``/``over_budget`` ports. Prompt text passes the sensitive-word
check before it is spoken (content security): a blocked prompt is an error, never audio.

The ledger of a caller turn: ``speech_end`` and ``recognizer_final`` are marked by the listen
driver; ``decision`` when the flow starts its answer (the next ``say``/``play``, before any
synthesis); ``first_audio`` when the media session sends that answer's first RTP packet. The
finished turn goes into the call trace, the engine-wide :class:`LatencyLedger` (percentiles,
Prometheus text) and the event bus (``latency.turn``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Any

from audio.pcm import Pcm
from core.bus import EventBus
from core.call import ListenResult, ListenSpec
from core.clock import Clock

if TYPE_CHECKING:
    from asr.bargein import BargeInConfig, BargeInEvent
    from asr.ledger import LatencyLedger, TurnLatency
    from asr.pool import InferencePool
    from asr.tts.service import TtsService
    from engine.sipcall.base import MediaCall

log = logging.getLogger("ivr.speech")

ASR_LOAD_TIMEOUT_S = 120.0  # a cold model file on a busy box
TTS_TIMEOUT_S = 10.0  # first synthesis of a long prompt; cached prompts return in ~1 ms
# Publish-time rendering is off the call path, and Kokoro's Mandarin costs ~1.1 s of CPU per
# second of speech (an 8 s prompt on a busy box: 20-40 s): let it finish and be cached.
TTS_PREWARM_TIMEOUT_S = 120.0


class SpeechService:
    def __init__(self, tts: TtsService, pool: InferencePool, clock: Clock, *,
                 vad_kind: str = "silero", vad_model_path: str | None = None,
                 default_engine: str = "whisper",
                 model_paths: dict[str, str | None] | None = None,
                 barge_in: BargeInConfig | None = None, bus: EventBus | None = None,
                 listen_options: dict[str, Any] | None = None) -> None:
        from asr.ledger import LatencyLedger  # noqa: PLC0415 - asr loads with the engine

        self.tts = tts
        self.pool = pool
        self.clock = clock
        self.vad_kind = vad_kind
        self.vad_model_path = vad_model_path
        self.default_engine = default_engine
        self.model_paths = model_paths or {}
        self.barge_in = barge_in
        self.bus = bus or EventBus()
        self.listen_options = listen_options or {}  # asr.listen.listen_config keywords
        self.ledger: LatencyLedger = LatencyLedger()

    async def prewarm(self, prompts: list[tuple[str, str]]) -> int:
        """Render (and cache) static prompts one at a time, so the first caller to hear each
        does not wait for synthesis and live calls keep the pool's other workers."""
        done = 0
        for text, language in prompts:
            try:
                await self.pool.run("tts.prewarm", TTS_PREWARM_TIMEOUT_S, self.tts.render, text,
                                    None, language)
                done += 1
            except Exception as e:  # a prompt that fails now fails again, visibly, on a call
                log.warning("prewarm of prompt %r failed: %s", text[:40], e)
        log.info("pre-rendered %d of %d static prompts", done, len(prompts))
        return done

    async def preload(self, engines: list[str]) -> int:
        """Load recognisers (once per process) before the first caller needs them: a model
        loaded during a turn costs that caller seconds of silence and the start of what they
        said. A model that fails to load fails again, visibly, on the call (error port)."""
        from asr.models import get_engine  # noqa: PLC0415

        done = 0
        for name in engines:
            try:
                await self.pool.run("asr.preload", ASR_LOAD_TIMEOUT_S, get_engine, name,
                                    self.model_paths.get(name), self.pool.workers)
                done += 1
            except Exception as e:
                log.warning("recogniser %s did not load: %s", name, e)
        log.info("loaded %d of %d recognisers: %s", done, len(engines), ", ".join(engines))
        return done

    async def synthesize(self, text: str, voice: str | None, language: str | None) -> Pcm:
        prompt = await self.pool.run("tts", TTS_TIMEOUT_S, self.tts.render, text, voice, language)
        return prompt.pcm

    async def listen(self, call: MediaCall, spec: ListenSpec,
                     ) -> tuple[ListenResult, TurnLatency | None]:
        from asr.ledger import TurnLatency  # noqa: PLC0415
        from asr.listen import listen_call  # noqa: PLC0415

        turn = TurnLatency(call.call_id, call.current_node, spec.budget_ms,
                           kind="free" if spec.mode == "free" else "grammar")
        result = await listen_call(
            call, spec, self.pool, self.clock, vad_kind=self.vad_kind,
            default_engine=self.default_engine, model_paths=self.model_paths, turn=turn,
            **self.listen_options)
        answered_turn = turn if result.status == "ok" and "speech_end" in turn.marks else None
        return result, answered_turn  # the call completes it at the answer's first packet

    def barge_in_watcher(self, call: MediaCall) -> Coroutine[Any, Any, BargeInEvent | None]:
        """Watch the caller while a prompt plays; returns when they start talking (or key)."""
        from asr.listen import watch_barge_in  # noqa: PLC0415
        from asr.vad import make_vad  # noqa: PLC0415

        return watch_barge_in(call.events(), make_vad(self.vad_kind, self.vad_model_path),
                              self.barge_in)

    def finish_turn(self, turn: TurnLatency) -> dict[str, Any]:
        self.ledger.add(turn)
        data = turn.as_dict()
        data["turn_kind"] = data.pop("kind")  # "kind" names the trace entry itself
        self.bus.publish("latency.turn", data.pop("call_id"), **data)
        return data


def tts_word_check(word_filter: Any, where: str = "tts prompt") -> Callable[[str], str]:
    """``TtsService(text_check=...)`` backed by the sensitive-word filter: masked terms are
    spoken masked, blocking terms raise :class:`~asr.tts.TtsError` before anything is
    synthesised or cached. Lives here because it joins two libraries (asr, compliance)."""
    from asr.tts import TtsError  # noqa: PLC0415 - asr loads with the engine
    from compliance.hooks import BlockedText, guard_text  # noqa: PLC0415

    def check(text: str) -> str:
        try:
            return guard_text(text, word_filter, where=where)
        except BlockedText as e:
            raise TtsError(f"tts: {e}") from e

    return check
