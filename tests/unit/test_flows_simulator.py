"""The simulated Call: digit timeouts on the fake clock, listen mapping, keyword intents."""

from __future__ import annotations

import asyncio

import pytest

from core.call import Call, CallHungUp, DigitSpec, DtmfEvent, ListenSpec
from core.clock import FakeClock
from flows.services import KeywordIntentMatcher
from flows.simulator import SimInput, SimulatedCall


def test_implements_the_call_protocol(fake_clock: FakeClock) -> None:
    assert isinstance(SimulatedCall(fake_clock), Call)


async def test_terminator_and_max_digits(fake_clock: FakeClock) -> None:
    call = SimulatedCall(fake_clock)
    call.feed_digits("12#345")
    r1 = await call.collect_digits(DigitSpec(max_digits=8))
    assert (r1.digits, r1.reason) == ("12", "terminator")
    r2 = await call.collect_digits(DigitSpec(max_digits=2, terminator=None))
    assert (r2.digits, r2.reason) == ("34", "max_digits")


async def test_first_digit_timeout(fake_clock: FakeClock) -> None:
    call = SimulatedCall(fake_clock)
    task = asyncio.create_task(call.collect_digits(DigitSpec(first_digit_timeout_s=5)))
    await asyncio.wait_for(call.idle.wait(), 1)
    await fake_clock.advance(4.9)
    assert not task.done()
    await fake_clock.advance(0.2)
    r = await asyncio.wait_for(task, 1)
    assert (r.digits, r.reason) == ("", "no_input")


async def test_inter_digit_timeout_restarts_per_digit(fake_clock: FakeClock) -> None:
    call = SimulatedCall(fake_clock)
    spec = DigitSpec(max_digits=4, first_digit_timeout_s=5, inter_digit_timeout_s=2)
    task = asyncio.create_task(call.collect_digits(spec))
    await asyncio.wait_for(call.idle.wait(), 1)
    call.feed_digits("1")
    await asyncio.wait_for(call.idle.wait(), 1)  # waiting for the second digit
    await fake_clock.advance(1.5)
    call.feed_digits("2")
    await asyncio.wait_for(call.idle.wait(), 1)
    await fake_clock.advance(1.5)
    assert not task.done()
    await fake_clock.advance(0.6)
    r = await asyncio.wait_for(task, 1)
    assert (r.digits, r.reason) == ("12", "timeout")


async def test_sensitive_digits_masked_in_trace(fake_clock: FakeClock) -> None:
    call = SimulatedCall(fake_clock)
    call.feed_digits("9876")
    await call.collect_digits(DigitSpec(max_digits=4, sensitive=True))
    assert "9876" not in str(call.trace.as_list())


async def test_listen_maps_inputs(fake_clock: FakeClock) -> None:
    call = SimulatedCall(fake_clock)
    call.feed(SimInput("say", "check my balance"))
    call.feed_digits("5")
    call.feed(SimInput("silence"))
    ok = await call.listen(ListenSpec())
    assert (ok.status, ok.text) == ("ok", "check my balance")
    dtmf = await call.listen(ListenSpec(allow_dtmf=True))
    assert (dtmf.status, dtmf.digit) == ("dtmf", "5")
    assert (await call.listen(ListenSpec())).status == "no_input"


async def test_hangup_input_raises_and_events_flow(fake_clock: FakeClock) -> None:
    call = SimulatedCall(fake_clock)
    events = call.events()
    first = asyncio.create_task(anext(events))
    await asyncio.sleep(0)
    call.feed_digits("7")
    ev = await asyncio.wait_for(first, 1)
    assert isinstance(ev, DtmfEvent) and ev.digit == "7"
    call.feed(SimInput("hangup"))
    await call.collect_digits(DigitSpec())  # consumes the 7
    with pytest.raises(CallHungUp):
        await call.collect_digits(DigitSpec())
    assert not call.is_active
    await events.aclose()


@pytest.mark.parametrize(
    ("text", "want"),
    [
        ("I'd like my ACCOUNT balance please", "balance"),
        ("talk to a real person", "agent"),
        ("my credit card was stolen", "card_lost"),
        ("card", "card"),
        ("balances", None),  # whole words only
        ("", None),
    ],
)
def test_keyword_intents(text: str, want: str | None) -> None:
    intents = {
        "balance": ["balance", "account balance"],
        "agent": ["agent", "person", "representative"],
        "card": ["card"],
        "card_lost": ["credit card was stolen", "lost card"],
    }
    assert KeywordIntentMatcher().match(text, intents) == want


async def test_speech_during_digit_collection_is_ignored_and_traced(fake_clock: FakeClock) -> None:
    call = SimulatedCall(fake_clock)
    call.feed(SimInput("say", "one two"))
    call.feed_digits("3")
    r = await call.collect_digits(DigitSpec())
    assert r.digits == "3"
    assert any(
        e.kind == "ignored_input" and e.data["input_kind"] == "say" for e in call.trace.entries
    )
