"""The caller's side of a call as flows and the speech layer consume it: ``events()``.

Each ``events()`` is a fresh subscription to the media session (digits never dropped, audio
bounded). While a prompt that speech may interrupt plays, the frames the barge-in watcher reads
are kept (the last ~500 ms); when the caller does barge in, the next subscription starts with
them, so the recogniser hears the onset the detector needed and the first word is not cut.
"""

from __future__ import annotations

from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from core.call import AudioFrameEvent, CallEvent, CallHungUp, HangupEvent
from engine.media.subscription import MediaFeed

RECENT_FRAMES = 25  # 500 ms of caller audio replayed to the listener after a barge-in


class CallerAudio:
    def __init__(self, media: MediaFeed, race: Callable[[Awaitable[Any]], Awaitable[Any]],
                 now: Callable[[], float]) -> None:
        self._media = media
        self._race = race
        self._now = now
        self._recent: deque[AudioFrameEvent] | None = None  # frames read while a prompt plays
        self._replay: list[CallEvent] = []  # handed to the next events() after a barge-in

    def keep_recent(self) -> None:
        """A speech-interruptible prompt starts: remember what the watcher hears."""
        self._recent = deque(maxlen=RECENT_FRAMES)

    def forget_recent(self) -> None:
        self._recent = None

    def replay_recent(self) -> None:
        """The caller barged in: the next subscription starts with the onset."""
        self._replay = list(self._recent or ())

    async def events(self) -> AsyncIterator[CallEvent]:
        sub = self._media.subscribe(audio=True)
        replay, self._replay = self._replay, []
        try:
            for ev in replay:
                yield ev
            while True:
                try:
                    ev = await self._race(sub.get())
                except CallHungUp as e:
                    yield HangupEvent(e.cause, e.side, self._now())  # type: ignore[arg-type]
                    return
                if self._recent is not None and isinstance(ev, AudioFrameEvent):
                    self._recent.append(ev)
                yield ev
        finally:
            self._media.unsubscribe(sub)
