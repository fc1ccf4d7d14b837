"""One pacing clock for every call's outgoing media.

Why one loop: 1,000 calls each running ``while True: send(); await sleep(0.02)`` means 50,000
timer wake-ups a second and 1,000 independently drifting clocks. Here a single task wakes at
absolute times ``t0 + n·20 ms`` (never relative sleeps, so scheduling delay does not accumulate
into drift) and calls every stream's ``on_tick`` in one pass.

If the loop falls behind (a GC pause, a slow callback), the missed ticks are run back-to-back so
every stream still sends its frames and the far end's jitter buffer sees a burst, not a gap. Past
``max_catchup_ticks`` that would only flood the network, so the clock re-anchors at ``now`` and
the missed ticks are counted (``skipped_ticks``) instead.

Streams must be cheap and must not raise; an exception is caught, counted against the stream in
``errors`` and logged once at debug, so one broken call cannot stop the others' audio.

Quiet streams: most calls spend most ticks sending silence (an IVR waiting for digits, a
caller listening to nobody). A stream may hand the pacer its native sender (``quiet``); until it
``wake``s, the pacer sends that sender's silence packet itself, all quiet streams in one C call
(``engine/rtp/_rtpsend.c``), and calls the stream's ``on_quiet_tick`` only every
``QUIET_HOUSEKEEPING_TICKS`` (timeouts, RTCP), on the tick its ``housekeeping_phase`` names, so
the streams' housekeeping is spread over those ticks rather than all on one. The stream decides
when it is quiet and wakes itself the moment it has something to do (a prompt, a digit to send,
a listener).

A quiet stream may also be playing a prompt: its sender then holds the encoded prompt as a
``script`` and the same C loop sends the prompt's frames; the tick its last frame goes out,
the pacer calls the stream's ``on_script_end`` so it is ticked in Python again from the next
tick (and plays what comes next, or goes quiet on silence).
"""

from __future__ import annotations

import functools
import importlib
import logging
from typing import Any, Protocol, cast, runtime_checkable

import numpy as np

from core.clock import Clock

log = logging.getLogger("ivr.rtp.pacer")

TICK_S = 0.020
MAX_CATCHUP_TICKS = 5
LATENESS_WINDOW = 3000  # last 60 s of ticks kept for the percentiles
QUIET_HOUSEKEEPING_TICKS = 25  # a quiet stream's on_quiet_tick: twice a second
TICK_SAMPLES = 160  # one tick of 8 kHz audio: what a quiet packet's timestamp advances by


class PacedStream(Protocol):
    """Anything that sends one frame per tick (an RTP session's send side, a recorder...)."""

    def on_tick(self, tick: int, now: float) -> None: ...


@runtime_checkable
class QuietStream(PacedStream, Protocol):
    """A stream that can let the pacer send its silence (see the module docstring). Checked
    once per class (``_is_quiet_stream``), never per tick."""

    def attach_pacer(self, pacer: Pacer | None) -> None: ...

    def on_quiet_tick(self, tick: int, now: float) -> None: ...

    def on_script_end(self) -> None: ...


_QUIET_METHODS = ("on_tick", "attach_pacer", "on_quiet_tick", "on_script_end")


def housekeeping_slot(stream: PacedStream) -> int:
    """Which of the ``QUIET_HOUSEKEEPING_TICKS`` ticks a quiet stream's ``on_quiet_tick`` runs
    on: its ``housekeeping_phase`` (0 when it has none). Spreading the streams over the ticks
    keeps any one tick from doing every call's timeout check and RTCP report at once."""
    return int(getattr(stream, "housekeeping_phase", 0)) % QUIET_HOUSEKEEPING_TICKS


@functools.cache
def _is_quiet_stream(cls: type) -> bool:
    """``isinstance(stream, QuietStream)``, worked out once per class: a runtime-checkable
    Protocol's check walks the protocol's members on every call (~15 us in Python 3.11, twice
    per call: add and remove), and a stream's class does not change its methods."""
    return all(callable(getattr(cls, name, None)) for name in _QUIET_METHODS)


@functools.cache
def _send_quiet() -> Any:
    return importlib.import_module("engine.rtp._rtpsend").send_quiet


class Pacer:
    """The shared tick loop; see the module docstring. ``run`` is started once by the engine."""

    def __init__(self, tick_s: float = TICK_S, max_catchup_ticks: int = MAX_CATCHUP_TICKS) -> None:
        self.tick_s = tick_s
        self.max_catchup_ticks = max_catchup_ticks
        # id(stream) -> ...: every stream; those ticked in Python; the quiet ones and their
        # senders. Kept current on every change so a tick's snapshot is three dict copies (a
        # call comes, goes, goes quiet or wakes hundreds of times a second with 1,000 calls)
        self._streams: dict[int, PacedStream] = {}
        self._active: dict[int, PacedStream] = {}
        self._quiet: dict[int, QuietStream] = {}
        self._quiet_by_sender: dict[int, Any] = {}
        # the quiet streams by housekeeping slot: tick t runs on_quiet_tick for slot t % 25
        self._quiet_slots: list[dict[int, QuietStream]] = [
            {} for _ in range(QUIET_HOUSEKEEPING_TICKS)]
        self._snapshot: tuple[PacedStream, ...] = ()
        self._quiet_senders: tuple[Any, ...] = ()
        self._quiet_streams: tuple[QuietStream, ...] = ()
        self._dirty = False
        self._running = False
        self.tick = 0
        self.ticks = 0
        self.late_ticks = 0  # ran more than one tick period after their deadline
        self.skipped_ticks = 0  # dropped on re-anchor
        self.reanchors = 0
        self.errors: dict[int, int] = {}  # id(stream) -> exceptions raised in on_tick
        self.quiet_packets = 0  # sent by the pacer for quiet streams
        self._lateness = np.zeros(LATENESS_WINDOW, dtype=np.float64)
        self._lateness_n = 0

    # --- membership ---------------------------------------------------------------------
    def add(self, stream: PacedStream) -> None:
        self._streams[id(stream)] = stream
        if id(stream) not in self._quiet:
            self._active[id(stream)] = stream
        self._dirty = True
        if _is_quiet_stream(type(stream)):
            cast(QuietStream, stream).attach_pacer(self)

    def remove(self, stream: PacedStream) -> None:
        """Safe to call from inside ``on_tick``: takes effect from the next tick."""
        if self._streams.pop(id(stream), None) is not None:
            self._dirty = True
            if _is_quiet_stream(type(stream)):
                cast(QuietStream, stream).attach_pacer(None)
        self._active.pop(id(stream), None)
        if self._quiet.pop(id(stream), None) is not None:
            self._quiet_slots[housekeeping_slot(stream)].pop(id(stream), None)
        self._quiet_by_sender.pop(id(stream), None)
        self.errors.pop(id(stream), None)

    def quiet(self, stream: QuietStream, sender: Any) -> None:
        """From the next tick the pacer sends ``sender``'s silence for ``stream`` (a native
        ``engine.rtp._rtpsend.SenderBase`` with ``silence`` set) instead of calling on_tick."""
        if id(stream) in self._streams:
            self._quiet[id(stream)] = stream
            self._quiet_slots[housekeeping_slot(stream)][id(stream)] = stream
            self._quiet_by_sender[id(stream)] = sender
            self._active.pop(id(stream), None)
            self._dirty = True

    def wake(self, stream: PacedStream) -> None:
        """``stream`` has something to do: its on_tick runs again from the next tick."""
        if self._quiet.pop(id(stream), None) is not None:
            del self._quiet_by_sender[id(stream)]
            self._quiet_slots[housekeeping_slot(stream)].pop(id(stream), None)
            self._active[id(stream)] = stream
            self._dirty = True

    def is_quiet(self, stream: PacedStream) -> bool:
        return id(stream) in self._quiet

    def __len__(self) -> int:
        return len(self._streams)

    def stop(self) -> None:
        """Make ``run`` return after the current tick."""
        self._running = False

    # --- the loop -----------------------------------------------------------------------
    def _run_tick(self, now: float, deadline: float) -> None:
        if self._dirty:
            self._snapshot = tuple(self._active.values())
            self._quiet_streams = tuple(self._quiet.values())
            self._quiet_senders = tuple(self._quiet_by_sender.values())
            self._dirty = False
        lateness = max(0.0, now - deadline)
        self._lateness[self._lateness_n % LATENESS_WINDOW] = lateness
        self._lateness_n += 1
        if lateness > self.tick_s:
            self.late_ticks += 1
        tick = self.tick
        if self._quiet_senders:
            self._tick_quiet(tick, now)
        for s in self._snapshot:
            try:
                s.on_tick(tick, now)
            except Exception as exc:  # a stream must never stop the others' audio
                n = self.errors.get(id(s), 0) + 1
                self.errors[id(s)] = n
                if n == 1:
                    log.debug("stream %r raised in on_tick: %r", s, exc)
        self.tick += 1
        self.ticks += 1

    def _tick_quiet(self, tick: int, now: float) -> None:
        finished: list[int] = []
        try:
            self.quiet_packets += _send_quiet()(self._quiet_senders, TICK_SAMPLES, finished)
        except Exception as exc:  # e.g. a sender without silence: tick them in Python again
            log.warning("quiet streams' send failed, waking them: %r", exc)
            self._end_scripts(list(self._quiet.values()))
            self._active.update(self._quiet)
            self._quiet.clear()
            self._quiet_by_sender.clear()
            for slot in self._quiet_slots:
                slot.clear()
            self._dirty = True
            return
        if finished:  # their prompt's last frame went out: Python plays what follows
            self._end_scripts([self._quiet_streams[i] for i in finished])
        slot = self._quiet_slots[tick % QUIET_HOUSEKEEPING_TICKS]
        if slot:
            for s in tuple(slot.values()):
                try:
                    s.on_quiet_tick(tick, now)
                except Exception as exc:  # as on_tick: one stream cannot stop the others
                    n = self.errors.get(id(s), 0) + 1
                    self.errors[id(s)] = n
                    if n == 1:
                        log.debug("stream %r raised in on_quiet_tick: %r", s, exc)

    def _end_scripts(self, streams: list[QuietStream]) -> None:
        """Hand ``streams`` back to Python: each takes back what its sender played for it."""
        for s in streams:
            try:
                s.on_script_end()
            except Exception as exc:  # as on_tick: one stream cannot stop the others
                self.errors[id(s)] = self.errors.get(id(s), 0) + 1
                log.debug("stream %r raised in on_script_end: %r", s, exc)
            self.wake(s)

    async def run(self, clock: Clock) -> None:
        """Tick until :meth:`stop`. Wakes at absolute ``t0 + n·tick_s`` on ``clock``."""
        self._running = True
        t0 = clock.now()
        n = 0
        while self._running:
            deadline = t0 + n * self.tick_s
            await clock.sleep_until(deadline)
            if not self._running:
                break
            now = clock.now()
            behind = int((now - deadline) / self.tick_s)
            if behind > self.max_catchup_ticks:
                # too far behind: run this tick, forget the backlog, restart the grid at now
                self.skipped_ticks += behind
                self.reanchors += 1
                self._run_tick(now, deadline)
                t0 = now
                n = 1
                continue
            self._run_tick(now, deadline)
            n += 1

    # --- metrics ------------------------------------------------------------------------
    def lateness_ms(self) -> dict[str, float]:
        """p50/p99/max of how late ticks ran after their absolute deadline (ms)."""
        k = min(self._lateness_n, LATENESS_WINDOW)
        if k == 0:
            return {"p50": 0.0, "p99": 0.0, "max": 0.0}
        w = self._lateness[:k] * 1000.0
        p50, p99 = np.percentile(w, [50, 99])
        return {"p50": float(p50), "p99": float(p99), "max": float(w.max())}
