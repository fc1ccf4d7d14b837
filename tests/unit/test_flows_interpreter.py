"""The interpreter on the simulator: ports, error handling, guards, budgets, trace, subflows."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from core.call import ListenResult, ListenSpec
from core.clock import FakeClock
from flows.interpreter import Interpreter, Limits, RunResult
from flows.services import FlowServices, HttpResponse, MapFlowResolver
from flows.simulator import SimInput, SimulatedCall
from flows.validator import compile_flow

START = {"id": "start", "type": "start"}
BYE = {"id": "bye", "type": "hangup", "params": {"prompt": {"text": "bye"}}}


def flow(nodes: list[dict[str, Any]], edges: list[tuple[str, str, str]], **kw: Any) -> Any:
    return compile_flow(
        {
            "id": kw.pop("id", "t"),
            "name": "t",
            "nodes": nodes,
            "edges": [{"from": a, "port": p, "to": b} for a, p, b in edges],
            **kw,
        }
    )


async def run(compiled: Any, call: SimulatedCall, clock: FakeClock, **kw: Any) -> RunResult:
    return await asyncio.wait_for(Interpreter(compiled, call, clock=clock, **kw).run(), 5)


def say(text: str) -> dict[str, Any]:
    return {"prompt": {"text": text}}


async def test_walks_edges_and_traces_every_node(fake_clock: FakeClock) -> None:
    f = flow(
        [START, {"id": "p", "type": "play", "params": say("hello {{ caller }}")}, BYE],
        [("start", "next", "p"), ("p", "next", "bye")],
    )
    call = SimulatedCall(fake_clock, caller="+1555")
    res = await run(f, call, fake_clock)
    assert res.status == "hangup"
    assert [o.text for o in call.outputs if o.kind == "say"] == ["hello +1555", "bye"]
    assert [t["node_id"] for t in res.trace] == ["start", "p", "bye"]
    assert all({"entered_at", "left_at", "outcome", "duration_ms"} <= set(t) for t in res.trace)
    kinds = [(e.kind, e.data.get("node_id")) for e in call.trace.entries]
    assert ("node.enter", "p") in kinds and ("node.leave", "p") in kinds
    assert call.trace.entries[-1].kind == "flow.end"


async def test_error_port_is_taken_on_expression_failure(fake_clock: FakeClock) -> None:
    bad = {"id": "s", "type": "set", "params": {"assign": {"v": "x / 0"}}}
    oops = {"id": "oops", "type": "hangup", "params": {"prompt": {"text": "oops"}}}
    f = flow(
        [START, bad, BYE, oops],
        [("start", "next", "s"), ("s", "next", "bye"), ("s", "error", "oops")],
        variables={"x": 1},
    )
    call = SimulatedCall(fake_clock)
    res = await run(f, call, fake_clock)
    assert call.outputs[-2].text == "oops"
    assert res.trace[1]["outcome"] == "error" and "division by zero" in res.trace[1]["detail"]


async def test_unconnected_error_ends_the_call_with_a_reason(fake_clock: FakeClock) -> None:
    bad = {"id": "s", "type": "set", "params": {"assign": {"v": "int('abc')"}}}
    f = flow([START, bad, BYE], [("start", "next", "s"), ("s", "next", "bye")])
    call = SimulatedCall(fake_clock)
    res = await run(f, call, fake_clock)
    assert res.status == "error" and "'s' failed" in res.reason
    assert not call.is_active  # hung up, never left in silence


async def test_steps_guard(fake_clock: FakeClock) -> None:
    # a loop the caller keeps going (one key per round): only the per-call step limit stops it
    menu = {
        "id": "m",
        "type": "menu",
        "params": {"prompt": {"text": "press 1"}, "options": [{"port": "one", "digits": ["1"]}]},
        "max_visits": 1000,
    }
    a = {"id": "a", "type": "set", "params": {"assign": {"n": "n + 1"}}}
    f = flow(
        [START, menu, a, BYE],
        [
            ("start", "next", "m"),
            ("m", "one", "a"),
            ("a", "next", "m"),
            ("m", "no_input", "bye"),
            ("m", "no_match", "bye"),
            ("m", "max_visits", "bye"),
        ],
        variables={"n": 0},
    )
    call = SimulatedCall(fake_clock)
    call.feed_digits("1" * 100)
    res = await run(f, call, fake_clock, limits=Limits(max_steps=50))
    assert res.status == "loop_guard" and "50 steps" in res.reason
    assert res.steps == 51


async def test_visits_in_a_row_guard_without_caller_input(fake_clock: FakeClock) -> None:
    # the caller stays silent: the input node re-enters itself without any input in between
    ask = {
        "id": "ask",
        "type": "collect_digits",
        "params": {"variable": "d", "max_retries": 0},
        "max_visits": 50,
    }
    f = flow(
        [START, ask, BYE],
        [
            ("start", "next", "ask"),
            ("ask", "ok", "bye"),
            ("ask", "invalid", "bye"),
            ("ask", "no_input", "ask"),
            ("ask", "max_visits", "bye"),
        ],
    )
    call = SimulatedCall(fake_clock)
    for _ in range(20):
        call.feed(SimInput("silence"))
    res = await run(f, call, fake_clock)
    assert res.status == "loop_guard" and "10 times without caller input" in res.reason


async def test_max_visits_takes_its_port(fake_clock: FakeClock) -> None:
    a = {"id": "a", "type": "play", "params": say("again"), "max_visits": 3}
    out = {"id": "out", "type": "hangup", "params": {"prompt": {"text": "enough"}}}
    f = flow(
        [START, a, out], [("start", "next", "a"), ("a", "next", "a"), ("a", "max_visits", "out")]
    )
    call = SimulatedCall(fake_clock)
    res = await run(f, call, fake_clock)
    assert [o.text for o in call.outputs if o.kind == "say"] == ["again"] * 3 + ["enough"]
    assert res.trace[-2]["outcome"] == "max_visits"


class SlowHttp:
    def __init__(self) -> None:
        self.started = asyncio.Event()

    async def request(self, method: str, url: str, headers: Any, body: Any) -> HttpResponse:
        self.started.set()
        await asyncio.get_running_loop().create_future()
        raise AssertionError("unreachable")


async def test_budget_overrun_takes_over_budget_port(fake_clock: FakeClock) -> None:
    http = {
        "id": "h",
        "type": "http",
        "budget_ms": 500,
        "params": {"url": "http://127.0.0.1:9/x", "timeout_s": 5},
    }
    filler = {"id": "f", "type": "hangup", "params": {"prompt": {"text": "one moment"}}}
    f = flow(
        [START, http, BYE, filler],
        [("start", "next", "h"), ("h", "ok", "bye"), ("h", "over_budget", "f")],
    )
    slow = SlowHttp()
    call = SimulatedCall(fake_clock)
    task = asyncio.create_task(
        Interpreter(f, call, clock=fake_clock, services=FlowServices(http=slow)).run()
    )
    await asyncio.wait_for(slow.started.wait(), 2)
    await fake_clock.advance(0.4)
    assert not task.done()
    await fake_clock.advance(0.2)
    res = await asyncio.wait_for(task, 2)
    assert call.outputs[-2].text == "one moment"
    assert res.trace[1]["outcome"] == "over_budget"
    assert any(e.kind == "flow.over_budget" for e in call.trace.entries)


class SlowRecognizerCall(SimulatedCall):
    """Reports a recogniser that took 900 ms from end of speech to final."""

    async def listen(self, spec: ListenSpec) -> ListenResult:
        return ListenResult(status="ok", text="yes", timings={"speech_end": 1.0, "final": 1.9})


async def test_input_turn_over_budget_keeps_original_outcome(fake_clock: FakeClock) -> None:
    listen = {
        "id": "l",
        "type": "listen",
        "budget_ms": 300,
        "params": {"intents": {"yes": ["yes"], "no": ["no"]}},
    }
    late = {
        "id": "late",
        "type": "hangup",
        "params": {"prompt": {"text": "{{ over_budget_outcome }}"}},
    }
    f = flow(
        [START, listen, BYE, late],
        [
            ("start", "next", "l"),
            ("l", "yes", "bye"),
            ("l", "no", "bye"),
            ("l", "no_input", "bye"),
            ("l", "no_match", "bye"),
            ("l", "over_budget", "late"),
        ],
    )
    call = SlowRecognizerCall(fake_clock)
    res = await run(f, call, fake_clock)
    assert call.outputs[-2].text == "yes"
    assert res.trace[1]["turn_latency_ms"] == pytest.approx(900)


async def test_sensitive_digits_are_masked(fake_clock: FakeClock) -> None:
    pin = {
        "id": "pin",
        "type": "collect_digits",
        "params": {"variable": "pin", "min_digits": 4, "max_digits": 4, "sensitive": True},
    }
    f = flow(
        [START, pin, BYE],
        [
            ("start", "next", "pin"),
            ("pin", "ok", "bye"),
            ("pin", "no_input", "bye"),
            ("pin", "invalid", "bye"),
        ],
    )
    call = SimulatedCall(fake_clock)
    call.feed_digits("4711")
    res = await run(f, call, fake_clock)
    assert res.variables["pin"] == "****"
    dumped = str(call.trace.as_list()) + str(res.as_dict())
    assert "4711" not in dumped


async def test_caller_hangup_ends_the_run(fake_clock: FakeClock) -> None:
    menu = {
        "id": "m",
        "type": "menu",
        "params": {"prompt": {"text": "pick"}, "options": [{"port": "a", "digits": ["1"]}]},
    }
    f = flow(
        [START, menu, BYE],
        [
            ("start", "next", "m"),
            ("m", "a", "bye"),
            ("m", "no_input", "bye"),
            ("m", "no_match", "bye"),
        ],
    )
    call = SimulatedCall(fake_clock)
    call.feed(SimInput("hangup"))
    res = await run(f, call, fake_clock)
    assert res.status == "caller_hangup" and res.last_node == "m"


async def test_menu_no_input_retries_on_the_clock(fake_clock: FakeClock) -> None:
    menu = {
        "id": "m",
        "type": "menu",
        "params": {
            "prompt": {"text": "pick"},
            "options": [{"port": "a", "digits": ["1"]}],
            "no_input_prompt": {"text": "hello?"},
            "max_retries": 1,
            "timeout_s": 4,
        },
    }
    f = flow(
        [START, menu, BYE],
        [
            ("start", "next", "m"),
            ("m", "a", "bye"),
            ("m", "no_input", "bye"),
            ("m", "no_match", "bye"),
        ],
    )
    call = SimulatedCall(fake_clock)
    task = asyncio.create_task(Interpreter(f, call, clock=fake_clock).run())
    await asyncio.wait_for(call.idle.wait(), 2)
    await fake_clock.advance(3.9)
    assert [o.text for o in call.outputs] == ["pick"]
    await fake_clock.advance(0.2)
    await asyncio.wait_for(call.idle.wait(), 2)
    assert [o.text for o in call.outputs] == ["pick", "hello?", "pick"]
    call.feed_digits("1")
    res = await asyncio.wait_for(task, 2)
    assert res.trace[1]["outcome"] == "a"


async def test_subflow_runs_and_returns_outputs(fake_clock: FakeClock) -> None:
    child = {
        "id": "child",
        "name": "c",
        "variables": {"x": 0, "y": 0},
        "nodes": [
            START,
            {"id": "s", "type": "set", "params": {"assign": {"y": "x * 2"}}},
            {"id": "r", "type": "return"},
        ],
        "edges": [
            {"from": "start", "port": "next", "to": "s"},
            {"from": "s", "port": "next", "to": "r"},
        ],
    }
    sub = {
        "id": "sub",
        "type": "subflow",
        "params": {"flow_id": "child", "inputs": {"x": "21"}, "outputs": {"answer": "y"}},
    }
    f = flow([START, sub, BYE], [("start", "next", "sub"), ("sub", "done", "bye")])
    call = SimulatedCall(fake_clock)
    res = await run(
        f, call, fake_clock, services=FlowServices(flows=MapFlowResolver({"child": child}))
    )
    assert res.variables["answer"] == 42
    assert [t["flow_id"] for t in res.trace] == ["t", "t", "child", "child", "child", "t"]


async def test_missing_subflow_takes_error_port(fake_clock: FakeClock) -> None:
    sub = {"id": "sub", "type": "subflow", "params": {"flow_id": "nope"}}
    err = {"id": "err", "type": "hangup", "params": {"prompt": {"text": "no sub"}}}
    f = flow(
        [START, sub, BYE, err],
        [("start", "next", "sub"), ("sub", "done", "bye"), ("sub", "error", "err")],
    )
    call = SimulatedCall(fake_clock)
    await run(f, call, fake_clock)
    assert call.outputs[-2].text == "no sub"


async def test_transfer_failure_takes_failed_port(fake_clock: FakeClock) -> None:
    tr = {"id": "tr", "type": "transfer", "params": {"target": "{{ callee }}"}}
    f = flow([START, tr, BYE], [("start", "next", "tr"), ("tr", "failed", "bye")])
    call = SimulatedCall(fake_clock, callee="+1800", failing_transfers={"+1800"})
    res = await run(f, call, fake_clock)
    assert res.status == "hangup" and res.trace[1]["outcome"] == "failed"
    ok_call = SimulatedCall(fake_clock, callee="+1801")
    res2 = await run(f, ok_call, fake_clock)
    assert res2.status == "transferred" and ok_call.transfers == ["+1801"]


async def test_node_events_go_to_the_bus(fake_clock: FakeClock) -> None:
    from core.bus import EventBus

    bus = EventBus()
    sub = bus.subscribe("flow.")
    f = flow([START, BYE], [("start", "next", "bye")])
    call = SimulatedCall(fake_clock)
    await Interpreter(f, call, clock=fake_clock, events=bus).run()
    got = [sub.queue.get_nowait() for _ in range(sub.queue.qsize())]
    assert [(e.topic, e.data.get("node_id")) for e in got] == [
        ("flow.enter", "start"),
        ("flow.node", "start"),
        ("flow.enter", "bye"),
        ("flow.node", "bye"),
        ("flow.end", None),
    ]
    assert got[-1].call_id == call.call_id and got[-1].data["status"] == "hangup"


async def test_type_ahead_digits_are_used_once(fake_clock: FakeClock) -> None:
    """Keys pressed before/while a prompt plays skip it and are consumed exactly once."""
    menu = {
        "id": "m",
        "type": "menu",
        "params": {
            "prompt": {"text": "menu prompt"},
            "options": [{"port": "acct", "digits": ["1"]}],
        },
    }
    acct = {
        "id": "a",
        "type": "collect_digits",
        "params": {
            "prompt": {"text": "account prompt"},
            "variable": "account",
            "min_digits": 6,
            "max_digits": 8,
        },
    }
    f = flow(
        [START, menu, acct, BYE],
        [
            ("start", "next", "m"),
            ("m", "acct", "a"),
            ("m", "no_input", "bye"),
            ("m", "no_match", "bye"),
            ("a", "ok", "bye"),
            ("a", "no_input", "bye"),
            ("a", "invalid", "bye"),
        ],
    )
    call = SimulatedCall(fake_clock)
    call.feed_digits("1123456#")
    res = await run(f, call, fake_clock)
    assert res.variables["account"] == "123456"
    assert [o.text for o in call.outputs] == ["bye", "normal"]  # both prompts skipped
    assert sum(e.kind == "play.skipped" for e in call.trace.entries) == 2
