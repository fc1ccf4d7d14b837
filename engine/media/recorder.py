"""Two-leg call recording: caller on the left channel, engine on the right.

The engine leg is appended once per pacer tick: it is exactly what was sent, in sending order.
The caller leg from RTP is taken as packets arrive (not as playout releases them) and placed by
each packet's RTP timestamp, anchored once on the engine leg's timeline. Why: the jitter
buffer must stall a tick on an underrun and drop frames when it shrinks (real-time playout),
and a loaded box does both; appending what playout released would lose the dropped audio and
shift everything after each such event, so the legs drift apart and the caller's words smear
over the engine's. Placed by timestamp, a lost packet is silence at its own place, a late one
still lands where it belongs, and nothing after it moves. A timestamp jump (new
source after a re-INVITE, a sender restart) or a gross pacer re-anchor re-anchors the caller leg
at the current tick. AudioSocket (Asterisk) audio has no timestamps and is appended as it comes.
The WAV is written in an executor when the recording stops.
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
REANCHOR_SAMPLES = 8000  # 1 s off the tick timeline: a timestamp jump, not jitter


class Recorder:
    def __init__(self, path: Path, max_seconds: float = MAX_RECORD_S) -> None:
        self.path = path
        self.max_frames = int(max_seconds * 1000 / 20)
        self._caller: list[tuple[int, Pcm]] = []  # (sample position, audio)
        self._caller_end = 0  # where appended (untimed) caller audio goes next
        self._engine: list[Pcm] = []
        self._anchor: tuple[int, int] | None = None  # (RTP timestamp, sample position)

    def caller(self, pcm: Pcm) -> None:
        """Caller audio without timestamps: appended after what came before."""
        self._place(self._caller_end, pcm)

    def caller_rtp(self, timestamp: int, pcm: Pcm) -> None:
        """Caller audio from an RTP packet (timestamp in 8 kHz units), placed by timestamp."""
        here = len(self._engine) * FRAME_SAMPLES  # this tick's place on the engine timeline
        if self._anchor is None:
            self._anchor = (timestamp, here)
        ts0, pos0 = self._anchor
        delta = (timestamp - ts0) & 0xFFFFFFFF
        if delta >= 1 << 31:
            delta -= 1 << 32
        pos = pos0 + delta
        if abs(pos - here) > REANCHOR_SAMPLES:
            self._anchor = (timestamp, here)
            pos = here
        self._place(pos, pcm)

    def _place(self, pos: int, pcm: Pcm) -> None:
        if pos < 0 or len(self._caller) >= self.max_frames:
            return
        self._caller.append((pos, pcm))
        self._caller_end = max(self._caller_end, pos + len(pcm))

    def engine(self, pcm: Pcm) -> None:
        if len(self._engine) < self.max_frames:
            self._engine.append(pcm)

    @property
    def seconds(self) -> float:
        return max(self._caller_end, len(self._engine) * FRAME_SAMPLES) / 8000

    def legs(self) -> tuple[Pcm, Pcm]:
        limit = self.max_frames * FRAME_SAMPLES
        n = min(max(self._caller_end, len(self._engine) * FRAME_SAMPLES), limit)
        left = np.zeros(n, np.int16)
        right = np.zeros(n, np.int16)
        for pos, pcm in self._caller:  # later audio for the same place wins (a resend)
            if pos < n:
                left[pos: pos + len(pcm)] = pcm[: n - pos]
        if self._engine:
            e = np.concatenate(self._engine)[:n]
            right[: len(e)] = e
        return left, right

    def save_sync(self) -> Path:
        """Assemble the legs and write the WAV (blocking: numpy work and file I/O)."""
        left, right = self.legs()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        write_stereo_wav(self.path, left, right)
        return self.path

    async def save(self) -> Path:
        """:meth:`save_sync` off the event loop: a hundred calls ending at once must not
        stall the media of the others while their recordings are assembled and written."""
        return await asyncio.get_running_loop().run_in_executor(None, self.save_sync)


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
