"""Adaptive jitter buffer: packets in at arrival time, one frame out per 20 ms playout tick.

Why this shape: the consumer (the pacing clock's receive side) calls :meth:`JitterBuffer.pop`
exactly once per tick, so playout time *is* the tick, and the buffer's delay is simply how many
frames it holds ahead of the play cursor. That makes adaptation local and cheap:

* grow: when the next frame has not arrived, ``pop`` stalls (returns ``None``; the decoder emits
  silence/PLC) instead of declaring it lost, which adds one frame of delay;
* floor: a stall for a frame that then arrives mid-talkspurt, or a frame arriving after it was
  declared lost, raises a delay floor by one frame (decaying after 10 calm seconds): rare
  spikes barely move the smoothed jitter estimate, but each one is proof the delay was short;
* shrink: when the buffer has held more than ``target + 1`` frames for ``SHRINK_INTERVAL``
  ticks in a row, one frame is dropped (and the count starts again);
* loss: a missing sequence number is declared lost (a ``Frame`` with ``missing=True``) only once
  more than ``target + 1`` later frames are buffered, so a merely reordered packet gets its turn;
* re-sync: an SSRC change, or two consecutive packets far (> 1000) from the expected sequence
  (a single stray one is dropped), resets the buffer; a timestamp jump that the
  arrival times do not explain (the sender restarted its clock) keeps the frames (playout follows
  sequence numbers) and restarts the jitter estimate. Both count in ``stats.resyncs``.

The target depth follows the RFC 3550 A.8 interarrival jitter estimate: ``3·J`` rounded up to
whole frames, clamped to 20..200 ms. Sequence numbers are extended to 64-bit so wraparound at
65535 is invisible. The packet duration (20 ms by default) is learnt from consecutive packets'
timestamps, so depth and target are right for 30 ms packets too (the consumer then pops as
many frames as it needs to fill its 20 ms output). Pure: no clock is read; ``arrival`` and
``now`` are passed in (seconds).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from engine.rtp.packet import RtpPacket

FRAME_S = 0.020
MIN_DELAY_S = 0.020
MAX_DELAY_S = 0.200
MAX_SEQ_JUMP = 1000  # beyond this (either way) the stream restarted
MAX_TS_JUMP_S = 1.0  # arrival-vs-timestamp disagreement beyond this means a timestamp jump
SHRINK_INTERVAL = 10  # ticks between two shrink drops
FLOOR_DECAY_TICKS = 500  # 10 s without a late stall lowers the delay floor by one frame
PLAYED_MEMORY = 64  # how far back a re-sent packet is still recognised as a duplicate


@dataclass(slots=True)
class Frame:
    """One playout slot. ``missing`` frames carry no payload: emit silence or conceal."""

    sequence: int
    timestamp: int
    payload_type: int
    payload: bytes
    marker: bool = False
    missing: bool = False


@dataclass(slots=True)
class JitterStats:
    received: int = 0
    duplicates: int = 0
    late: int = 0
    lost: int = 0
    reordered: int = 0
    resyncs: int = 0
    dropped: int = 0  # discarded to shrink delay or on overflow
    underruns: int = 0  # ticks where the next frame had not arrived yet

    def as_dict(self) -> dict[str, int]:
        return {k: getattr(self, k) for k in self.__slots__}


@dataclass(slots=True)
class JitterBuffer:
    """See the module docstring. ``clock_rate`` is the RTP clock (8000 for G.711)."""

    clock_rate: int = 8000
    frame_s: float = FRAME_S
    min_delay_s: float = MIN_DELAY_S
    max_delay_s: float = MAX_DELAY_S
    stats: JitterStats = field(default_factory=JitterStats)
    ssrc: int | None = None
    jitter_s: float = 0.0
    _buf: dict[int, RtpPacket] = field(default_factory=dict)
    _next: int = 0  # extended sequence of the next frame to play
    _highest: int = -1  # highest extended sequence received
    _start_at: float = 0.0  # playout starts once the first frame has waited the target delay
    _playing: bool = False
    _last_transit: float | None = None
    _since_shrink: int = 0
    _frame_samples: int = 160
    _highest_ts: int = 0  # timestamp of the highest audio packet
    _audio_highest: int = -1  # extended sequence of the highest audio packet
    _played: set[int] = field(default_factory=set)  # last PLAYED_MEMORY sequences, for dups
    _stray: RtpPacket | None = None  # a packet far from the stream, kept until the next one
    _floor: int = 0  # frames of delay learnt from late stalls (decays when calm)
    _calm: int = 0  # ticks since the last late stall
    _stalled: bool = False  # the last tick stalled on an empty buffer

    # --- sizing -------------------------------------------------------------------------
    @property
    def target_frames(self) -> int:
        want = max(self.min_delay_s, min(self.max_delay_s, 3.0 * self.jitter_s))
        from_jitter = max(1, math.ceil(want / self.frame_s - 1e-9))
        return max(from_jitter, min(self._floor, self.max_frames - 2))

    @property
    def max_frames(self) -> int:
        return max(1, math.ceil(self.max_delay_s / self.frame_s)) + 2

    @property
    def depth(self) -> int:
        """Frames buffered from the play cursor to the highest received (gaps included)."""
        return 0 if not self._buf else self._highest - self._next + 1

    # --- input --------------------------------------------------------------------------
    def _extend(self, seq: int) -> int:
        if self._highest < 0:
            return seq
        delta = ((seq - self._highest + 0x8000) & 0xFFFF) - 0x8000
        return self._highest + delta

    def _resync(self, pkt: RtpPacket, arrival: float, counted: bool = True) -> None:
        if counted:
            self.stats.resyncs += 1
        self._buf.clear()
        self._played.clear()
        self.ssrc = pkt.ssrc
        self._highest = pkt.sequence
        self._audio_highest = pkt.sequence
        self._highest_ts = pkt.timestamp
        self._next = pkt.sequence
        self._playing = False
        self._start_at = arrival + self.target_frames * self.frame_s
        self._last_transit = None
        self._since_shrink = 0

    def put(self, pkt: RtpPacket, arrival: float, *, audio: bool = True) -> None:
        """Accept one received packet (any payload type of the stream, in any order).

        ``audio=False`` for a packet that only holds its place in the sequence (an RFC 4733
        event shares the audio's sequence numbers but not its timestamps): it plays as its own
        slot instead of a gap counted as lost, and stays out of the jitter estimate and the
        packet-duration learning."""
        self.stats.received += 1
        if self.ssrc is None:
            self._resync(pkt, arrival, counted=False)
        elif pkt.ssrc != self.ssrc:
            self._resync(pkt, arrival)
        ext = self._extend(pkt.sequence)
        if abs(ext - self._highest) > MAX_SEQ_JUMP:
            # RFC 3550 A.1: one stray packet far away is dropped; two in sequence mean the
            # source restarted its sequence numbers, so restart from the first of them
            stray = self._stray
            if stray is None or pkt.sequence != (stray.sequence + 1) & 0xFFFF:
                self._stray = pkt
                self.stats.late += 1
                return
            self._resync(stray, arrival)
            self._buf[stray.sequence] = stray
            self._highest_ts = stray.timestamp
            ext = self._extend(pkt.sequence)
        self._stray = None
        transit = arrival - pkt.timestamp / self.clock_rate
        if audio and self._last_transit is not None and ext >= self._next:
            d = transit - self._last_transit
            # 32-bit timestamp wrap: the transit difference jumps by 2^32/rate seconds
            wrap_s = (1 << 32) / self.clock_rate
            if d > wrap_s / 2:
                d -= wrap_s
            elif d < -wrap_s / 2:
                d += wrap_s
            if abs(d) > MAX_TS_JUMP_S:
                # the sender restarted its timestamps but not its sequence: playout is driven by
                # sequence, so keep the buffered frames and only restart the jitter estimate
                self.stats.resyncs += 1
                self._last_transit = None
            else:
                self.jitter_s += (abs(d) - self.jitter_s) / 16.0
        if ext < self._next and not self._playing and self._next - ext <= self.max_frames:
            self._next = ext  # reordered before playout started: it still plays first
        if ext < self._next:
            if ext in self._played:
                self.stats.duplicates += 1
            else:
                self.stats.late += 1
                if self._next - ext <= self.max_frames:  # declared lost, then it came: wait longer
                    self._raise_floor()
            return
        if ext in self._buf:
            self.stats.duplicates += 1
            return
        if ext < self._highest:
            self.stats.reordered += 1
        else:
            if audio and ext == self._audio_highest + 1:  # learn the ptime from neighbours
                samples = (pkt.timestamp - self._highest_ts) & 0xFFFFFFFF
                if 0 < samples <= self.clock_rate // 10 and samples != self._frame_samples:
                    self._frame_samples = samples
                    self.frame_s = samples / self.clock_rate
            self._highest = ext
            if audio:
                self._audio_highest = ext
                self._highest_ts = pkt.timestamp
        if audio:
            self._last_transit = transit  # A.8: consecutive packets in arrival order
        self._buf[ext] = pkt
        if self.depth > self.max_frames:  # overflow: skip the oldest to the target depth
            keep_from = self._highest - self.target_frames + 1
            for e in range(self._next, keep_from):
                if self._buf.pop(e, None) is not None:
                    self.stats.dropped += 1
                else:
                    self.stats.lost += 1  # never arrived and now never will be played
            self._next = keep_from

    # --- output -------------------------------------------------------------------------
    def pop(self, now: float) -> Frame | None:
        """The frame for this playout tick, a ``missing`` frame for a lost one, or ``None``.

        ``None`` means nothing is due (not started, silence, or the next frame is late and we
        stall one tick to wait for it); the caller plays silence for the tick either way.
        """
        if not self._playing:
            if not self._buf or now < self._start_at:
                return None
            self._playing = True
        p = self._buf.pop(self._next, None)
        if p is None:
            if not self._buf:
                self.stats.underruns += 1
                self._stalled = True
                return None
            if self.depth <= self.target_frames + 1:
                self.stats.underruns += 1  # maybe only reordered: wait one more tick for it
                self._stalled = True
                return None
            seq = self._next & 0xFFFF
            self._next += 1
            self.stats.lost += 1
            return Frame(seq, 0, -1, b"", missing=True)
        self._mark_played(self._next)
        self._next += 1
        self._learn_floor(p)
        # shrink only after the buffer held too much for SHRINK_INTERVAL ticks in a row
        self._since_shrink = self._since_shrink + 1 if self.depth > self.target_frames + 1 else 0
        if self._since_shrink >= SHRINK_INTERVAL and self._next in self._buf:
            # too much delay for the measured jitter: drop this frame, play the next one
            self._since_shrink = 0
            self.stats.dropped += 1
            p = self._buf.pop(self._next)
            self._mark_played(self._next)
            self._next += 1
        return Frame(p.sequence, p.timestamp, p.payload_type, p.payload, p.marker)

    def _raise_floor(self) -> None:
        self._floor = min(self._floor + 1, self.max_frames - 2)
        self._calm = 0

    def _learn_floor(self, p: RtpPacket) -> None:
        """A stall for a frame that then turned up mid-talkspurt (no marker: not the start of
        speech after DTX silence) means the delay was too small for this path's spikes: keep
        one more frame of delay as a floor, so the next spike is absorbed instead of stalling
        and then being shrunk away again. The floor decays after FLOOR_DECAY_TICKS calm ticks."""
        if self._stalled and not p.marker:
            self._raise_floor()
        else:
            self._calm += 1
            if self._floor and self._calm >= FLOOR_DECAY_TICKS:
                self._floor -= 1
                self._calm = 0
        self._stalled = False

    def _mark_played(self, ext: int) -> None:
        self._played.add(ext)
        self._played.discard(ext - PLAYED_MEMORY)
