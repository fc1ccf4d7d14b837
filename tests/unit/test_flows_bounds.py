"""Expressions and templates under hostile input: every bound holds while evaluating.

Each test is one construction that used to burn the event loop's CPU or memory (chained ``a*a``,
``l + l`` doubling, ``str()``/``==`` of lists sharing sub-lists, ``mask(-1e9)``, rendering huge
integers or ``inf``) or crash the parser's recursion. Now each is refused by the bound it hits,
named by the error's ``code`` and ``limit``.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from core.clock import FakeClock
from flows.expr import (
    MAX_EVAL_STEPS,
    MAX_INT_BITS,
    MAX_TEXT_CHARS,
    MAX_VALUE_CELLS,
    ExprError,
    ExprLimitError,
    ExprRuntimeError,
    ExprTooDeep,
    evaluate,
    parse,
)
from flows.interpreter import Interpreter, RunResult
from flows.simulator import SimulatedCall
from flows.template import compile_template, render
from flows.validator import compile_flow, validate


def limit_of(src: str, scope: dict[str, Any]) -> str:
    with pytest.raises(ExprLimitError) as e:
        evaluate(src, scope)
    assert e.value.code == "expression_limit"
    return e.value.limit


def shared_tower(levels: int) -> list[Any]:
    """[x, x] nested ``levels`` times: ``levels`` objects, 2**levels leaves."""
    x: list[Any] = [0, 0]
    for _ in range(levels):
        x = [x, x]
    return x


# --- integers, lists, text ------------------------------------------------------------------------


def test_integer_results_are_bounded_while_evaluating() -> None:
    assert limit_of("a * a", {"a": 2**100}) == "integer"
    assert limit_of("a * a * a * a * a * a * a * a", {"a": 2**20}) == "integer"
    assert evaluate("a * a", {"a": 2**60}) == 2**120  # a big but legal product


def test_integer_literals_and_conversions_are_bounded() -> None:
    with pytest.raises(ExprError, match="larger than 128 bits"):
        parse("9" * 60)
    with pytest.raises(ExprRuntimeError, match="cannot read"):
        evaluate("int(s)", {"s": "9" * 5000})
    assert limit_of("int(x)", {"x": 1e300}) == "integer"
    assert limit_of("float(s)", {"s": "1e999"}) == "number"
    assert limit_of("x * x", {"x": 1e300}) == "number"


def test_round_digits_are_bounded() -> None:
    with pytest.raises(ExprRuntimeError, match="digits must be between"):
        evaluate("round(7, 0 - n)", {"n": 2**120})


def test_list_doubling_stops_at_the_value_bound() -> None:
    assert limit_of("l + l", {"l": list(range(MAX_VALUE_CELLS // 2 + 1))}) == "value"
    big = list(range(MAX_VALUE_CELLS // 4))
    assert len(evaluate("l + l", {"l": big})) == 2 * len(big)


def test_list_literals_of_shared_values_count_every_reference() -> None:
    scope = {"x": shared_tower(12)}  # 8,191 cells
    assert limit_of("[x, x]", scope) == "value"
    assert limit_of("[[x]] + [x]", scope) == "value"


@pytest.mark.parametrize("src", ["str(x)", "x == y", "x != y", "y in [x]", "contains([x], y)"])
def test_walking_a_shared_tower_is_refused_not_expanded(src: str) -> None:
    # 2**40 leaves if expanded: str() alone took 13-50 s and 3 GB before
    scope = {"x": shared_tower(40), "y": shared_tower(40)}
    assert limit_of(src, scope) in ("value", "depth")


def test_values_nested_too_deeply_are_refused() -> None:
    deep: list[Any] = []
    for _ in range(100):
        deep = [deep]
    assert limit_of("str(x)", {"x": deep}) == "depth"


def test_a_value_that_contains_itself_is_refused() -> None:
    loop: list[Any] = [1]
    loop.append(loop)
    assert limit_of("str(x)", {"x": loop}) == "value"


def test_text_results_are_bounded() -> None:
    s = "x" * (MAX_TEXT_CHARS // 2 + 1)
    assert limit_of("s + s", {"s": s}) == "text"
    assert limit_of("upper(s)", {"s": "\ufb03" * 4000}) == "text"  # 'ﬃ' upper-cases to 3 chars


def test_the_step_budget_stops_many_cheap_operations() -> None:
    n = MAX_VALUE_CELLS - 1
    scope = {"x": list(range(n)), "y": list(range(n))}
    rounds = MAX_EVAL_STEPS // n + 2
    assert limit_of(" and ".join(["x == y"] * rounds), scope) == "steps"


def test_errors_name_the_operation_position() -> None:
    with pytest.raises(ExprLimitError) as e:
        evaluate("1 + a * a", {"a": 2**100})
    assert e.value.pos == 6


# --- templates ------------------------------------------------------------------------------------


def test_mask_with_a_huge_negative_keep_allocates_nothing() -> None:
    assert render("{{ pin | mask(0 - 1000000000) }}", {"pin": "1234"}) == "****"
    assert render("{{ pin | mask(1000000000) }}", {"pin": "1234"}) == "1234"


def test_rendering_bad_numbers_is_a_template_error_not_a_crash() -> None:
    for src, scope in (
        ("{{ x }}", {"x": 10**5000}),
        ("{{ x | money }}", {"x": float("inf")}),
        ("{{ x | money }}", {"x": float("nan")}),
        ("{{ x | money }}", {"x": 10**30}),
        ("{{ x | digits }}", {"x": 10**5000}),
    ):
        with pytest.raises(ExprError) as e:
            render(src, scope)
        assert "set_int_max_str_digits" not in str(e.value), src


def test_rendered_text_is_bounded_as_it_grows() -> None:
    s = "y" * 4000
    with pytest.raises(ExprLimitError, match="rendered text longer than"):
        render("{{ s }}{{ s }}{{ s }}", {"s": s})


def test_one_render_shares_one_step_budget() -> None:
    n = MAX_VALUE_CELLS - 1
    scope = {"x": list(range(n)), "y": list(range(n))}
    holes = "".join("{{ x == y }}" for _ in range(MAX_EVAL_STEPS // n + 2))
    with pytest.raises(ExprLimitError) as e:
        render(holes, scope)
    assert e.value.limit == "steps"


def test_template_source_is_bounded() -> None:
    with pytest.raises(ExprError) as e:
        compile_template("x" * 1_000_001)
    assert e.value.code == "too_long"


# --- parsing depth: never a RecursionError --------------------------------------------------------


@pytest.mark.parametrize(
    "src",
    [
        "(" * 124 + "1" + ")" * 124,
        "[" * 110 + "]" * 110,
        "not " * 200 + "true",
        "-" * 300 + "1",
        "len(" * 80 + "'x'" + ")" * 80,
        " + ".join(["1"] * 450),
        " or ".join(["x"] * 300),
    ],
)
def test_deep_expressions_are_refused_with_a_code(src: str) -> None:
    with pytest.raises(ExprTooDeep) as e:
        parse(src)
    assert e.value.code == "too_deep"


def test_deep_template_is_refused_with_a_code() -> None:
    with pytest.raises(ExprTooDeep):
        compile_template("{{ " + "(" * 130 + "1" + ")" * 130 + " }}")


def test_reasonable_nesting_still_parses() -> None:
    assert evaluate("(" * 20 + "1" + ")" * 20, {}) == 1
    assert evaluate(" + ".join(["1"] * 60), {}) == 60


# --- Unicode digits: normalised, consistently -----------------------------------------------------


def test_unicode_digits_mean_the_same_digits_everywhere() -> None:
    assert evaluate("\uff11\uff12 + \u0661", {}) == 13  # full-width 12, Arabic-Indic 1
    assert evaluate("int(s)", {"s": "\uff11\uff12"}) == 12
    assert evaluate("float(s)", {"s": "\u0661.\u0665"}) == 1.5
    assert evaluate("is_digits(s)", {"s": "\uff11\uff12"}) is True
    assert evaluate("is_digits(s)", {"s": "\u00b2"}) is False  # superscript two is not a digit
    assert evaluate("is_digits(s)", {"s": "\u4e94"}) is False  # 五 is a numeral, not a digit
    assert render("{{ s | digits }}", {"s": "\uff11\uff12"}) == "1 2"
    with pytest.raises(ExprRuntimeError):
        evaluate("int(s)", {"s": "\u00b2"})


# --- in a flow: the node takes its error port, the call goes on -----------------------------------


def set_flow(assign: dict[str, str], variables: dict[str, Any], **node: Any) -> Any:
    return compile_flow(
        {
            "id": "b",
            "name": "b",
            "variables": variables,
            "nodes": [
                {"id": "start", "type": "start"},
                {"id": "grow", "type": "set", "params": {"assign": assign}, **node},
                {"id": "bye", "type": "hangup"},
                {"id": "oops", "type": "hangup", "params": {"reason": "error"}},
            ],
            "edges": [
                {"from": "start", "port": "next", "to": "grow"},
                {"from": "grow", "port": "next", "to": "bye"},
                {"from": "grow", "port": "error", "to": "oops"},
            ],
        }
    )


async def run(flow: Any, **kw: Any) -> RunResult:
    clock = FakeClock()
    return await asyncio.wait_for(
        Interpreter(flow, SimulatedCall(clock), clock=clock, **kw).run(), 30
    )


async def test_chained_squares_in_one_set_node_take_the_error_port() -> None:
    names = [f"v{i}" for i in range(30)]
    assign = {
        names[0]: "a * a",
        **{names[i]: f"{names[i - 1]} * {names[i - 1]}" for i in range(1, 30)},
    }
    res = await run(set_flow(assign, {"a": 3}))
    assert res.trace[-1]["node_id"] == "oops"
    assert f"integer larger than {MAX_INT_BITS} bits" in res.trace[1]["detail"]


async def test_doubling_a_list_variable_in_a_loop_takes_the_error_port() -> None:
    flow = compile_flow(
        {
            "id": "d",
            "name": "d",
            "variables": {"l": [0]},
            "nodes": [
                {"id": "start", "type": "start"},
                {
                    "id": "grow",
                    "type": "set",
                    "params": {"assign": {"l": "l + l + l + l"}},
                    "max_visits": 9,
                },
                {"id": "bye", "type": "hangup"},
                {"id": "oops", "type": "hangup", "params": {"reason": "error"}},
            ],
            "edges": [
                {"from": "start", "port": "next", "to": "grow"},
                {"from": "grow", "port": "next", "to": "grow"},
                {"from": "grow", "port": "max_visits", "to": "bye"},
                {"from": "grow", "port": "error", "to": "oops"},
            ],
        }
    )
    res = await run(flow)
    assert res.trace[-1]["node_id"] == "oops", res.reason
    assert "value larger than" in res.trace[-2]["detail"]


async def test_shared_lists_cannot_be_built_across_set_nodes() -> None:
    assign = {"b": "[a, a]", "c": "[b, b]", "d": "[c, c]", "e": "[d, d]", "f": "[e, e]"}
    res = await run(set_flow(assign, {"a": list(range(2000))}))
    assert res.trace[-1]["node_id"] == "oops"
    assert "value larger than" in res.trace[1]["detail"]


def test_validator_reports_deep_expressions_with_a_code() -> None:
    doc = {
        "id": "v",
        "name": "v",
        "nodes": [
            {"id": "start", "type": "start"},
            {"id": "s", "type": "set", "params": {"assign": {"x": "(" * 124 + "1" + ")" * 124}}},
            {
                "id": "p",
                "type": "play",
                "params": {"prompt": {"text": "{{ " + "[" * 130 + "]" * 130 + " }}"}},
            },
            {"id": "bye", "type": "hangup"},
        ],
        "edges": [
            {"from": "start", "port": "next", "to": "s"},
            {"from": "s", "port": "next", "to": "p"},
            {"from": "p", "port": "next", "to": "bye"},
        ],
    }
    codes = {(p.node_id, p.code) for p in validate(doc)}
    assert ("s", "too_deep") in codes and ("p", "too_deep") in codes


def test_template_holes_are_bounded() -> None:
    assert render("{{ 1 }}" * 200, {}) == "1" * 200
    with pytest.raises(ExprError) as e:
        compile_template("{{ 1 }}" * 201)
    assert e.value.code == "too_long"


async def test_one_node_shares_one_budget_across_its_assignments() -> None:
    # each assignment alone is within the budget; together they are not
    n = MAX_VALUE_CELLS - 1
    one = "x == y"  # measuring both and comparing them once nearly fills one budget
    res = await run(
        set_flow({f"v{i}": one for i in range(10)}, {"x": list(range(n)), "y": list(range(n))})
    )
    assert res.trace[-1]["node_id"] == "oops"
    assert "steps" in res.trace[1]["detail"]
    assert evaluate(one, {"x": list(range(n)), "y": list(range(n))}) is True
