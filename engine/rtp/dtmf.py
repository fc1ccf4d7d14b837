"""RFC 4733 telephone-event: payload codec, a receiver that reports each digit once, a sender.

The receiver is the part that matters: a telephone-event digit arrives as many packets (a start
with M=1 that some stacks retransmit, updates every 50 ms, three identical end packets, and in
redundant mode several event blocks per packet). It is keyed by the event's start timestamp
(RFC 4733 §2.5.1.1: a new event is a new timestamp), so a digit is reported exactly once on its
first end block; if every end packet is lost, :meth:`DtmfReceiver.poll` reports it after
``end_timeout_s`` of silence. Pure: ``now`` is passed in.
"""

from __future__ import annotations

import struct
from collections import deque
from dataclasses import dataclass

EVENT_KEYS = "0123456789*#ABCD"
TELEPHONE_EVENT_BYTES = 4
DTMF_END_TIMEOUT_S = 0.5  # no packet for this long after a start: assume the end was lost
DTMF_UPDATE_INTERVAL_S = 0.050
DTMF_END_PACKETS = 3
MAX_DURATION_SAMPLES = 0xFFFF

_BLOCK = struct.Struct("!BBH")


class DtmfError(ValueError):
    """A telephone-event payload that breaks RFC 4733 §2.3."""


@dataclass(slots=True, frozen=True)
class TelephoneEvent:
    """One 4-byte event block (RFC 4733 §2.3)."""

    event: int
    end: bool
    volume: int  # 0..63, -dBm0
    duration: int  # timestamp units since the event's start

    def pack(self) -> bytes:
        if not 0 <= self.event <= 255:
            raise DtmfError(f"event {self.event} out of range 0..255")
        if not 0 <= self.volume <= 63:
            raise DtmfError(f"volume {self.volume} out of range 0..63")
        if not 0 <= self.duration <= MAX_DURATION_SAMPLES:
            raise DtmfError(f"duration {self.duration} out of range 0..65535")
        return _BLOCK.pack(self.event, (0x80 if self.end else 0) | self.volume, self.duration)

    @property
    def key(self) -> str | None:
        return EVENT_KEYS[self.event] if self.event < len(EVENT_KEYS) else None


def parse_events(payload: bytes) -> list[TelephoneEvent]:
    """All event blocks of a payload (more than one in redundant/multi-event packets)."""
    if not payload or len(payload) % TELEPHONE_EVENT_BYTES:
        raise DtmfError(f"telephone-event payload is {len(payload)} bytes, "
                        f"need a positive multiple of {TELEPHONE_EVENT_BYTES}")
    out = []
    for pos in range(0, len(payload), TELEPHONE_EVENT_BYTES):
        ev, b1, dur = _BLOCK.unpack_from(payload, pos)
        out.append(TelephoneEvent(ev, bool(b1 & 0x80), b1 & 0x3F, dur))
    return out


def serialize_events(events: list[TelephoneEvent]) -> bytes:
    return b"".join(e.pack() for e in events)


@dataclass(slots=True, frozen=True)
class DtmfDigitEvent:
    """A digit received by RFC 4733. ``ended`` is False when reported by the end timeout."""

    digit: str
    timestamp: int  # RTP timestamp of the event start
    duration: int  # samples
    volume: int
    ended: bool = True


@dataclass(slots=True)
class _Current:
    start_ts: int
    event: int
    volume: int
    duration: int
    last_seen: float


class DtmfReceiver:
    """Turns telephone-event packets into digits, each exactly once (see module docstring)."""

    def __init__(self, end_timeout_s: float = DTMF_END_TIMEOUT_S, memory: int = 32) -> None:
        self.end_timeout_s = end_timeout_s
        self._done: deque[tuple[int, int]] = deque(maxlen=memory)
        self._done_set: set[tuple[int, int]] = set()
        self._current: _Current | None = None
        self.bad_payloads = 0

    def _finish(self, start_ts: int, event: int, volume: int, duration: int,
                ended: bool) -> DtmfDigitEvent | None:
        key = (start_ts, event)
        if self._current is not None and (self._current.start_ts, self._current.event) == key:
            self._current = None
        if key in self._done_set:
            return None
        if len(self._done) == self._done.maxlen:
            self._done_set.discard(self._done[0])
        self._done.append(key)
        self._done_set.add(key)
        if event >= len(EVENT_KEYS):
            return None  # a non-DTMF event (flash, tones): consumed, not a digit
        return DtmfDigitEvent(EVENT_KEYS[event], start_ts, duration, volume, ended)

    def feed(self, payload: bytes, timestamp: int, now: float) -> list[DtmfDigitEvent]:
        """Account one telephone-event packet; returns digits completed by it (usually 0 or 1).

        A malformed payload is counted and dropped, never raised: this runs in the receive path.
        """
        try:
            blocks = parse_events(payload)
        except DtmfError:
            self.bad_payloads += 1
            return []
        out: list[DtmfDigitEvent] = []
        out.extend(self.poll(now))
        # RFC 4733 §2.5.1.5: the packet timestamp is the FIRST block's start; each later block
        # starts where the previous one's duration ends. The last block is the current event.
        start = timestamp
        for i, b in enumerate(blocks):
            key = (start & 0xFFFFFFFF, b.event)
            is_last = i == len(blocks) - 1
            if key in self._done_set:
                pass
            elif b.end or not is_last:
                # an earlier block in a multi-event packet is over even if its E bit was lost
                d = self._finish(key[0], b.event, b.volume, b.duration, b.end)
                if d is not None:
                    out.append(d)
            else:
                cur = self._current
                if cur is not None and (cur.start_ts, cur.event) != key:
                    d = self._finish(cur.start_ts, cur.event, cur.volume, cur.duration, False)
                    if d is not None:
                        out.append(d)
                    cur = None
                if cur is None:
                    self._current = _Current(key[0], b.event, b.volume, b.duration, now)
                else:
                    cur.duration = max(cur.duration, b.duration)
                    cur.last_seen = now
            start += b.duration
        return out

    def poll(self, now: float) -> list[DtmfDigitEvent]:
        """Report a digit whose end packets were all lost, once ``end_timeout_s`` has passed."""
        cur = self._current
        if cur is None or now - cur.last_seen < self.end_timeout_s:
            return []
        d = self._finish(cur.start_ts, cur.event, cur.volume, cur.duration, False)
        return [d] if d is not None else []

    @property
    def holding(self) -> bool:
        """An event has started and not ended (``poll`` has something to watch)."""
        return self._current is not None

    @property
    def in_progress(self) -> str | None:
        """The digit currently held down, if any (for barge-in on key press)."""
        cur = self._current
        if cur is None or cur.event >= len(EVENT_KEYS):
            return None
        return EVENT_KEYS[cur.event]


@dataclass(slots=True, frozen=True)
class DtmfSendStep:
    """One packet of a digit: send at ``offset_s`` after the start, all with the same timestamp."""

    offset_s: float
    payload: bytes
    marker: bool
    end: bool


def digit_packets(digit: str, duration_s: float = 0.1, volume: int = 10,
                  clock_rate: int = 8000,
                  interval_s: float = DTMF_UPDATE_INTERVAL_S) -> list[DtmfSendStep]:
    """The packet sequence for one digit (RFC 4733 §2.5.1): a marked start, an update every
    ``interval_s``, then three end packets 20 ms apart carrying the final duration. The caller
    stamps them all with the event's start timestamp and consecutive sequence numbers."""
    key = digit.upper()
    if len(key) != 1 or key not in EVENT_KEYS:
        raise DtmfError(f"digit {digit!r} is not one of {EVENT_KEYS}")
    event = EVENT_KEYS.index(key)
    total = int(round(duration_s * clock_rate))
    if not 0 < total <= MAX_DURATION_SAMPLES:
        raise DtmfError(f"duration {duration_s}s out of range for one event (max ~8.19 s)")
    step = int(round(interval_s * clock_rate))
    steps: list[DtmfSendStep] = []
    t = 0
    while t < total:
        dur = min(t + step, total)  # duration so far, counted to the end of this interval
        steps.append(DtmfSendStep(t / clock_rate, TelephoneEvent(event, False, volume, dur)
                                  .pack(), t == 0, False))
        t += step
    end_payload = TelephoneEvent(event, True, volume, total).pack()
    for i in range(DTMF_END_PACKETS):
        steps.append(DtmfSendStep(duration_s + i * 0.020, end_payload, False, True))
    return steps
