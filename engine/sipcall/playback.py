"""Playing prompts on a call, and what may interrupt them (barge-in).

A prompt is queued on the media session's playout and the flow awaits its end. Keys interrupt
it when the prompt allows DTMF barge-in; a key pressed before the prompt starts (type-ahead)
skips it altogether. Speech interrupts it when it allows speech barge-in: a watcher from the
speech layer listens while it plays, and when the caller starts talking the prompt stops within
one frame and the onset is kept for the next ``listen`` (see :mod:`engine.sipcall.caller_audio`).
When the prompt answers a caller turn, its first RTP packet closes that turn's latency ledger.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, Protocol

from core.call import BargeIn, CallHungUp, CallTrace, PlayResult
from core.tasks import spawn
from engine.digits import DigitBuffer
from engine.media.playout import PlayItem
from engine.media.subscription import MediaFeed
from engine.sipcall.caller_audio import CallerAudio
from engine.sipcall.turns import Turn, TurnTracker


class BargeInWatcher(Protocol):
    def __call__(self) -> Coroutine[Any, Any, Any]:
        """Returns when the caller starts talking (an event with ``cause``, ``detect_ms``,
        ``speech_start``), or None."""
        ...


class PromptPlayer:
    def __init__(self, *, call_id: str, media: MediaFeed, digits: DigitBuffer,
                 trace: CallTrace, audio: CallerAudio, turns: TurnTracker,
                 now: Callable[[], float],
                 race: Callable[[Awaitable[Any]], Awaitable[Any]],
                 watch_speech: BargeInWatcher | None) -> None:
        self.call_id = call_id
        self.media = media
        self.digits = digits
        self.trace = trace
        self.audio = audio
        self.turns = turns
        self._now = now
        self._race = race
        self._watch_speech = watch_speech
        self._barge: BargeIn = BargeIn.NONE

    def on_digit(self) -> None:
        """A key was pressed: stop the prompt playing now if it lets keys interrupt it."""
        current = self.media.playout.current
        if current is not None and BargeIn.DTMF in self._barge and not current.done.done():
            self.media.playout.stop(current, "dtmf")

    async def play(self, pcm: Any, label: str, barge_in: BargeIn,
                   turn: Turn | None = None) -> PlayResult:
        if BargeIn.DTMF in barge_in and self.digits.pending():
            digit = self.digits.history[-self.digits.pending()]
            self.trace.add("play.skipped", prompt=label, digit=digit)
            return PlayResult(False, "dtmf", digit, 0)  # type-ahead: skip the prompt
        self.trace.add("play.start", prompt=label, ms=len(pcm) // 8)
        item = self.media.playout.enqueue(pcm, label)
        self._barge = barge_in
        watcher = None
        if BargeIn.SPEECH in barge_in and self._watch_speech is not None:
            self.audio.keep_recent()
            watcher = spawn(self._stop_on_speech(item, self._watch_speech),
                            f"bargein-{self.call_id}")
        try:
            reason = await self._race(asyncio.shield(item.done))
        except CallHungUp:
            if not item.done.done():
                item.done.cancel()
            raise
        finally:
            self._barge = BargeIn.NONE
            if watcher is not None:
                watcher.cancel()
                self.audio.forget_recent()
            if turn is not None:
                self.turns.finish(turn, item.first_sent_at)
        self.trace.add("play.end", prompt=label, reason=reason, played_ms=item.played_ms)
        if reason == "completed":
            return PlayResult(True, None, None, item.played_ms)
        barged = self.digits.history[-1] if reason == "dtmf" and self.digits.history else None
        return PlayResult(False, reason, barged, item.played_ms)

    async def _stop_on_speech(self, item: PlayItem, watch: BargeInWatcher) -> None:
        """Stop ``item`` when the caller starts talking over it (one barge-in event)."""
        event = await watch()
        if event is None or event.cause == "dtmf" or item.done.done():
            return  # keys barge in through on_digit, and only when the prompt allows it
        self.media.playout.stop(item, "speech")
        self.audio.replay_recent()
        now = self._now()
        stop_ms = (None if event.speech_start is None
                   else round((now - event.speech_start) * 1000, 1))
        self.trace.add("bargein", cause=event.cause, detect_ms=event.detect_ms,
                       speech_start_to_stop_ms=stop_ms)
