"""collect_digits with ``speech: true``: digits said ("one three eight", "幺三八") fill the node
like keys do; keys still work, also after a spoken turn began; nomatch and too many digits are
``invalid``; a missing recogniser falls back to keys.

The call is the flow simulator with scripted recogniser results (what the ``digits`` listen mode
returns: asr/listen.py turns the grammar's words into digits, tested in test_asr_grammar.py and
on real audio in test_asr_forced.py); under test here is the node logic.
"""

from __future__ import annotations

import asyncio
from typing import Any

from core.call import ListenResult, ListenSpec
from core.clock import FakeClock
from flows.interpreter import Interpreter
from flows.validator import compile_flow
from tests.unit.test_flows_nomatch import ScriptedCall, run


def collect_flow(**params: Any) -> Any:
    node = {"id": "c", "type": "collect_digits", "params": {
        "prompt": {"text": "Say or key your account number."}, "variable": "acct",
        "min_digits": 3, "max_digits": 4, "speech": True, "max_retries": 1, **params}}
    ends = [{"id": p, "type": "hangup", "params": {}} for p in ("done", "bad", "ni")]
    return compile_flow({
        "id": "f", "name": "f", "language": "zh-CN",
        "nodes": [{"id": "start", "type": "start"}, node, *ends],
        "edges": [{"from": "start", "port": "next", "to": "c"},
                  {"from": "c", "port": "ok", "to": "done"},
                  {"from": "c", "port": "invalid", "to": "bad"},
                  {"from": "c", "port": "no_input", "to": "ni"}]})


class KeysAfterListen(ScriptedCall):
    """The caller presses keys once the node listens (not during the prompt)."""

    def __init__(self, clock: FakeClock, results: list[ListenResult], keys: str) -> None:
        super().__init__(clock, results)
        self.keys = keys

    async def listen(self, spec: ListenSpec) -> ListenResult:
        result = await super().listen(spec)
        self.feed_digits(self.keys)
        return result


async def test_spoken_digits_fill_the_variable(fake_clock: FakeClock) -> None:
    call = ScriptedCall(fake_clock, [ListenResult("ok", text="138")])
    res = await asyncio.wait_for(Interpreter(collect_flow(), call, clock=fake_clock).run(), 5)
    assert [t["node_id"] for t in res.trace] == ["start", "c", "done"]
    assert res.variables["acct"] == "138"
    (spec,) = call.specs
    assert spec.mode == "digits" and spec.language == "zh-CN"
    assert spec.no_input_timeout_s == 5.0 and not spec.sensitive


async def test_too_many_or_unrecognised_digits_are_invalid(fake_clock: FakeClock) -> None:
    call = ScriptedCall(fake_clock, [ListenResult("ok", text="12345"),
                                     ListenResult("nomatch", heard="我要查话费")])
    path = await run(collect_flow(), call, fake_clock)
    assert path == ["start", "c", "bad"]
    heard = [e.data["heard"] for e in call.trace.entries if e.kind == "flow.no_match"]
    assert heard == ["我要查话费"]


async def test_sensitive_digits_are_masked_in_the_trace(fake_clock: FakeClock) -> None:
    call = ScriptedCall(fake_clock, [ListenResult("nomatch", heard="one two"),
                                     ListenResult("ok", text="4321")])
    res = await asyncio.wait_for(
        Interpreter(collect_flow(sensitive=True), call, clock=fake_clock).run(), 5)
    assert [t["node_id"] for t in res.trace] == ["start", "c", "done"]
    assert call.specs[0].sensitive and res.variables["acct"] != "4321"
    assert [e.data["heard"] for e in call.trace.entries if e.kind == "flow.no_match"] == ["***"]
    assert "4321" not in str([e.data for e in call.trace.entries])


async def test_a_key_instead_of_speech_continues_as_keyed_entry(fake_clock: FakeClock) -> None:
    call = KeysAfterListen(fake_clock, [ListenResult("dtmf", digit="9")], "87#")
    path = await run(collect_flow(), call, fake_clock)
    assert path == ["start", "c", "done"]
    digits = [e.data for e in call.trace.entries if e.kind == "digits"]
    assert digits == [{"digits": "87", "reason": "terminator"}]


async def test_no_recogniser_falls_back_to_keys(fake_clock: FakeClock) -> None:
    call = KeysAfterListen(fake_clock, [ListenResult("error", error="no speech recognition")],
                           "5555")
    path = await run(collect_flow(), call, fake_clock)
    assert path == ["start", "c", "done"]
    assert [e.kind for e in call.trace.entries if e.kind == "flow.asr_unavailable"]


async def test_speech_off_never_listens(fake_clock: FakeClock) -> None:
    call = ScriptedCall(fake_clock, [])
    call.feed_digits("1234")
    path = await run(collect_flow(speech=False), call, fake_clock)
    assert path == ["start", "c", "done"] and call.specs == []


async def test_a_key_during_the_prompt_skips_speech(fake_clock: FakeClock) -> None:
    call = ScriptedCall(fake_clock, [])
    call.feed_digits("2468")
    path = await run(collect_flow(), call, fake_clock)
    assert path == ["start", "c", "done"] and call.specs == []
