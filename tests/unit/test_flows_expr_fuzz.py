"""Grammar-based fuzzing of the expression and template language (hypothesis).

Expressions are generated from the language's own grammar (operators, unary, lists, every
function and filter, nesting) over a scope that sits near every bound: a 120-bit integer, a huge
float, 8,000-character text, text that grows when upper-cased, a 9,000-item list, a list that
shares one sub-list 8,192 times, a dict. The property: every input is either rejected with an
:class:`ExprError` or evaluates to a value inside the bounds, within the step budget. A CPU-time
guard (far above anything the bounds allow) turns a runaway into a failure instead of a hang.
"""

from __future__ import annotations

import time
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from flows.expr import (
    MAX_EVAL_STEPS,
    MAX_TEXT_CHARS,
    ExprError,
    Meter,
    check_value,
    eval_node,
    parse,
)
from flows.exprparse import FUNCTION_NAMES
from flows.template import compile_template

RUNAWAY_CPU_S = 2.0  # a hang detector, not a performance claim (see tests/bench/bench_flows.py)


def _tower(levels: int) -> list[Any]:
    x: list[Any] = [0, 0]
    for _ in range(levels):
        x = [x, x]
    return x


SCOPE: dict[str, Any] = {
    "a": 2**120,
    "b": -3,
    "f": 1.5e300,
    "s": "ab" * 4000,
    "t": "\ufb03" * 3500,  # "ﬃ": upper() triples it past the text bound
    "u": "\uff11\uff12",  # full-width 12
    "l": list(range(9000)),  # l + l crosses the value bound
    "n": _tower(12),  # 16,383 cells from 13 objects
    "d": {"k": list(range(100)), "s": "x", "z": {"q": [1.5, None, True]}},
    "language": "zh-CN",
}
for value in SCOPE.values():
    check_value(value)  # the scope itself is within bounds, so every result must be too

ATOMS = st.sampled_from(
    [
        *[k for k in SCOPE if k != "language"],
        "d.k",
        "d.s",
        "d.z.q",
        "missing",
        "0",
        "1",
        "7",
        "2.5",
        "100000000000000000000",
        "'x'",
        "''",
        "'12'",
        "[]",
        "true",
        "false",
        "null",
        "\uff11\uff12",
        "'2024-03-05'",
    ]
)
BINOPS = ["+", "-", "*", "/", "%", "==", "!=", "<", "<=", ">", ">=", "in", "not in", "and", "or"]
FUNCS1 = sorted(FUNCTION_NAMES)  # every function, called with one argument
FUNCS2 = ["contains", "startswith", "endswith", "round", "default", "min", "max"]
FILTERS0 = ["upper", "lower", "trim", "digits", "money", "number", "date", "length", "mask"]
FILTERS1 = ["default", "mask", "money", "digits", "number", "date"]


def _extend(inner: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    return st.one_of(
        st.builds(lambda x, op, y: f"({x} {op} {y})", inner, st.sampled_from(BINOPS), inner),
        st.builds(lambda op, x: f"{op}{x}", st.sampled_from(["-", "not "]), inner),
        st.builds(lambda xs: "[" + ", ".join(xs) + "]", st.lists(inner, max_size=4)),
        st.builds(lambda f, x: f"{f}({x})", st.sampled_from(FUNCS1), inner),
        st.builds(lambda f, x, y: f"{f}({x}, {y})", st.sampled_from(FUNCS2), inner, inner),
    )


EXPRESSIONS = st.recursive(ATOMS, _extend, max_leaves=40)

# Biased towards growth: the big values and the operations that make values bigger.
GROWTH = st.recursive(
    st.sampled_from(["a", "f", "s", "t", "l", "n", "d", "d.k", "[l]", "[n, n]", "'x'", "2"]),
    lambda inner: st.one_of(
        st.builds(lambda x, op, y: f"({x} {op} {y})", inner, st.sampled_from(["+", "*"]), inner),
        st.builds(lambda f, x: f"{f}({x})", st.sampled_from(["str", "upper", "lower"]), inner),
        st.builds(lambda xs: "[" + ", ".join(xs) + "]", st.lists(inner, min_size=1, max_size=3)),
    ),
    max_leaves=12,
)


def _filter(expr: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    return st.one_of(
        st.sampled_from(FILTERS0),
        st.builds(lambda f, x: f"{f}({x})", st.sampled_from(FILTERS1), expr),
    )


TEMPLATES = st.builds(
    "".join,
    st.lists(
        st.one_of(
            st.sampled_from(["Hello ", "您好，", " ", "x" * 500]),
            st.builds(
                lambda e, fs: "{{ " + " | ".join([e, *fs]) + " }}",
                EXPRESSIONS,
                st.lists(_filter(st.recursive(ATOMS, _extend, max_leaves=6)), max_size=3),
            ),
        ),
        min_size=1,
        max_size=6,
    ),
)


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(EXPRESSIONS, GROWTH))
def test_every_expression_is_rejected_or_bounded(src: str) -> None:
    started = time.process_time()
    meter = Meter()
    try:
        value = eval_node(parse(src), SCOPE, src, meter)
    except ExprError as e:
        assert e.code and e.reason
    else:
        check_value(value)  # raises LimitExceeded if a result escaped a bound
        assert meter.left >= 0 and MAX_EVAL_STEPS - meter.left >= 1
    assert time.process_time() - started < RUNAWAY_CPU_S, src


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(TEMPLATES, st.sampled_from(["zh-CN", "en-US"]))
def test_every_template_is_rejected_or_bounded(src: str, language: str) -> None:
    started = time.process_time()
    try:
        text = compile_template(src).render(SCOPE, language)
    except ExprError as e:
        assert e.code and e.reason
    else:
        assert isinstance(text, str) and len(text) <= MAX_TEXT_CHARS
    assert time.process_time() - started < RUNAWAY_CPU_S, src
