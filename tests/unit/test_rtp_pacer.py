"""The shared pacing clock: absolute-time ticks, catch-up, re-anchor, isolation of failures."""

from __future__ import annotations

import asyncio

import pytest

from core.clock import FakeClock, SystemClock
from core.tasks import spawn
from engine.rtp.pacer import Pacer


class Recorder:
    def __init__(self) -> None:
        self.ticks: list[tuple[int, float]] = []

    def on_tick(self, tick: int, now: float) -> None:
        self.ticks.append((tick, now))


class Boom:
    def __init__(self) -> None:
        self.calls = 0

    def on_tick(self, tick: int, now: float) -> None:
        self.calls += 1
        raise RuntimeError("broken stream")


class Slow:
    """Burns fake time inside the tick, as a GC pause or a slow callback would."""

    def __init__(self, clock: FakeClock, at_tick: int, cost_s: float) -> None:
        self.clock, self.at_tick, self.cost_s = clock, at_tick, cost_s

    def on_tick(self, tick: int, now: float) -> None:
        if tick == self.at_tick:
            self.clock._now += self.cost_s  # test-only: time passes during the call


async def start(pacer: Pacer, clock: FakeClock) -> asyncio.Task[None]:
    task = spawn(pacer.run(clock), "pacer")
    for _ in range(5):  # let the loop take t0, run tick 0 and wait for tick 1
        await asyncio.sleep(0)
    assert clock.pending == 1
    return task


async def test_ticks_on_absolute_grid_for_all_streams(fake_clock: FakeClock) -> None:
    pacer = Pacer()
    streams = [Recorder() for _ in range(100)]
    for s in streams:
        pacer.add(s)
    t0 = fake_clock.now()
    task = await start(pacer, fake_clock)
    await fake_clock.advance(1.0)
    pacer.stop()
    await fake_clock.advance(0.02)
    await task
    for s in streams:
        assert [n for n, _ in s.ticks][:51] == list(range(51))
        # every tick at exactly t0 + n*20 ms: no drift
        assert all(abs(now - (t0 + n * 0.02)) < 1e-9 for n, now in s.ticks)
    assert pacer.lateness_ms()["max"] < 1e-6
    assert pacer.late_ticks == 0


async def test_add_and_remove_while_running(fake_clock: FakeClock) -> None:
    pacer = Pacer()
    a, b = Recorder(), Recorder()
    pacer.add(a)
    task = await start(pacer, fake_clock)
    await fake_clock.advance(0.1)
    pacer.add(b)
    await fake_clock.advance(0.1)
    pacer.remove(a)
    await fake_clock.advance(0.1)
    pacer.stop()
    await fake_clock.advance(0.02)
    await task
    assert len(a.ticks) == 11 and len(b.ticks) == 10
    assert b.ticks[0][0] == 6  # joined at the current tick number
    assert len(pacer) == 1


async def test_exception_counted_per_stream_and_others_still_tick(fake_clock: FakeClock) -> None:
    pacer = Pacer()
    bad, good = Boom(), Recorder()
    pacer.add(bad)
    pacer.add(good)
    task = await start(pacer, fake_clock)
    await fake_clock.advance(0.2)
    pacer.stop()
    await fake_clock.advance(0.02)
    await task
    assert bad.calls == 11 and len(good.ticks) == 11
    assert pacer.errors == {id(bad): 11}


async def test_falling_behind_catches_up_back_to_back(fake_clock: FakeClock) -> None:
    pacer = Pacer(max_catchup_ticks=5)
    rec = Recorder()
    pacer.add(rec)
    pacer.add(Slow(fake_clock, at_tick=3, cost_s=0.07))  # 3.5 ticks lost
    t0 = fake_clock.now()
    task = await start(pacer, fake_clock)
    await fake_clock.advance(0.4)
    pacer.stop()
    await fake_clock.advance(0.02)
    await task
    ticks = [n for n, _ in rec.ticks]
    assert ticks == list(range(len(ticks)))  # no tick skipped
    times = dict(rec.ticks)
    # ticks 4..6 ran late, back-to-back at the same instant; the grid was kept
    assert times[4] == times[5] == times[6] == t0 + 0.06 + 0.07
    assert times[8] == t0 + 8 * 0.02
    assert pacer.late_ticks >= 2 and pacer.reanchors == 0
    assert 49 < pacer.lateness_ms()["max"] < 51


async def test_far_behind_reanchors_and_counts_skipped(fake_clock: FakeClock) -> None:
    pacer = Pacer(max_catchup_ticks=5)
    rec = Recorder()
    pacer.add(rec)
    pacer.add(Slow(fake_clock, at_tick=2, cost_s=1.0))  # 50 ticks lost
    task = await start(pacer, fake_clock)
    await fake_clock.advance(2.0)
    pacer.stop()
    await fake_clock.advance(0.02)
    await task
    assert pacer.reanchors == 1
    assert pacer.skipped_ticks >= 45
    times = [now for _, now in rec.ticks]
    anchor = times[3]
    # after re-anchoring, the grid restarts at that moment
    assert all(abs(t - (anchor + i * 0.02)) < 1e-9 for i, t in enumerate(times[3:]))


async def test_real_clock_regularity() -> None:
    """On the system clock the pacer keeps the absolute 20 ms grid: it never runs ahead of it,
    and late ticks do not accumulate into drift. It waits for 25 ticks (an event), not for a
    fixed real time, so a loaded machine makes it slower, never wrong."""
    pacer = Pacer()
    rec = Recorder()
    enough = asyncio.Event()

    class Counting:
        def on_tick(self, tick: int, now: float) -> None:
            if len(rec.ticks) >= 25:
                enough.set()

    pacer.add(rec)
    pacer.add(Counting())
    task = spawn(pacer.run(SystemClock()), "pacer")
    await asyncio.wait_for(enough.wait(), 30)
    pacer.stop()
    await task
    gaps = [b[1] - a[1] for a, b in zip(rec.ticks, rec.ticks[1:], strict=False)]
    assert sum(gaps) / len(gaps) > 0.015  # never faster than the grid
    if pacer.reanchors == 0:
        # absolute grid: the last tick is not behind by the sum of per-tick delays
        first, last = rec.ticks[0], rec.ticks[-1]
        assert abs((last[1] - first[1]) - (last[0] - first[0]) * 0.02) < 0.015


class QuietRecorder(Recorder):
    """A stream that can go quiet; ``sender`` stands for its native sender."""

    def __init__(self) -> None:
        super().__init__()
        self.sender = object()
        self.pacer: Pacer | None = None
        self.script_left = 0  # quiet ticks until the pacer's C loop finishes its prompt
        self.script_ends = 0
        self.housekeeping_phase = 0
        self.quiet_ticks: list[int] = []

    def attach_pacer(self, pacer: Pacer | None) -> None:
        self.pacer = pacer

    def on_quiet_tick(self, tick: int, now: float) -> None:
        self.quiet_ticks.append(tick)

    def on_script_end(self) -> None:
        self.script_ends += 1


def test_membership_changes_tick_each_stream_exactly_once(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Hundreds of calls come, go, go quiet and wake between ticks: after any sequence, each
    stream is ticked once, in Python while awake and by the quiet send while quiet, and a
    removed stream by neither (the pacer keeps these sets current instead of filtering)."""
    import random

    import engine.rtp.pacer as pacer_mod

    sent: list[object] = []
    owner: dict[int, QuietRecorder] = {}

    def fake_send_quiet(senders: tuple[object, ...], samples: int,
                        finished: list[int] | None = None) -> int:
        sent.extend(senders)
        for i, snd in enumerate(senders):  # a prompt's last frame: Python takes over
            r = owner[id(snd)]
            if r.script_left and finished is not None:
                r.script_left -= 1
                if r.script_left == 0:
                    finished.append(i)
        return len(senders)

    monkeypatch.setattr(pacer_mod, "_send_quiet", lambda: fake_send_quiet)
    rng = random.Random(18)
    pacer = Pacer()
    streams = [QuietRecorder() for _ in range(40)]
    owner.update((id(r.sender), r) for r in streams)
    added: set[int] = set()
    quiet: set[int] = set()
    for step in range(2000):
        s = rng.choice(streams)
        op = rng.choice(("add", "remove", "quiet", "wake", "wake"))
        if op == "add":
            pacer.add(s)
            added.add(id(s))
        elif op == "remove":
            pacer.remove(s)
            added.discard(id(s))
            quiet.discard(id(s))
        elif op == "quiet":
            pacer.quiet(s, s.sender)
            if id(s) in added:
                quiet.add(id(s))
                s.script_left = rng.choice((0, 0, 1))  # some play a prompt that ends now
        else:
            pacer.wake(s)
            quiet.discard(id(s))
        if step % 7:
            continue
        for r in streams:
            r.ticks.clear()
        sent.clear()
        pacer._run_tick(0.0, 0.0)
        ticked = {id(r) for r in streams if r.ticks}
        assert ticked == added - quiet
        assert sorted(map(id, sent)) == sorted(id(r.sender) for r in streams if id(r) in quiet)
        assert all(len(r.ticks) <= 1 for r in streams)
        ended = {id(r) for r in streams if r.script_ends}
        assert ended <= quiet and all(r.script_ends <= 1 for r in streams)
        quiet -= ended  # handed back: ticked in Python from the next tick
        for r in streams:
            r.script_ends = 0
        assert all(pacer.is_quiet(r) == (id(r) in quiet) for r in streams)


def test_quiet_housekeeping_is_spread_over_the_ticks(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each quiet stream's on_quiet_tick (timeout check, RTCP) runs once every 25 ticks on the
    tick its housekeeping_phase names, so 500 calls' RTCP does not land on one tick (10 ms at
    once on this box); a woken or removed stream gets none."""
    import engine.rtp.pacer as pacer_mod

    monkeypatch.setattr(pacer_mod, "_send_quiet",
                        lambda: lambda senders, samples, finished=None: len(senders))
    pacer = Pacer()
    streams = [QuietRecorder() for _ in range(100)]
    for i, r in enumerate(streams):
        r.housekeeping_phase = i * 7
        pacer.add(r)
        pacer.quiet(r, r.sender)
    per_tick = []
    for t in range(50):
        before = sum(len(r.quiet_ticks) for r in streams)
        pacer._run_tick(0.0, 0.0)
        per_tick.append(sum(len(r.quiet_ticks) for r in streams) - before)
        if t == 10:
            pacer.wake(streams[0])
            pacer.remove(streams[1])
    assert max(per_tick) == 4 and sum(per_tick) == 100 + 98  # 100 streams over 25 slots
    for r in streams[2:]:
        assert r.quiet_ticks == [t for t in range(50) if t % 25 == r.housekeeping_phase % 25]
    assert streams[0].quiet_ticks == [0] and streams[1].quiet_ticks == [7]


def test_only_quiet_capable_streams_are_attached() -> None:
    """add/remove attach the pacer to a stream with the quiet hooks (worked out once per
    class) and leave a plain on_tick stream alone, also when both classes come and go often."""
    pacer = Pacer()

    class HalfQuiet(Recorder):  # attach_pacer but no on_quiet_tick: not a QuietStream
        def __init__(self) -> None:
            super().__init__()
            self.attached: list[Pacer | None] = []

        def attach_pacer(self, pacer: Pacer | None) -> None:
            self.attached.append(pacer)

    for _ in range(3):
        quiet, plain, half = QuietRecorder(), Recorder(), HalfQuiet()
        for s in (quiet, plain, half):
            pacer.add(s)
        assert quiet.pacer is pacer
        assert half.attached == []
        for s in (quiet, plain, half):
            pacer.remove(s)
        assert quiet.pacer is None
        assert half.attached == []
        assert len(pacer) == 0
