"""Flow engine figures: validation, expression/template evaluation, interpreter overhead.

Run: ``python -m tests.bench.bench_flows``. The interpreter figure is the engine's own cost per
node (no audio, simulator Call, in-memory services), i.e. what a flow adds to each caller turn.
"""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

from core.clock import FakeClock
from flows.expr import evaluate
from flows.interpreter import Interpreter, Limits
from flows.simulator import SimulatedCall
from flows.template import render
from flows.testcases import load_subflows, load_suite, run_suite
from flows.validator import compile_flow, validate

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "flows"


def _timeit(fn: Any, n: int) -> float:
    t0 = time.perf_counter()
    for _ in range(n):
        fn()
    return (time.perf_counter() - t0) / n


def _loop_flow(steps: int) -> Any:
    return compile_flow(
        {
            "id": "bench",
            "name": "bench",
            "variables": {"n": 0},
            "nodes": [
                {"id": "start", "type": "start"},
                {
                    "id": "inc",
                    "type": "set",
                    "params": {"assign": {"n": "n + 1"}},
                    "max_visits": steps,
                },
                {
                    "id": "check",
                    "type": "condition",
                    "params": {"branches": [{"when": "n < " + str(steps), "port": "loop"}]},
                },
                {"id": "bye", "type": "hangup"},
            ],
            "edges": [
                {"from": "start", "port": "next", "to": "inc"},
                {"from": "inc", "port": "next", "to": "check"},
                {"from": "inc", "port": "max_visits", "to": "bye"},
                {"from": "check", "port": "loop", "to": "inc"},
                {"from": "check", "port": "else", "to": "bye"},
            ],
        }
    )


async def _interp_rate(steps: int) -> float:
    flow = _loop_flow(steps)
    clock = FakeClock()
    call = SimulatedCall(clock)
    limits = Limits(max_steps=10 * steps, max_visits_in_a_row=10 * steps)
    t0 = time.perf_counter()
    res = await Interpreter(flow, call, clock=clock, limits=limits).run()
    dt = time.perf_counter() - t0
    assert res.status == "hangup", res.reason
    return res.steps / dt


def main() -> None:
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
