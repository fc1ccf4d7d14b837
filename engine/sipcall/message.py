"""Recording a message from the caller (voicemail, a spoken answer to keep): mono WAV.

Stops at the maximum length, after trailing silence, on a key, or when the caller hangs up (the
recording is kept and the hang-up then reaches the flow). The file is written off the event loop.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import numpy as np

from audio.pcm import FRAME_MS, SAMPLE_RATE_HZ
from audio.wavio import write_wav
from core.call import AudioFrameEvent, CallHungUp, DtmfEvent, RecordResult
from engine.media.subscription import MediaFeed

SILENCE_RMS = 300.0  # int16 RMS under which a recorded frame counts as silence


async def record_message(*, media: MediaFeed, path: Path, max_seconds: float,
                         silence_stop_s: float | None,
                         race: Callable[[Awaitable[Any]], Awaitable[Any]]) -> RecordResult:
    sub = media.subscribe(audio=True)
    frames: list[Any] = []
    reason = "max_length"
    silent = 0
    frame_s = FRAME_MS / 1000
    silence_frames = int((silence_stop_s or 0) / frame_s)
    max_frames = int(max_seconds / frame_s)
    try:
        while len(frames) < max_frames:
            try:
                ev = await race(sub.get())
            except CallHungUp:
                reason = "hangup"
                break
            if isinstance(ev, DtmfEvent):
                reason = "dtmf"
                break
            if not isinstance(ev, AudioFrameEvent):
                continue
            frames.append(ev.pcm)
            rms = float(np.sqrt(np.mean(ev.pcm.astype(np.float32) ** 2)))
            silent = silent + 1 if rms < SILENCE_RMS else 0
            if silence_frames and silent >= silence_frames and len(frames) > silent:
                reason = "silence"
                frames = frames[: len(frames) - silent]
                break
    finally:
        media.unsubscribe(sub)
    pcm = np.concatenate(frames) if frames else np.zeros(0, np.int16)
    path.parent.mkdir(parents=True, exist_ok=True)
    await asyncio.get_running_loop().run_in_executor(None, write_wav, path, pcm)
    return RecordResult(path, len(pcm) / SAMPLE_RATE_HZ, reason)  # type: ignore[arg-type]
