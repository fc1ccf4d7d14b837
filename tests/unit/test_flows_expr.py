"""The sandboxed expression and template language: one test per rule, errors carry positions."""

from __future__ import annotations

import pytest

from flows.expr import ExprError, evaluate, parse, variables
from flows.template import compile_template, render

SCOPE = {
    "pin": "1234",
    "n": 7,
    "x": 2.5,
    "ok": True,
    "acct": {"owner": {"name": "Ada"}, "tags": ["vip", "new"]},
    "empty": "",
}


@pytest.mark.parametrize(
    ("src", "want"),
    [
        ("1 + 2 * 3", 7),
        ("(1 + 2) * 3", 9),
        ("-n + 10", 3),
        ("n % 4", 3),
        ("n / 2", 3.5),
        ("pin == '1234'", True),
        ('pin != "1234"', False),
        ("n >= 7 and n < 8", True),
        ("not ok or n == 7", True),
        ("false or 0 or 'x'", "x"),
        ("'vip' in acct.tags", True),
        ("'gold' not in acct.tags", True),
        ("'23' in pin", True),
        ("acct.owner.name", "Ada"),
        ("len(pin) == 4", True),
        ("upper(acct.owner.name)", "ADA"),
        ("startswith(pin, '12')", True),
        ("int(pin) + 1", 1235),
        ("default(missing.path, 'd')", "d"),
        ("default(empty, 'd')", "d"),
        ("[1, 2] + [3]", [1, 2, 3]),
        ("is_digits(pin)", True),
        ("'a' + 'b'", "ab"),
        ("null == null", True),
        ("round(x)", 2.0),
    ],
)
def test_evaluates(src: str, want: object) -> None:
    assert evaluate(src, SCOPE) == want


@pytest.mark.parametrize(
    ("src", "pos", "fragment"),
    [
        ("1 +", 3, "unexpected"),
        ("n == = 1", 5, "unexpected"),
        ("(1 + 2", 6, "expected ')'"),
        ("foo(1)", 0, "unknown function"),
        ("n $ 1", 2, "unexpected character"),
        ("acct.", 5, "field name"),
        ("", 0, "empty expression"),
        ("1 2", 2, "unexpected '2'"),
    ],
)
def test_syntax_errors_name_the_position(src: str, pos: int, fragment: str) -> None:
    with pytest.raises(ExprError) as e:
        parse(src)
    assert e.value.pos == pos
    assert fragment in str(e.value)


@pytest.mark.parametrize(
    ("src", "fragment"),
    [
        ("nope + 1", "undefined variable 'nope'"),
        ("pin + 1", "needs two numbers"),
        ("pin < 5", "cannot compare"),
        ("n / 0", "division by zero"),
        ("pin.__class__", "undefined variable 'pin.__class__'"),  # no attribute access
        ("acct.owner.__dict__", "undefined variable"),
        ("upper(n)", "needs text"),
        ("1 in n", "right side"),
    ],
)
def test_evaluation_errors(src: str, fragment: str) -> None:
    with pytest.raises(ExprError) as e:
        evaluate(src, SCOPE)
    assert fragment in str(e.value)


def test_no_python_reachable_through_names() -> None:
    # builtins and dunder names are just unknown variables, never Python objects
    for src in ("__import__", "__builtins__", "eval", "open"):
        with pytest.raises(ExprError, match="undefined variable"):
            evaluate(src, SCOPE)
    with pytest.raises(ExprError, match="unknown function"):
        parse("eval('1')")


def test_variables_lists_every_read_path() -> None:
    assert variables(parse("a.b > 1 and len(c) == d")) == {("a", "b"), ("c",), ("d",)}


def test_templates_render_with_filters() -> None:
    assert render("Hi {{ acct.owner.name | upper }}!", SCOPE) == "Hi ADA!"
    assert render("PIN {{ pin | digits }}", SCOPE) == "PIN 1 2 3 4"
    assert render("{{ 12.5 | money }}", {}) == "12 dollars and 50 cents"
    assert render("{{ pin | mask(2) }}", SCOPE) == "**34"
    assert render("{{ who | default('there') }}", {}) == "there"
    assert render("no holes", {}) == "no holes"
    assert render("{{ n + 1 }} items", SCOPE) == "8 items"


@pytest.mark.parametrize(
    ("src", "pos", "fragment"),
    [
        ("Hello {{ name", 6, "never closed"),
        ("Hello }} x", 6, "without"),
        ("{{ n | shout }}", 7, "unknown filter"),
        ("{{ }}", 3, "empty"),
        ("ab {{ n + }}", 10, "unexpected"),
    ],
)
def test_template_errors(src: str, pos: int, fragment: str) -> None:
    with pytest.raises(ExprError) as e:
        compile_template(src)
    assert fragment in str(e.value)
    assert e.value.pos == pos


def test_template_undefined_variable_is_an_error_without_default() -> None:
    with pytest.raises(ExprError, match="undefined variable 'who'"):
        render("Hi {{ who }}", {})
    assert compile_template("{{ who | default('x') }}").has_default(("who",))


# --- robustness: arbitrary text never escapes as anything but ExprError -------------------------

from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

_ALPHABET = st.sampled_from(list("abn01 9.'\"()[]{}|,+-*/%<>=!_ ") + ["and", "or", "not", "in"])


@settings(max_examples=400, deadline=None)
@given(st.lists(_ALPHABET, max_size=30).map("".join))
def test_fuzz_expressions_only_raise_expr_error(src: str) -> None:
    try:
        evaluate(src, {"a": 1, "b": "x", "n": [1, 2]})
    except ExprError:
        pass


@settings(max_examples=300, deadline=None)
@given(st.lists(_ALPHABET, max_size=30).map(lambda parts: "x {{" + "".join(parts) + "}} y"))
def test_fuzz_templates_only_raise_expr_error(src: str) -> None:
    try:
        render(src, {"a": 1, "b": "x", "n": [1, 2]})
    except ExprError:
        pass
