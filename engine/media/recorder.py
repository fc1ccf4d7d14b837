"""Two-leg call recording: caller on the left channel, engine on the right.

Both legs are appended once per pacer tick, so they stay sample-aligned whatever the network
did (lost caller packets are silence in the left channel, at the right time). The WAV is
written in an executor when the recording stops.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import numpy as np

from audio.pcm import FRAME_SAMPLES, Pcm
from audio.wavio import write_stereo_wav

log = logging.getLogger("ivr.media")

MAX_RECORD_S = 4 * 3600


class Recorder:
    def __init__(self, path: Path, max_seconds: float = MAX_RECORD_S) -> None:
        self.path = path
        self.max_frames = int(max_seconds * 1000 / 20)
        self._caller: list[Pcm] = []
        self._engine: list[Pcm] = []

    def caller(self, pcm: Pcm) -> None:
        if len(self._caller) < self.max_frames:
            self._caller.append(pcm)

    def engine(self, pcm: Pcm) -> None:
        if len(self._engine) < self.max_frames:
            self._engine.append(pcm)

    @property
    def seconds(self) -> float:
        return max(len(self._caller), len(self._engine)) * 0.02

    def caller_pcm(self) -> Pcm:
        return np.concatenate(self._caller) if self._caller else np.zeros(0, np.int16)

    def legs(self) -> tuple[Pcm, Pcm]:
        n = max(len(self._caller), len(self._engine))
        left = np.zeros(n * FRAME_SAMPLES, np.int16)
        right = np.zeros(n * FRAME_SAMPLES, np.int16)
        if self._caller:
            c = np.concatenate(self._caller)
            left[: len(c)] = c
        if self._engine:
            e = np.concatenate(self._engine)
            right[: len(e)] = e
        return left, right

    async def save(self) -> Path:
        left, right = self.legs()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        await asyncio.get_running_loop().run_in_executor(
            None, write_stereo_wav, self.path, left, right)
        return self.path


async def save_recording(recorder: Recorder | None, call_id: str) -> str | None:
    """The finished call's recording written out (its path), or None: none was made, or the
    disk refused it (logged; the call record is written regardless)."""
    if recorder is None:
        return None
    try:
        return str(await recorder.save())
    except OSError as e:
        log.warning("call %s: recording not saved: %s", call_id, e)
        return None
