"""Keypad input for one call: a type-ahead buffer and the collect-digits state machine.

Digits pressed before anyone asks (during a prompt, between nodes) are kept, as callers who
know a menu type ahead. Timeouts read the injected clock, so tests drive first-digit and
inter-digit timeouts with a FakeClock instead of sleeping.
"""

from __future__ import annotations

import asyncio
from collections import deque

from core.call import DigitSpec, DigitsResult
from core.clock import Clock

MAX_BUFFERED_DIGITS = 64


class DigitBuffer:
    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self._digits: deque[str] = deque(maxlen=MAX_BUFFERED_DIGITS)
        self._arrived = asyncio.Event()
        self.history: list[str] = []  # every digit of the call, for the call record

    def push(self, digit: str) -> None:
        self._digits.append(digit)
        self.history.append(digit)
        self._arrived.set()

    def pending(self) -> int:
        return len(self._digits)

    def clear(self) -> None:
        self._digits.clear()

    def pop(self) -> str | None:
        return self._digits.popleft() if self._digits else None

    async def _wait(self, deadline: float) -> bool:
        """Wait for a digit until ``deadline`` on the injected clock; True if one came."""
        if self._digits:
            return True
        self._arrived.clear()
        try:
            await self.clock.wait_for(self._arrived.wait(), max(0.0, deadline - self.clock.now()))
        except TimeoutError:
            pass
        return bool(self._digits)

    async def collect(self, spec: DigitSpec) -> DigitsResult:
        """Collect per ``spec``: stops on max digits, terminator, or a timeout.

        The terminator is not part of the result. Reasons: ``max_digits``, ``terminator``,
        ``timeout`` (some digits, then the inter-digit timeout), ``no_input`` (none at all).
        """
        got: list[str] = []
        deadline = self.clock.now() + spec.first_digit_timeout_s
        while True:
            if not await self._wait(deadline):
                return DigitsResult("".join(got), "timeout" if got else "no_input")
            digit = self.pop()
            if digit is None:
                continue
            if spec.terminator and digit in spec.terminator:
                if got or spec.min_digits == 0:
                    return DigitsResult("".join(got), "terminator")
                continue  # a lone terminator before any digit is ignored
            got.append(digit)
            if len(got) >= spec.max_digits:
                return DigitsResult("".join(got), "max_digits")
            deadline = self.clock.now() + spec.inter_digit_timeout_s
