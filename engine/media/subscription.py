"""One consumer's feed of a call's caller events (audio frames and digits).

Control overtakes audio and is never dropped: a consumer that falls seconds behind (a recogniser
under load, a slow bridge) still gets every digit, in order, before the audio it is late on.
Audio is bounded and loses its oldest frame when the consumer falls behind, so a stalled
consumer never grows memory or blocks the media tick that feeds it.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from typing import Protocol

from core.call import AudioFrameEvent, CallEvent
from engine.media.playout import Playout

log = logging.getLogger("ivr.media")

MAX_AUDIO_FRAMES = 500  # 10 s of 20 ms frames
# Digits arrive at most a few per second from a person; the bound only stops a flood of forged
# telephone-events from growing memory without limit.
MAX_CONTROL_EVENTS = 4096


class MediaSubscription:
    def __init__(self, *, audio: bool = True, max_audio_frames: int = MAX_AUDIO_FRAMES) -> None:
        self.wants_audio = audio
        self._audio: deque[AudioFrameEvent] = deque(maxlen=max_audio_frames)
        self._control: deque[CallEvent] = deque()
        self._wake = asyncio.Event()
        self.dropped_audio = 0
        self.dropped_control = 0

    def offer(self, event: CallEvent) -> None:
        """Called from the media tick or a socket callback: never blocks, never raises."""
        if isinstance(event, AudioFrameEvent):
            if not self.wants_audio:
                return
            if len(self._audio) == self._audio.maxlen:
                self.dropped_audio += 1  # the deque drops the oldest frame itself
            self._audio.append(event)
        else:
            if len(self._control) >= MAX_CONTROL_EVENTS:
                self.dropped_control += 1
                if self.dropped_control == 1:
                    log.warning("control events arriving faster than consumed; dropping")
                return
            self._control.append(event)
        self._wake.set()

    def get_nowait(self) -> CallEvent | None:
        if self._control:
            return self._control.popleft()
        if self._audio:
            return self._audio.popleft()
        return None

    async def get(self) -> CallEvent:
        while True:
            event = self.get_nowait()
            if event is not None:
                return event
            self._wake.clear()
            await self._wake.wait()

    def __len__(self) -> int:
        return len(self._control) + len(self._audio)


class Subscribers:
    """The consumers of one call's caller events (a media session keeps a list of them)."""

    _subscribers: list[MediaSubscription]

    def subscribe(self, audio: bool = True) -> MediaSubscription:
        """A feed of caller events: digits always, audio frames when ``audio``."""
        sub = MediaSubscription(audio=audio)
        self._subscribers.append(sub)
        self._subscribers_changed()
        return sub

    def unsubscribe(self, sub: MediaSubscription) -> None:
        self._subscribers = [s for s in self._subscribers if s is not sub]
        self._subscribers_changed()

    def _subscribers_changed(self) -> None:
        """A consumer came or went (a session caches what follows from that)."""

    def _publish(self, event: CallEvent) -> None:
        for sub in self._subscribers:
            sub.offer(event)


class MediaFeed(Protocol):
    """A call's media as the backend-neutral call parts use it (prompts, the caller's feed,
    message recording): an RTP session (``engine.media.session``) or an AudioSocket stream
    (``engine.ami.media``)."""

    playout: Playout

    def subscribe(self, audio: bool = True) -> MediaSubscription: ...

    def unsubscribe(self, sub: MediaSubscription) -> None: ...
