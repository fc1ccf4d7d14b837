"""Flow engine figures: validation, expression/template evaluation, interpreter overhead, and
the worst cases a hostile flow can construct.

Run: ``python -m tests.bench.bench_flows`` (add ``--quick`` to skip the ordinary figures). The
interpreter figure is the engine's own cost per node (no audio, simulator Call, in-memory
services), i.e. what a flow adds to each caller turn. Worst cases: the most expensive expressions,
templates and nodes found while attacking the bounds (tests/unit/test_flows_bounds.py,
test_flows_expr_fuzz.py), timed (best and worst of several runs) and, in a separate run, their
peak Python allocation (tracemalloc); then validation of a 5,000-node flow, of the largest file
accepted, and of a 50 MB file.
"""

from __future__ import annotations

import asyncio
import json
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import Any

from core.clock import FakeClock
from flows.expr import MAX_TEXT_CHARS, MAX_VALUE_CELLS, ExprError, evaluate
from flows.interpreter import Interpreter, Limits
from flows.model import MAX_FLOW_BYTES
from flows.simulator import SimulatedCall
from flows.template import render
from flows.testcases import load_subflows, load_suite, run_suite
from flows.validator import FlowInvalid, compile_flow, load_flow_file, validate

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "flows"


def _timeit(fn: Any, n: int) -> float:
    t0 = time.perf_counter()
    for _ in range(n):
        fn()
    return (time.perf_counter() - t0) / n


def _chain_flow(steps: int) -> Any:
    """set/condition pairs in a chain (the validator refuses a silent loop of 2,000 visits)."""
    nodes: list[dict[str, Any]] = [{"id": "start", "type": "start"}]
    edges = []
    prev = ("start", "next")
    for i in range(steps // 2):
        cond = {"branches": [{"when": f"n < {steps}", "port": "go"}], "else_port": "stop"}
        nodes.append({"id": f"i{i}", "type": "set", "params": {"assign": {"n": "n + 1"}}})
        nodes.append({"id": f"c{i}", "type": "condition", "params": cond})
        edges += [
            {"from": prev[0], "port": prev[1], "to": f"i{i}"},
            {"from": f"i{i}", "port": "next", "to": f"c{i}"},
            {"from": f"c{i}", "port": "stop", "to": "bye"},
        ]
        prev = (f"c{i}", "go")
    nodes.append({"id": "bye", "type": "hangup"})
    edges.append({"from": prev[0], "port": prev[1], "to": "bye"})
    return compile_flow(
        {"id": "bench", "name": "bench", "variables": {"n": 0}, "nodes": nodes, "edges": edges}
    )


async def _interp_rate(steps: int) -> float:
    flow = _chain_flow(steps)
    clock = FakeClock()
    call = SimulatedCall(clock)
    limits = Limits(max_steps=10 * steps, max_visits_in_a_row=10 * steps)
    t0 = time.perf_counter()
    res = await Interpreter(flow, call, clock=clock, limits=limits).run()
    dt = time.perf_counter() - t0
    assert res.status == "hangup", res.reason
    return res.steps / dt


def _tower(levels: int) -> list[Any]:
    x: list[Any] = [0, 0]
    for _ in range(levels):
        x = [x, x]
    return x


N = MAX_VALUE_CELLS - 1
HOSTILE_SCOPE: dict[str, Any] = {
    "x": list(range(N)),
    "y": list(range(N)),
    "xs": [str(i) for i in range(N // 2)],
    "d": {str(i): i for i in range(7000)},
    "t": _tower(12),
    "u": _tower(12),
    "a": 2**120,
    "s": "ab" * (MAX_TEXT_CHARS // 2),
    "l": [0],
    "pin": "1234",
    "language": "zh-CN",
}
WORST_EXPRESSIONS = {
    "chained a*a (was 90+ s)": "a * a * a * a * a * a * a * a",
    "l + l doubling (was 2.7 GB)": " + ".join(["x"] * 3),
    "str() of a shared tower (was 13-50 s)": "str(t)",
    "== of two shared towers": "t == u",
    "== of near-limit lists until the step budget": " and ".join(["x == y"] * 20),
    "fresh measures of 4 near-limit values": "x == y and xs == xs and d == d and u == t",
    "'in' over a near-limit list, repeated": " or ".join(["'zz' in xs"] * 20),
    "min/max over near-limit lists": "min(x) + max(x) + min(x) + max(x)",
    "str() of a near-limit list": "len(str(x))",
    "upper() of 10,000 characters, x3": " + ".join(["upper(s)"] * 3),
    "list literal of shared towers": "[t, u, t]",
}
WORST_TEMPLATES = {
    "mask(-1e9) (was 1 GB)": "{{ pin | mask(0 - 1000000000) }}",
    "200 holes of str() on a near-limit list": "{{ str(x) }}" * 200,
    "200 holes of 10,000-char text": "{{ s }}" * 200,
    "money/number/digits of 100 values (zh-CN)": "{{ 1234.5 | money }}{{ a | digits }}" * 100,
}


def _timed(fn: Callable[[], Any], runs: int) -> tuple[float, float, str]:
    times = []
    outcome = "ok"
    for _ in range(runs):
        t0 = time.perf_counter()
        try:
            fn()
        except ExprError as e:
            outcome = f"{e.code}/{getattr(e, 'limit', '')}"
        times.append(time.perf_counter() - t0)
    return min(times), max(times), outcome


def _peak(fn: Callable[[], Any]) -> float:
    tracemalloc.start()
    try:
        fn()
    except (ExprError, FlowInvalid):
        pass
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return peak / 1e6


def worst_case_evaluations(runs: int = 20) -> None:
    print(f"worst-case evaluations (best/worst of {runs} runs, peak Python allocation):")
    cases: list[tuple[str, Callable[[], Any]]] = [
        (name, lambda src=src: evaluate(src, HOSTILE_SCOPE))
        for name, src in WORST_EXPRESSIONS.items()
    ]
    cases += [
        (name, lambda src=src: render(src, HOSTILE_SCOPE)) for name, src in WORST_TEMPLATES.items()
    ]
    for name, fn in cases:
        best, worst, outcome = _timed(fn, runs)
        print(
            f"  {name:46} {best * 1e3:7.2f} / {worst * 1e3:7.2f} ms  "
            f"{_peak(fn):6.2f} MB  -> {outcome}"
        )


def _set_node_flow(assign: dict[str, str]) -> Any:
    return compile_flow(
        {
            "id": "w",
            "name": "w",
            "variables": {k: v for k, v in HOSTILE_SCOPE.items() if k != "language"},
            "nodes": [
                {"id": "start", "type": "start"},
                {"id": "s", "type": "set", "params": {"assign": assign}},
                {"id": "bye", "type": "hangup"},
            ],
            "edges": [
                {"from": "start", "port": "next", "to": "s"},
                {"from": "s", "port": "next", "to": "bye"},
                {"from": "s", "port": "error", "to": "bye"},
            ],
        }
    )


async def _node_run(flow: Any) -> tuple[float, str]:
    """Run start -> set -> hangup; the time of the whole run, which is the set node's cost
    plus two trivial nodes."""
    clock = FakeClock()
    interp = Interpreter(flow, SimulatedCall(clock), clock=clock)
    t0 = time.perf_counter()
    res = await interp.run()
    return time.perf_counter() - t0, str(res.trace[1].get("detail", "ok"))


def worst_case_node(runs: int = 20) -> None:
    heavy = "x == y and xs == xs and d == d and u == t"
    flow = _set_node_flow({f"v{i}": heavy for i in range(50)})
    wall = []
    detail = ""
    for _ in range(runs):
        dt, detail = asyncio.run(_node_run(flow))
        wall.append(dt)
    peak = _peak(lambda: asyncio.run(_node_run(flow)))
    outcome = "steps" if "steps" in detail else detail[:30]
    print(
        f"worst-case set node (50 heavy assignments, one shared budget): "
        f"{min(wall) * 1e3:.2f} / {max(wall) * 1e3:.2f} ms, {peak:.2f} MB peak -> {outcome}"
    )


def big_flow(n_nodes: int, prompt_chars: int = 20) -> dict[str, Any]:
    """A chain of play/set/condition blocks with templates and expressions on every node."""
    nodes: list[dict[str, Any]] = [{"id": "start", "type": "start"}]
    edges: list[dict[str, str]] = []
    prev = ("start", "next")
    pad = "x" * prompt_chars
    for i in range(n_nodes // 3):
        p = {
            "id": f"p{i}",
            "type": "play",
            "params": {"prompt": {"text": f"{i} {{{{ n }}}} {pad}"}},
        }
        s = {"id": f"s{i}", "type": "set", "params": {"assign": {"n": "n + 1"}}}
        c = {
            "id": f"c{i}",
            "type": "condition",
            "params": {
                "branches": [{"when": "n > 3 and caller != ''", "port": "big"}],
                "else_port": "small",
            },
        }
        nodes += [p, s, c]
        edges += [
            {"from": prev[0], "port": prev[1], "to": p["id"]},
            {"from": p["id"], "port": "next", "to": s["id"]},
            {"from": s["id"], "port": "next", "to": c["id"]},
            {"from": c["id"], "port": "small", "to": "bye"},
        ]
        prev = (c["id"], "big")
    nodes.append({"id": "bye", "type": "hangup"})
    edges.append({"from": prev[0], "port": prev[1], "to": "bye"})
    return {"id": "big", "name": "big", "variables": {"n": 0}, "nodes": nodes, "edges": edges}


def validation_at_scale(runs: int = 5) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        cases = {
            "5,000 nodes": big_flow(5000),
            "near the size limit (5,000 nodes, long prompts)": big_flow(4998, 2450),
        }
        for name, doc in cases.items():
            path = Path(tmp) / "f.json"
            path.write_text(json.dumps(doc))
            size = path.stat().st_size

            def check(path: Path = path) -> None:
                assert validate(load_flow_file(path)) == []

            best, worst, _ = _timed(check, runs)
            print(
                f"validate {name} ({size / 1e6:.1f} MB): {best:.2f} / {worst:.2f} s, "
                f"{_peak(check):.0f} MB peak"
            )
        path = Path(tmp) / "huge.json"
        path.write_text(json.dumps({**big_flow(5000), "description": "x" * 50_000_000}))

        def refuse() -> None:
            try:
                load_flow_file(path)
            except FlowInvalid as e:
                assert e.problems[0].code == "too_large"

        best, worst, _ = _timed(refuse, runs)
        mb = path.stat().st_size / 1e6
        print(
            f"a {mb:.0f} MB file is refused (limit {MAX_FLOW_BYTES / 1e6:.0f} MB) in "
            f"{best * 1e3:.1f} / {worst * 1e3:.1f} ms, {_peak(refuse):.1f} MB peak"
        )


def main() -> None:
    worst_case_evaluations()
    worst_case_node()
    validation_at_scale()
    if "--quick" in sys.argv:
        return
    docs = {
        p.stem: json.loads(p.read_text())
        for p in EXAMPLES.glob("*.json")
        if not p.name.endswith(".cases.json")
    }
    big = docs["account_balance"]
    print(
        f"validate account_balance ({len(big['nodes'])} nodes): "
        f"{_timeit(lambda: validate(big), 200) * 1e3:.2f} ms"
    )
    scope = {"n": 7, "pin": "1234", "acct": {"owner": {"name": "Ada"}}}
    expr = "is_digits(pin) and int(pin) > 1000 and n % 2 == 1"
    per = _timeit(lambda: evaluate(expr, scope), 20000)
    print(f"expression eval (cached parse): {per * 1e6:.2f} us")
    tpl = "Hello {{ acct.owner.name | upper }}, your balance is {{ n | money }}."
    per = _timeit(lambda: render(tpl, scope), 20000)
    print(f"template render (cached compile): {per * 1e6:.2f} us")
    rate = asyncio.run(_interp_rate(2000))
    print(f"interpreter: {rate:,.0f} node steps/s ({1e6 / rate:.1f} us per node incl. trace)")
    total_cases = 0
    t0 = time.perf_counter()
    for name in ("account_balance", "outbound_notification", "satisfaction_survey"):
        suite = load_suite(EXAMPLES / f"{name}.cases.json")
        results = asyncio.run(run_suite(compile_flow(docs[name]), suite, load_subflows(suite)[0]))
        assert all(r.passed for r in results)
        total_cases += len(results)
    print(f"example test cases: {total_cases} cases in {time.perf_counter() - t0:.2f} s")


if __name__ == "__main__":
    main()
