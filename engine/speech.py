"""The speech layer as a call sees it: ``say`` (TTS) and ``listen`` (VAD + recogniser).

Implements ``engine.sipcall.SpeechHooks`` over the ``asr`` library. All model work goes through
one bounded :class:`asr.pool.InferencePool` sized to the cores, so a slow synthesis or
recognition never blocks the event loop or other calls; its timeouts become ``error`` results
the flow maps to its ``error``/``over_budget`` ports. Prompt text passes the sensitive-word
check before it is spoken (content security): a blocked prompt is an error, never audio.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from engine.call import ListenResult, ListenSpec, Pcm
from engine.clock import Clock

if TYPE_CHECKING:
    from asr.pool import InferencePool
    from asr.tts.service import TtsService
    from engine.sipcall import SipCall

log = logging.getLogger("ivr.speech")

TTS_TIMEOUT_S = 10.0  # first synthesis of a long prompt; cached prompts return in ~1 ms


class SpeechService:
    def __init__(self, tts: TtsService, pool: InferencePool, clock: Clock,
                 listen_fn: Callable[[SipCall, ListenSpec], Any] | None = None) -> None:
        self.tts = tts
        self.pool = pool
        self.clock = clock
        self._listen = listen_fn

    async def synthesize(self, text: str, voice: str | None, language: str | None) -> Pcm:
        prompt = await self.pool.run("tts", TTS_TIMEOUT_S, self.tts.render, text, voice, language)
        return prompt.pcm

    async def listen(self, call: SipCall, spec: ListenSpec) -> ListenResult:
        if self._listen is None:
            return ListenResult("error", error="no speech recogniser configured")
        result: ListenResult = await self._listen(call, spec)
        return result
