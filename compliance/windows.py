"""Calling windows: when a campaign may ring a callee, in the callee's local time.

A window has opening hours per weekday, a holiday calendar (closed days) and make-up working days
(China moves weekends around public holidays: such a Saturday uses Monday's hours). A contact
outside the window is deferred to :meth:`CallingWindow.next_open`, never dropped.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta

SEARCH_DAYS = 400  # next_open gives up after this many days (a window with no open day)


def _parse_hhmm(value: str) -> time:
    try:
        return time.fromisoformat(value)
    except ValueError as e:
        raise ValueError(f"hours: {value!r} is not HH:MM") from e


@dataclass(frozen=True, slots=True)
class CallingWindow:
    hours: dict[int, tuple[tuple[time, time], ...]]  # weekday (0 = Monday) -> [start, end)
    holidays: frozenset[date] = field(default_factory=frozenset)
    workdays: frozenset[date] = field(default_factory=frozenset)  # make-up days: Monday's hours

    @classmethod
    def daily(cls, start: str = "09:00", end: str = "20:00", weekdays: Iterable[int] = range(5),
              holidays: Iterable[date] = (), workdays: Iterable[date] = ()) -> CallingWindow:
        s, e = _parse_hhmm(start), _parse_hhmm(end)
        if not s < e:
            raise ValueError(f"hours: start {start} is not before end {end}")
        days = list(weekdays)
        if any(not 0 <= d <= 6 for d in days):
            raise ValueError(f"weekdays: {days} has a day outside 0..6")
        return cls({d: ((s, e),) for d in days}, frozenset(holidays), frozenset(workdays))

    def _slots(self, d: date) -> tuple[tuple[time, time], ...]:
        if d in self.holidays:
            return ()
        if d in self.workdays:
            return self.hours.get(0, ())
        return self.hours.get(d.weekday(), ())

    def is_open(self, local: datetime) -> bool:
        t = local.timetz().replace(tzinfo=None)
        return any(s <= t < e for s, e in self._slots(local.date()))

    def next_open(self, local: datetime) -> datetime | None:
        """The first local time at or after ``local`` inside the window."""
        if self.is_open(local):
            return local
        d = local.date()
        for offset in range(SEARCH_DAYS):
            day = d + timedelta(days=offset)
            for s, _ in sorted(self._slots(day)):
                candidate = datetime.combine(day, s, tzinfo=local.tzinfo)
                if candidate >= local:
                    return candidate
        return None
