"""listen/menu nodes and the recogniser's ``nomatch``: counted apart from silence, escalating
re-prompts (VoiceXML ``count``), per-event limits, and ``auto`` language adoption.

The call is the flow simulator with scripted recogniser results: what is under test is the node
logic, not recognition (real recognition on real calls: test_speech_calls_real.py).
"""

from __future__ import annotations

import asyncio
from typing import Any

from core.call import BargeIn, ListenResult, ListenSpec, PlayResult
from core.clock import FakeClock
from flows.interpreter import Interpreter
from flows.simulator import SimulatedCall
from flows.validator import compile_flow


class ScriptedCall(SimulatedCall):
    def __init__(self, clock: FakeClock, results: list[ListenResult]) -> None:
        super().__init__(clock)
        self.results = list(results)
        self.specs: list[ListenSpec] = []
        self.languages: list[str | None] = []

    async def say(self, text: str, *, voice: str | None = None, language: str | None = None,
                  barge_in: BargeIn = BargeIn.NONE) -> PlayResult:
        self.languages.append(language)
        return await super().say(text, voice=voice, language=language, barge_in=barge_in)

    async def listen(self, spec: ListenSpec) -> ListenResult:
        self.specs.append(spec)
        return self.results.pop(0)


NOMATCH = ListenResult("nomatch", heard="what's the weather like", confidence=0.1)
SILENCE = ListenResult("no_input")


def menu_flow(**params: Any) -> Any:
    menu = {"id": "m", "type": "menu", "params": {
        "prompt": {"text": "Say billing or sales."},
        "options": [{"port": "billing", "keywords": ["billing"], "digits": ["1"]},
                    {"port": "sales", "keywords": ["sales"], "digits": ["2"]}],
        "no_match_prompt": {"text": "Sorry?"},
        "no_match_prompts": [{"text": "Please say billing or sales."},
                             {"text": "You can also press 1 or 2."}],
        "no_input_prompt": {"text": "I did not hear you."},
        **params}}
    ends = [{"id": p, "type": "hangup", "params": {}} for p in
            ("to_billing", "to_sales", "nm", "ni")]
    return compile_flow({
        "id": "f", "name": "f", "language": params.pop("flow_language", "en-US"),
        "nodes": [{"id": "start", "type": "start"}, menu, *ends],
        "edges": [{"from": "start", "port": "next", "to": "m"},
                  {"from": "m", "port": "billing", "to": "to_billing"},
                  {"from": "m", "port": "sales", "to": "to_sales"},
                  {"from": "m", "port": "no_match", "to": "nm"},
                  {"from": "m", "port": "no_input", "to": "ni"}]})


async def run(f: Any, call: ScriptedCall, clock: FakeClock) -> list[str]:
    # A guard against a hang, not a timing check (the flow runs on the fake clock): 5 s of
    # real time was too little for a box at load 13, where this failed while right.
    res = await asyncio.wait_for(Interpreter(f, call, clock=clock).run(), 60)
    return [t["node_id"] for t in res.trace]


def said(call: SimulatedCall) -> list[str]:
    return [o.text for o in call.outputs if o.kind == "say"]


async def test_nomatch_escalates_prompts_then_takes_no_match(fake_clock: FakeClock) -> None:
    call = ScriptedCall(fake_clock, [NOMATCH, NOMATCH, NOMATCH, NOMATCH])
    path = await run(menu_flow(max_retries=3), call, fake_clock)
    assert path == ["start", "m", "nm"]
    prompts = said(call)
    assert prompts == ["Say billing or sales.", "Sorry?", "Say billing or sales.",
                       "Please say billing or sales.", "Say billing or sales.",
                       "You can also press 1 or 2.", "Say billing or sales."]
    heard = [e.data for e in call.trace.entries if e.kind == "flow.no_match"]
    assert len(heard) == 4 and heard[0]["heard"] == "what's the weather like"


async def test_silence_and_nomatch_are_counted_apart(fake_clock: FakeClock) -> None:
    ok = ListenResult("ok", text="sales", confidence=0.9)
    call = ScriptedCall(fake_clock, [SILENCE, NOMATCH, ok])
    path = await run(menu_flow(max_retries=3), call, fake_clock)
    assert path == ["start", "m", "to_sales"]
    # the first no-match plays the first no-match prompt although a no-input came before it
    assert said(call)[1:4] == ["I did not hear you.", "Say billing or sales.", "Sorry?"]
    retries = [e.data["outcome"] for e in call.trace.entries if e.kind == "flow.retry"]
    assert retries == ["no_input", "no_match"]


async def test_max_no_match_ends_before_max_retries(fake_clock: FakeClock) -> None:
    call = ScriptedCall(fake_clock, [NOMATCH, SILENCE, NOMATCH, SILENCE])
    path = await run(menu_flow(max_retries=5, max_no_match=2), call, fake_clock)
    assert path == ["start", "m", "nm"]
    assert len(call.specs) == 3  # nomatch, silence, nomatch -> the second nomatch ends it


async def test_listen_node_maps_nomatch_and_auto_language(fake_clock: FakeClock) -> None:
    listen = {"id": "l", "type": "listen", "params": {
        "mode": "keywords", "intents": {"balance": ["查询余额"]}, "language": "auto",
        "max_retries": 1, "no_match_prompt": {"text": "请再说一遍"}}}
    f = compile_flow({
        "id": "g", "name": "g", "language": "auto",
        "nodes": [{"id": "start", "type": "start"}, listen,
                  {"id": "b", "type": "hangup", "params": {"prompt": {"text": "好的"}}},
                  {"id": "nm", "type": "hangup", "params": {}},
                  {"id": "ni", "type": "hangup", "params": {}}],
        "edges": [{"from": "start", "port": "next", "to": "l"},
                  {"from": "l", "port": "balance", "to": "b"},
                  {"from": "l", "port": "no_match", "to": "nm"},
                  {"from": "l", "port": "no_input", "to": "ni"}]})
    call = ScriptedCall(fake_clock, [
        ListenResult("nomatch", heard="今天天气怎么样", language="zh"),
        ListenResult("ok", text="查询余额", confidence=0.9, language="zh")])
    path = await run(f, call, fake_clock)
    assert path == ["start", "l", "b"]
    assert call.specs[0].language == "auto"
    assert call.specs[1].language == "auto"  # the node asks for detection on every turn
    adopted = [e.data for e in call.trace.entries if e.kind == "flow.language"]
    assert adopted and adopted[0]["language"] == "zh-CN"
    assert call.languages == ["zh-CN", "zh-CN"]  # the re-prompt and the answer: Mandarin
