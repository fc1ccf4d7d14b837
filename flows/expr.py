"""The sandboxed expression language: evaluation within hard time and memory bounds.

A flow is untrusted input that runs on the engine's event loop, so no expression may take more
than a few milliseconds or a few megabytes, whatever its author tries: ``a * a`` chained on big
integers, ``l + l`` doubling a list, ``str()`` of a list that holds itself twice per level. The
bounds are enforced *while* evaluating, before an operation can grow a value past them:

- every integer result fits in :data:`MAX_INT_BITS` bits, every float is finite;
- every text result is at most :data:`MAX_TEXT_CHARS` characters;
- every list/dict value is at most :data:`MAX_VALUE_CELLS` cells (one per item, key and scalar,
  plus one per :data:`TEXT_CELL_CHARS` characters of text) counted as a tree, so a list that holds
  one sub-list twice counts it twice, and at most :data:`MAX_VALUE_DEPTH` levels deep;
- one evaluation (an expression, or a whole template) spends at most :data:`MAX_EVAL_STEPS`
  steps: one per AST node plus the size of what each operation walks or copies. A flow node
  shares one budget across everything it evaluates (a ``set`` node with many assignments, a
  prompt re-rendered on retries), so the bound holds per node too.

Sizes are measured once per object (a memo keyed by ``id`` that also keeps the object alive), so
measuring a value built from shared parts costs its number of distinct parts. Each failure is its
own :class:`~flows.exprparse.ExprError` subclass with the position of the operation that hit it.
The same checks guard what is stored in flow variables (:func:`check_value`).

Parsing lives in :mod:`flows.exprparse`; this module re-exports its public names.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Mapping
from typing import Any

from flows.exprparse import (
    FUNCTION_NAMES,
    MAX_EXPR_CHARS,
    Binary,
    Call,
    ExprError,
    ExprLimitError,
    ExprRuntimeError,
    ExprSyntaxError,
    ExprTooDeep,
    ExprTooLong,
    ListLit,
    Lit,
    Node,
    Unary,
    UndefinedVariable,
    Var,
    parse,
    tokenize,
    variables,
)
from flows.i18n import ascii_digits

MAX_INT_BITS = 128
MAX_TEXT_CHARS = 10_000
MAX_STRING_RESULT = MAX_TEXT_CHARS  # the older name, kept for callers
MAX_VALUE_CELLS = 16_384
MAX_VALUE_DEPTH = 32
MAX_EVAL_STEPS = 50_000
TEXT_CELL_CHARS = 32
MAX_NUMBER_TEXT_CHARS = 100  # int()/float() refuse longer text (conversion cost grows fast)
MAX_ROUND_DIGITS = 15

_INT_TEXT = re.compile(r"^\s*[+-]?\d+\s*$")
_FLOAT_TEXT = re.compile(r"^\s*[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?\s*$")


class LimitExceeded(Exception):
    """A bound was hit; turned into :class:`ExprLimitError` (with position) by the evaluator."""

    def __init__(self, limit: str, message: str) -> None:
        super().__init__(message)
        self.limit = limit


# --- measuring and charging --------------------------------------------------------------------


class Meter:
    """One evaluation's step budget and a memo of measured containers.

    The memo maps ``id(obj)`` to ``(obj, cells, depth)``; holding ``obj`` keeps the id unique for
    the meter's lifetime, so a value built from shared parts is measured in time proportional to
    its distinct parts while its cells count every reference.
    """

    __slots__ = ("_memo", "left")

    def __init__(self, steps: int = MAX_EVAL_STEPS) -> None:
        self.left = steps
        self._memo: dict[int, tuple[Any, int, int]] = {}

    def charge(self, steps: int) -> None:
        self.left -= steps
        if self.left < 0:
            raise LimitExceeded("steps", f"evaluation needs more than {MAX_EVAL_STEPS} steps")

    def cells(self, value: Any) -> int:
        return self.measure(value)[0]

    def measure(self, value: Any) -> tuple[int, int]:
        """``(cells, depth)`` of ``value``; raises :class:`LimitExceeded` past any bound."""
        kind = type(value)  # exact types first: this runs on every result
        if kind is int:
            if value.bit_length() > MAX_INT_BITS:
                check_int(value)
            return 1, 0
        if kind is str:
            if len(value) > MAX_TEXT_CHARS:
                raise LimitExceeded("text", f"text longer than {MAX_TEXT_CHARS} characters")
            return 1 + len(value) // TEXT_CELL_CHARS, 0
        if kind is bool or value is None:
            return 1, 0
        if kind is float:
            check_float(value)
            return 1, 0
        if isinstance(value, list | dict):
            hit = self._memo.get(id(value))
            if hit is not None:
                return hit[1], hit[2]
            return self._measure_tree(value)
        if isinstance(value, str):  # subclasses of the JSON types: checked like them
            return self.measure(str(value))
        if isinstance(value, int):
            check_int(value)
        elif isinstance(value, float):
            check_float(value)
        return 1, 0  # an opaque object a service put in the scope: one cell, never walked

    def _measure_tree(self, root: list[Any] | dict[str, Any]) -> tuple[int, int]:
        # Iterative post-order walk over containers not yet in the memo; the scalar items of
        # each container are checked in bulk (C-speed map/sum), only containers are walked.
        memo = self._memo
        cells, kids = self._shallow(root)
        stack: list[list[Any]] = [[root, iter(kids), cells, 0]]  # obj, containers, cells, depth
        on_path = {id(root)}
        while stack:
            top = stack[-1]
            for child in top[1]:
                hit = memo.get(id(child))
                if hit is None:
                    if id(child) in on_path:
                        raise LimitExceeded("value", "a value that contains itself")
                    if len(stack) >= MAX_VALUE_DEPTH:
                        raise LimitExceeded(
                            "depth", f"value nested deeper than {MAX_VALUE_DEPTH} levels"
                        )
                    on_path.add(id(child))
                    cells, kids = self._shallow(child)
                    stack.append([child, iter(kids), cells, 0])
                    break
                _add_child(top, hit[1], hit[2])
            else:
                stack.pop()
                on_path.discard(id(top[0]))
                depth = top[3] + 1
                if depth > MAX_VALUE_DEPTH:
                    raise LimitExceeded(
                        "depth", f"value nested deeper than {MAX_VALUE_DEPTH} levels"
                    )
                memo[id(top[0])] = (top[0], top[2], depth)
                if stack:
                    _add_child(stack[-1], top[2], depth)
        _, cells, depth = memo[id(root)]
        return cells, depth

    def _shallow(self, value: list[Any] | dict[str, Any]) -> tuple[int, list[Any]]:
        """Cells of the container and its scalar items (bounds checked); its container items."""
        items: list[Any] = list(value.values()) if isinstance(value, dict) else value
        keys: list[Any] = list(value) if isinstance(value, dict) else []
        self.charge(1 + len(items) + len(keys))
        cells = 1 + len(items) + len(keys)
        if cells > MAX_VALUE_CELLS:
            raise _too_large()
        kids: list[Any] = []
        groups: dict[type, list[Any]] = {}
        kinds = set(map(type, items))
        if len(kinds) == 1:
            groups[next(iter(kinds))] = items
        else:
            for kind in kinds:
                groups[kind] = [v for v in items if type(v) is kind]
        if keys:  # JSON keys are text; anything else is measured like an item
            text_keys = [k for k in keys if type(k) is str]
            groups[_KeyText] = text_keys
            if len(text_keys) != len(keys):
                groups[object] = [k for k in keys if type(k) is not str]
        for kind, group in groups.items():
            if kind is str or kind is _KeyText:
                longest = max(map(len, group), default=0)
                if longest > MAX_TEXT_CHARS:
                    raise LimitExceeded("text", f"text longer than {MAX_TEXT_CHARS} characters")
                cells += sum(map(len, group)) // TEXT_CELL_CHARS
            elif kind is int:
                if max(map(int.bit_length, group), default=0) > MAX_INT_BITS:
                    raise LimitExceeded("integer", f"integer larger than {MAX_INT_BITS} bits")
            elif kind is float:
                if not all(map(math.isfinite, group)):
                    raise LimitExceeded("number", "result is not a finite number")
            elif kind is list or kind is dict:
                kids.extend(group)
            elif kind is not bool and kind is not type(None):
                for v in group:  # subclasses and other objects: one at a time
                    if isinstance(v, list | dict):
                        kids.append(v)
                    else:
                        cells += self.measure(v)[0] - 1
        cells -= len(kids)  # a container item's cell is counted with its own contents
        if cells > MAX_VALUE_CELLS:
            raise _too_large()
        return cells, kids

    def admit(self, value: Any) -> Any:
        """Check a freshly made result against every bound and return it."""
        self.measure(value)
        return value


class _KeyText:
    """Group marker for a dict's text keys (kept apart so the item list is never extended)."""


def _add_child(frame: list[Any], cells: int, depth: int) -> None:
    frame[2] += cells
    frame[3] = max(frame[3], depth)
    if frame[2] > MAX_VALUE_CELLS:
        raise _too_large()


def _too_large() -> LimitExceeded:
    return LimitExceeded(
        "value",
        f"value larger than {MAX_VALUE_CELLS} cells (one per item and number, plus one per "
        f"{TEXT_CELL_CHARS} characters of text)",
    )


def check_int(value: int) -> None:
    if value.bit_length() > MAX_INT_BITS:
        raise LimitExceeded("integer", f"integer larger than {MAX_INT_BITS} bits")


def check_float(value: float) -> None:
    if not math.isfinite(value):
        raise LimitExceeded("number", "result is not a finite number")


def check_value(value: Any, meter: Meter | None = None) -> None:
    """Raise :class:`LimitExceeded` unless ``value`` may be stored in a flow variable."""
    (meter or Meter()).measure(value)


# --- conversions -------------------------------------------------------------------------------


def _text_cost(meter: Meter, *texts: str) -> None:
    meter.charge(1 + sum(len(t) for t in texts) // TEXT_CELL_CHARS)


def to_text(value: Any, meter: Meter | None = None) -> str:
    """How a value reads in text: '' for null, true/false, numbers as written, lists and dicts
    as JSON. Bounded: containers are measured (charged to ``meter``) before they are written."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value
    meter = meter or Meter()
    if isinstance(value, int):
        check_int(value)
        return str(value)
    if isinstance(value, float):
        check_float(value)
        return repr(value)
    if isinstance(value, list | dict):
        cells = meter.cells(value)
        if cells > MAX_TEXT_CHARS:  # its JSON has at least one character per cell
            raise LimitExceeded("text", f"text longer than {MAX_TEXT_CHARS} characters")
        meter.charge(cells)
        text = json.dumps(value, ensure_ascii=False, default=str)
        if len(text) > MAX_TEXT_CHARS:
            raise LimitExceeded("text", f"text longer than {MAX_TEXT_CHARS} characters")
        return text
    return str(value)[:MAX_TEXT_CHARS]


def _str_only(name: str, value: Any) -> str:
    if not isinstance(value, str):
        raise TypeError(f"{name}() needs text, got {type(value).__name__}")
    return value


def to_int(value: Any) -> int:
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        check_float(value)
        result = int(value)
        check_int(result)
        return result
    if isinstance(value, str):
        text = ascii_digits(value)
        if len(text) > MAX_NUMBER_TEXT_CHARS or not _INT_TEXT.match(text):
            raise ValueError(f"int() cannot read {value[:20]!r} as a whole number")
        result = int(text)
        check_int(result)
        return result
    raise TypeError(f"int() cannot convert {type(value).__name__}")


def to_float(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise TypeError(f"float() cannot convert {type(value).__name__}")
    if isinstance(value, str):
        text = ascii_digits(value)
        if len(text) > MAX_NUMBER_TEXT_CHARS or not _FLOAT_TEXT.match(text):
            raise ValueError(f"float() cannot read {value[:20]!r} as a number")
        value = text
    result = float(value)
    check_float(result)
    return result


# --- functions ---------------------------------------------------------------------------------
# Each takes the meter first so it can charge for what it walks, copies or writes.


def _len(m: Meter, v: Any) -> int:
    if not isinstance(v, str | list | dict):
        raise TypeError(f"len() does not accept {type(v).__name__}")
    return len(v)


def _case(name: str) -> Callable[[Meter, Any], str]:
    def fn(m: Meter, v: Any) -> str:
        text = _str_only(name, v)
        _text_cost(m, text)
        return m.admit(getattr(text, {"trim": "strip"}.get(name, name))())

    return fn


def _contains(m: Meter, haystack: Any, needle: Any) -> bool:
    if not isinstance(haystack, str | list | dict):
        raise TypeError(f"contains() does not accept {type(haystack).__name__}")
    return _membership(m, needle, haystack, "contains()")


def _affix(name: str) -> Callable[[Meter, Any, Any], bool]:
    def fn(m: Meter, v: Any, p: Any) -> bool:
        text, affix = _str_only(name, v), _str_only(name, p)
        _text_cost(m, affix)
        return bool(getattr(text, name)(affix))

    return fn


def _round(m: Meter, v: Any, n: Any = 0) -> float:
    digits = to_int(n)
    if not -MAX_ROUND_DIGITS <= digits <= MAX_ROUND_DIGITS:
        raise ValueError(
            f"round() digits must be between -{MAX_ROUND_DIGITS} and {MAX_ROUND_DIGITS}"
        )
    return m.admit(round(to_float(v), digits))


def _extreme(pick: Callable[..., Any]) -> Callable[..., Any]:
    def fn(m: Meter, *args: Any) -> Any:
        for a in args:
            m.charge(m.cells(a))
        return pick(*args)

    return fn


def _abs(m: Meter, v: Any) -> Any:
    return m.admit(abs(v) if isinstance(v, float) else abs(to_int(v)))


def _is_digits(m: Meter, v: Any) -> bool:
    if not isinstance(v, str):
        return False
    _text_cost(m, v)
    return bool(v) and v.isdecimal()


FUNCTIONS: dict[str, Callable[..., Any]] = {
    "len": _len,
    "lower": _case("lower"),
    "upper": _case("upper"),
    "trim": _case("trim"),
    "contains": _contains,
    "startswith": _affix("startswith"),
    "endswith": _affix("endswith"),
    "int": lambda m, v: to_int(v),
    "float": lambda m, v: to_float(v),
    "str": lambda m, v: to_text(v, m),
    "abs": _abs,
    "round": _round,
    "min": _extreme(min),
    "max": _extreme(max),
    "default": lambda m, v, d: d if v is None or v == "" else v,
    "is_digits": _is_digits,
}
assert set(FUNCTIONS) == FUNCTION_NAMES, "parser and evaluator disagree on the functions"


# --- operators ---------------------------------------------------------------------------------


def _num(v: Any) -> bool:
    kind = type(v)
    if kind is int or kind is float:
        return True
    return kind is not bool and isinstance(v, int | float)


def _membership(m: Meter, needle: Any, haystack: Any, what: str) -> bool:
    if isinstance(haystack, str):
        if not isinstance(needle, str):
            raise TypeError(f"left side of {what} must be text when the right side is text")
        _text_cost(m, haystack)
        return needle in haystack
    if isinstance(haystack, dict):
        return needle in haystack  # a hash lookup; lists as keys raise TypeError (unhashable)
    m.charge(m.cells(haystack) + m.cells(needle))
    return needle in haystack


def _equal(m: Meter, a: Any, b: Any) -> bool:
    if isinstance(a, list | dict) or isinstance(b, list | dict):
        m.charge(min(m.cells(a), m.cells(b)))
    elif isinstance(a, str) and isinstance(b, str):
        _text_cost(m, a)
    return bool(a == b)


def _binary(m: Meter, op: str, a: Any, b: Any) -> Any:
    if op == "==":
        return _equal(m, a, b)
    if op == "!=":
        return not _equal(m, a, b)
    if op in ("in", "not in"):
        if not isinstance(b, str | list | dict):
            raise TypeError(f"right side of '{op}' must be text or a list")
        found = _membership(m, a, b, f"'{op}'")
        return found if op == "in" else not found
    if op in ("<", "<=", ">", ">="):
        if isinstance(a, str) and isinstance(b, str):
            _text_cost(m, a)
        elif not (_num(a) and _num(b)):
            raise TypeError(
                f"cannot compare {type(a).__name__} with {type(b).__name__} using '{op}'"
            )
        if op == "<":
            return a < b
        if op == "<=":
            return a <= b
        return a > b if op == ">" else a >= b
    if op == "+" and isinstance(a, str) and isinstance(b, str):
        if len(a) + len(b) > MAX_TEXT_CHARS:
            raise LimitExceeded("text", f"text longer than {MAX_TEXT_CHARS} characters")
        _text_cost(m, a, b)
        return a + b
    if op == "+" and isinstance(a, list) and isinstance(b, list):
        if m.cells(a) + m.cells(b) > MAX_VALUE_CELLS:
            raise _too_large()
        m.charge(len(a) + len(b))
        return m.admit(a + b)
    if not (_num(a) and _num(b)):
        raise TypeError(f"'{op}' needs two numbers, got {type(a).__name__} and {type(b).__name__}")
    if op in ("/", "%") and b == 0:
        raise ZeroDivisionError("division by zero")
    if op == "+":
        result = a + b
    elif op == "-":
        result = a - b
    elif op == "*":
        result = a * b  # both operands are within MAX_INT_BITS, so this is cheap
    elif op == "/":
        result = a / b
    else:
        result = a % b
    return m.admit(result)


# --- the evaluator -----------------------------------------------------------------------------


def eval_node(node: Node, scope: Mapping[str, Any], src: str, meter: Meter) -> Any:
    """Evaluate ``node`` (recursion depth is bounded by the parser's AST depth limit)."""
    meter.left -= 1
    kind = type(node)  # AST classes are final: exact type dispatch is the fast path
    try:
        if meter.left < 0:
            meter.charge(0)  # raises with the standard message
        if kind is Lit:
            return node.value  # type: ignore[union-attr]
        if kind is Var:
            value = lookup(scope, node.path)  # type: ignore[union-attr]
            if value is MISSING:
                name = ".".join(node.path)  # type: ignore[union-attr]
                raise UndefinedVariable(f"undefined variable {name!r}", node.pos, src)
            return value
        if kind is Binary:
            assert isinstance(node, Binary)
            left = eval_node(node.left, scope, src, meter)
            if node.op == "and":
                return eval_node(node.right, scope, src, meter) if left else left
            if node.op == "or":
                return left if left else eval_node(node.right, scope, src, meter)
            return _binary(meter, node.op, left, eval_node(node.right, scope, src, meter))
        if kind is Call:
            assert isinstance(node, Call)
            return _call(node, scope, src, meter)
        if kind is Unary:
            assert isinstance(node, Unary)
            v = eval_node(node.operand, scope, src, meter)
            if node.op == "not":
                return not v
            if not _num(v):
                raise TypeError(f"cannot negate {type(v).__name__}")
            return meter.admit(-v)
        assert isinstance(node, ListLit)
        return meter.admit([eval_node(i, scope, src, meter) for i in node.items])
    except ExprError:
        raise
    except LimitExceeded as e:
        raise ExprLimitError(str(e), node.pos, src, e.limit) from None
    except (TypeError, ValueError, ZeroDivisionError, OverflowError) as e:
        raise ExprRuntimeError(str(e), node.pos, src) from e


def _call(node: Call, scope: Mapping[str, Any], src: str, meter: Meter) -> Any:
    if node.func == "default" and node.args:
        # default(x, d) is the one place a missing variable is not an error
        try:
            first = eval_node(node.args[0], scope, src, meter)
        except UndefinedVariable:
            first = None
        rest = [eval_node(a, scope, src, meter) for a in node.args[1:]]
        return FUNCTIONS["default"](meter, first, *rest)
    args = [eval_node(a, scope, src, meter) for a in node.args]
    return FUNCTIONS[node.func](meter, *args)


class _Missing:
    pass


MISSING = _Missing()


def lookup(scope: Mapping[str, Any], path: tuple[str, ...]) -> Any:
    """Walk ``path`` through nested dicts only; returns :data:`MISSING` when absent."""
    cur: Any = scope
    for part in path:
        if not (type(cur) is dict or isinstance(cur, Mapping)) or part not in cur:
            return MISSING
        cur = cur[part]
    return cur


def evaluate(src: str, scope: Mapping[str, Any], meter: Meter | None = None) -> Any:
    """Parse (cached) and evaluate ``src`` against ``scope`` within the bounds above.

    ``meter``: a step budget shared with other evaluations (a flow node shares one across
    everything it evaluates); default a fresh one for this evaluation."""
    return eval_node(parse(src), scope, src, meter or Meter())


__all__ = [
    "FUNCTIONS",
    "MAX_EXPR_CHARS",
    "MAX_STRING_RESULT",
    "ExprError",
    "ExprLimitError",
    "ExprRuntimeError",
    "ExprSyntaxError",
    "ExprTooDeep",
    "ExprTooLong",
    "LimitExceeded",
    "Meter",
    "UndefinedVariable",
    "check_value",
    "eval_node",
    "evaluate",
    "lookup",
    "parse",
    "to_float",
    "to_int",
    "to_text",
    "tokenize",
    "variables",
]
