"""The two-leg recorder: the caller leg is placed by RTP timestamp, so playout glitches (a
stalled tick, a frame the jitter buffer dropped) never shift the audio that follows."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from audio.pcm import FRAME_SAMPLES
from engine.media.recorder import Recorder


def frame(value: int) -> np.ndarray:
    return np.full(FRAME_SAMPLES, value, np.int16)


def test_a_dropped_frame_is_silence_in_place_and_nothing_after_it_moves(tmp_path: Path) -> None:
    rec = Recorder(tmp_path / "r.wav")
    ts0 = 4_000_000
    for i in range(10):
        if i != 4:  # frame 4 was dropped by the jitter buffer
            rec.caller_rtp(ts0 + i * FRAME_SAMPLES, frame(i + 1))
        if i == 6:  # an underrun: playout stalled one tick (an extra engine frame)
            rec.engine(frame(0))
        rec.engine(frame(0))
    left, right = rec.legs()
    blocks = left[: 10 * FRAME_SAMPLES].reshape(10, FRAME_SAMPLES)[:, 0]
    assert blocks.tolist() == [1, 2, 3, 4, 0, 6, 7, 8, 9, 10]
    assert len(left) == len(right) == 11 * FRAME_SAMPLES


def test_anchored_at_the_tick_the_first_packet_played(tmp_path: Path) -> None:
    rec = Recorder(tmp_path / "r.wav")
    for _ in range(3):  # the engine spoke for three ticks before the caller's first packet
        rec.engine(frame(5))
    rec.caller_rtp(77, frame(9))
    left, right = rec.legs()
    assert left[: 3 * FRAME_SAMPLES].max() == 0 and left[3 * FRAME_SAMPLES] == 9
    assert right[0] == 5


def test_timestamp_wrap_and_jump(tmp_path: Path) -> None:
    rec = Recorder(tmp_path / "r.wav")
    rec.caller_rtp(0xFFFFFF60, frame(1))  # 160 before the 32-bit wrap
    rec.engine(frame(0))
    rec.caller_rtp(0, frame(2))  # wrapped: the very next frame
    rec.engine(frame(0))
    rec.caller_rtp(123_456_789, frame(3))  # a new source: re-anchored at the current tick
    rec.engine(frame(0))
    left, _ = rec.legs()
    assert left.reshape(-1, FRAME_SAMPLES)[:, 0].tolist() == [1, 2, 3]


def test_untimed_audio_is_appended_and_the_length_is_capped(tmp_path: Path) -> None:
    rec = Recorder(tmp_path / "r.wav", max_seconds=0.1)  # five frames
    for i in range(8):
        rec.caller(frame(i + 1))
    left, right = rec.legs()
    assert left.reshape(-1, FRAME_SAMPLES)[:, 0].tolist() == [1, 2, 3, 4, 5]
    assert right.max() == 0
