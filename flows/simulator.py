"""A :class:`~core.call.Call` over a text/DTMF channel: the flow simulator.

Prompts are recorded (and printed by the terminal front-end); digits, utterances, silences and
hang-ups are injected. Waiting for input honours the node's timeouts on the injected clock, so the
headless test runner drives no-input paths with a ``FakeClock`` and no real sleeps. In interactive
mode timeouts are switched off and a blank line stands for "caller said nothing".

The simulator also tells its driver when the flow is *idle*, i.e. blocked waiting for the caller,
which is how the test runner knows a step has been fully processed.
"""

from __future__ import annotations

import asyncio
import itertools
from collections import deque
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from core.call import (
    UNVERIFIED_IDENTITY,
    AudioSource,
    BargeIn,
    CallEvent,
    CallHungUp,
    CallTrace,
    DigitSpec,
    DigitsResult,
    DtmfEvent,
    HangupEvent,
    ListenResult,
    ListenSpec,
    PlayResult,
    RecordResult,
    TransferResult,
)
from core.clock import Clock
from core.tasks import TaskScope

InputKind = Literal["dtmf", "say", "silence", "hangup"]
_ids = itertools.count(1)


@dataclass(frozen=True, slots=True)
class SimInput:
    kind: InputKind
    value: str = ""


@dataclass(frozen=True, slots=True)
class SimOutput:
    """Something the caller would hear or see happen."""

    kind: Literal["say", "play", "transfer", "hangup", "record"]
    text: str
    at: float


class SimulatedCall:
    """Implements the ``Call`` protocol for the simulator and ``ivr flow test``."""

    def __init__(
        self,
        clock: Clock,
        *,
        caller: str = "+15550100",
        callee: str = "+15550199",
        call_id: str | None = None,
        interactive: bool = False,
        on_output: Callable[[SimOutput], None] | None = None,
        failing_transfers: set[str] | None = None,
        identity: Mapping[str, Any] | None = None,
    ) -> None:
        self.call_id = call_id or f"sim-{next(_ids)}"
        self.caller = caller
        self.callee = callee
        self.trace = CallTrace(clock.wall)
        # a test case may pretend the caller's number was verified (branded caller ID)
        self.identity: Mapping[str, Any] = {**UNVERIFIED_IDENTITY, **(identity or {})}
        self.clock = clock
        self.interactive = interactive
        self.outputs: list[SimOutput] = []
        self.transfers: list[str] = []
        self.answered = False
        self.hangup_reason: str | None = None
        self.waiting_for: str | None = None  # "digits" / "speech" / "record" while blocked
        self._on_output = on_output
        self._failing = failing_transfers or set()
        self._inputs: deque[SimInput] = deque()
        self._arrived: asyncio.Event = asyncio.Event()
        self._idle: asyncio.Event = asyncio.Event()
        self._scope = TaskScope(f"sim:{self.call_id}")
        self._subscribers: list[asyncio.Queue[CallEvent]] = []

    # --- driver side ---------------------------------------------------------------------------

    def feed(self, item: SimInput) -> None:
        """Inject caller input (digits one per item, an utterance, a silence, a hang-up)."""
        self._inputs.append(item)
        self._idle.clear()  # the flow will consume it: no longer idle until it waits again
        self._arrived.set()
        now = self.clock.now()
        if item.kind == "dtmf":
            self._publish(DtmfEvent(item.value, "simulated", 100, now))
        elif item.kind == "hangup":
            self._publish(HangupEvent("normal", "caller", now))

    def feed_digits(self, digits: str) -> None:
        for d in digits:
            self.feed(SimInput("dtmf", d))

    @property
    def idle(self) -> asyncio.Event:
        """Set while the flow is blocked waiting for caller input."""
        return self._idle

    # --- Call protocol -------------------------------------------------------------------------

    @property
    def is_active(self) -> bool:
        return self.hangup_reason is None

    def _check(self) -> None:
        if self.hangup_reason is not None:
            raise CallHungUp(self.hangup_reason, "engine")

    def _emit(
        self, kind: Literal["say", "play", "transfer", "hangup", "record"], text: str
    ) -> None:
        out = SimOutput(kind, text, self.clock.now())
        self.outputs.append(out)
        if self._on_output is not None:
            self._on_output(out)

    async def answer(self) -> None:
        self._check()
        self.answered = True
        self.trace.add("answer")

    async def play(self, source: AudioSource, *, barge_in: BargeIn = BargeIn.NONE) -> PlayResult:
        self._check()
        name = str(source) if isinstance(source, str | Path) else "<pcm>"
        skipped = self._type_ahead(barge_in, name)
        if skipped is not None:
            return skipped
        self.trace.add("play", source=name)
        self._emit("play", f"[audio {name}]")
        return PlayResult(completed=True)

    def _type_ahead(self, barge_in: BargeIn, label: str) -> PlayResult | None:
        """Like the SIP call: a key already pressed skips a DTMF-interruptible prompt and stays
        buffered for the next collect (``digit`` is informational)."""
        first = self._inputs[0] if self._inputs else None
        if BargeIn.DTMF in barge_in and first is not None and first.kind == "dtmf":
            self.trace.add("play.skipped", prompt=label[:40], digit=first.value)
            return PlayResult(False, "dtmf", first.value, 0)
        return None

    async def say(
        self,
        text: str,
        *,
        voice: str | None = None,
        language: str | None = None,
        barge_in: BargeIn = BargeIn.NONE,
    ) -> PlayResult:
        self._check()
        skipped = self._type_ahead(barge_in, text)
        if skipped is not None:
            return skipped
        self.trace.add("say", text=text)
        self._emit("say", text)
        await asyncio.sleep(0)
        return PlayResult(completed=True, played_ms=60 * len(text))

    async def _next(self, deadline: float | None, waiting: str) -> SimInput | None:
        """The next input, or None when ``deadline`` passes (clock time)."""
        self._check()
        while not self._inputs:
            self.waiting_for = waiting
            self._idle.set()
            self._arrived.clear()
            try:
                if deadline is None or self.interactive:
                    await self._arrived.wait()
                else:
                    arrived = self._scope.spawn(self._arrived.wait(), "input")
                    timer = self._scope.spawn(self.clock.sleep_until(deadline), "timer")
                    try:
                        await asyncio.wait({arrived, timer}, return_when=asyncio.FIRST_COMPLETED)
                    finally:
                        arrived.cancel()
                        timer.cancel()
                    if not self._inputs:
                        return None
            finally:
                self._idle.clear()
                self.waiting_for = None
        item = self._inputs.popleft()
        if item.kind == "hangup":
            self.hangup_reason = "caller"
            self.trace.add("hangup", side="caller")
            raise CallHungUp("normal", "caller")
        return item

    async def collect_digits(self, spec: DigitSpec) -> DigitsResult:
        digits = ""
        deadline = self.clock.now() + spec.first_digit_timeout_s
        while True:
            item = await self._next(deadline, "digits")
            if item is None or item.kind == "silence":
                reason: Literal["timeout", "no_input"] = "timeout" if digits else "no_input"
                return self._digits(spec, digits, reason)
            if item.kind != "dtmf":
                self.trace.add("ignored_input", input_kind=item.kind)
                continue
            if spec.terminator is not None and item.value == spec.terminator:
                return self._digits(spec, digits, "terminator")
            digits += item.value
            if len(digits) >= spec.max_digits:
                return self._digits(spec, digits, "max_digits")
            deadline = self.clock.now() + spec.inter_digit_timeout_s

    def _digits(
        self,
        spec: DigitSpec,
        digits: str,
        reason: Literal["max_digits", "terminator", "timeout", "no_input"],
    ) -> DigitsResult:
        shown = "*" * len(digits) if spec.sensitive else digits
        self.trace.add("digits", digits=shown, reason=reason)
        return DigitsResult(digits, reason)

    async def listen(self, spec: ListenSpec) -> ListenResult:
        item = await self._next(self.clock.now() + spec.no_input_timeout_s, "speech")
        if item is None or item.kind == "silence":
            self.trace.add("listen", status="no_input")
            return ListenResult(status="no_input")
        if item.kind == "dtmf":
            if spec.allow_dtmf:
                self.trace.add("listen", status="dtmf", digit=item.value)
                return ListenResult(status="dtmf", digit=item.value)
            self.trace.add("ignored_input", input_kind="dtmf")
            return ListenResult(status="no_input")
        now = self.clock.now()
        self.trace.add("listen", status="ok", text=item.value)
        return ListenResult(
            status="ok", text=item.value, confidence=1.0, timings={"speech_end": now, "final": now}
        )

    async def record(
        self, max_seconds: float, *, silence_stop_s: float | None = None, beep: bool = True
    ) -> RecordResult:
        item = await self._next(self.clock.now() + max_seconds, "record")
        if item is None or item.kind == "silence":
            self._emit("record", "")
            return RecordResult(None, 0.0, "silence")
        if item.kind == "dtmf":
            self._emit("record", "")
            return RecordResult(None, 0.0, "dtmf")
        self._emit("record", item.value)
        return RecordResult(None, min(max_seconds, 0.4 * len(item.value.split())), "silence")

    async def transfer(self, target: str) -> TransferResult:
        self._check()
        self.trace.add("transfer", target=target)
        self._emit("transfer", target)
        if target in self._failing:
            return TransferResult("failed", "simulated failure")
        self.transfers.append(target)
        self.hangup_reason = "transferred"
        return TransferResult("transferred")

    async def hangup(self, reason: str = "normal") -> None:
        if self.hangup_reason is None:
            self.hangup_reason = reason
            self.trace.add("hangup", side="engine", reason=reason)
            self._emit("hangup", reason)
            self._publish(HangupEvent(reason, "engine", self.clock.now()))

    def _publish(self, event: CallEvent) -> None:
        for q in self._subscribers:
            q.put_nowait(event)

    async def events(self) -> AsyncIterator[CallEvent]:
        q: asyncio.Queue[CallEvent] = asyncio.Queue()
        self._subscribers.append(q)
        try:
            while True:
                event = await q.get()
                yield event
                if isinstance(event, HangupEvent):
                    return
        finally:
            self._subscribers.remove(q)

    async def close(self) -> None:
        await self._scope.close()
