"""What the engine sends: a queue of PCM items consumed one 20 ms frame per pacer tick.

Each item is 8 kHz int16 PCM with a future that resolves when the item has been played out or
was stopped (barge-in, hang-up). Stopping is immediate: the next tick already sends silence,
which is how barge-in stays inside one frame of the decision.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from audio.pcm import FRAME_SAMPLES, Pcm


@dataclass(eq=False)
class PlayItem:
    pcm: Pcm
    done: asyncio.Future[str]  # "completed" | reason it stopped ("dtmf", "speech", "hangup")
    pos: int = 0
    label: str = ""
    encoded: dict[int, bytes] = field(default_factory=dict)  # payload type -> whole prompt
    live: deque[Pcm] | None = None  # a stream fed while it plays (a bridged leg's audio)
    first_sent_at: float | None = None  # clock time its first frame went out (latency ledger)

    @property
    def played_ms(self) -> int:
        return self.pos // 8


class Playout:
    """Items play back to back; ``next_frame`` is called by the pacer tick, nothing else."""

    def __init__(self) -> None:
        self._items: deque[PlayItem] = deque()
        self.frames_sent = 0
        self.on_enqueue: Callable[[], None] | None = None  # the session wakes from quiet mode
        # called before an item is stopped: the session takes back a prompt the pacer plays
        # natively, so the stop holds from the next tick and ``pos`` says what was sent
        self.on_stop: Callable[[], None] | None = None

    def enqueue(self, pcm: Pcm, label: str = "") -> PlayItem:
        fut: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        item = PlayItem(np.ascontiguousarray(pcm, dtype=np.int16), fut, label=label)
        self._items.append(item)
        if self.on_enqueue is not None:
            self.on_enqueue()
        return item

    def enqueue_live(self, label: str = "live") -> PlayItem:
        """An item fed frame by frame with ``item.live.append(pcm)``; ends when stopped."""
        fut: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        item = PlayItem(np.zeros(0, np.int16), fut, label=label, live=deque(maxlen=50))
        self._items.append(item)
        if self.on_enqueue is not None:
            self.on_enqueue()
        return item

    @property
    def busy(self) -> bool:
        return bool(self._items)

    @property
    def current(self) -> PlayItem | None:
        return self._items[0] if self._items else None

    def next_frame(self) -> tuple[PlayItem, int] | None:
        """(item, start sample) of the next frame to send, or None for silence.

        For a live item the start is -1 and ``item.pcm`` holds just this frame.
        """
        while self._items:
            item = self._items[0]
            if item.done.done():  # stopped from outside
                self._items.popleft()
                continue
            if item.live is not None:
                if not item.live:
                    return None  # nothing arrived for this tick: silence, keep the item
                item.pcm = item.live.popleft()
                item.pos += FRAME_SAMPLES
                self.frames_sent += 1
                return item, -1
            if item.pos >= len(item.pcm):
                self._items.popleft()
                item.done.set_result("completed")
                continue
            start = item.pos
            item.pos += FRAME_SAMPLES
            self.frames_sent += 1
            return item, start
        return None

    def stop(self, item: PlayItem, reason: str) -> None:
        """Stop ``item`` (barge-in): from the next tick it sends no more frames."""
        if self.on_stop is not None:
            self.on_stop()
        if not item.done.done():
            item.done.set_result(reason)

    def stop_all(self, reason: str) -> None:
        if self.on_stop is not None and self._items:
            self.on_stop()
        while self._items:
            item = self._items.popleft()
            if not item.done.done():
                item.done.set_result(reason)
