"""A small sandboxed expression and template language for flow conditions, ``set`` and prompts.

Flows are drawn by ops staff and stored in a database the console writes to, so nothing in them may
reach Python: there is no ``eval``, no attribute access and no calls except a fixed whitelist. The
language is a tokenizer plus a recursive-descent parser producing a tiny AST that is evaluated
against plain JSON-like data (dicts, lists, str, int, float, bool, None). Dotted names walk into
dicts only. Every error carries the character position so the console can underline it.

Grammar (lowest precedence first)::

    expr    := and ('or' and)*
    and     := not ('and' not)*
    not     := 'not' not | cmp
    cmp     := add (('=='|'!='|'<'|'<='|'>'|'>='|'in'|'not' 'in') add)?
    add     := mul (('+'|'-') mul)*
    mul     := unary (('*'|'/'|'%') unary)*
    unary   := '-' unary | primary
    primary := NUMBER | STRING | true | false | null | '(' expr ')' | '[' [expr (',' expr)*] ']'
             | NAME '(' [expr (',' expr)*] ')' | NAME ('.' NAME)*

Templates (``{{ expr | filter }}`` holes in prompt text) live in :mod:`flows.template`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

MAX_EXPR_CHARS = 2000
MAX_STRING_RESULT = 10_000


class ExprError(ValueError):
    """A syntax or evaluation error; ``pos`` is the 0-based character offset in the source."""

    def __init__(self, message: str, pos: int, source: str) -> None:
        super().__init__(f"{message} at position {pos} in {source!r}")
        self.reason = message
        self.pos = pos
        self.source = source


# --- tokens ------------------------------------------------------------------------------------

_TOKEN_RE = re.compile(
    r"""(?P<ws>\s+)
      |(?P<num>\d+(?:\.\d+)?)
      |(?P<str>'(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*")
      |(?P<name>[A-Za-z_][A-Za-z0-9_]*)
      |(?P<op>==|!=|<=|>=|[<>+\-*/%(),.\[\]|])""",
    re.VERBOSE,
)
_KEYWORDS = {"and", "or", "not", "in", "true", "false", "null"}


@dataclass(frozen=True, slots=True)
class Token:
    kind: str  # num, str, name, kw, op, end
    text: str
    pos: int


def tokenize(src: str) -> list[Token]:
    if len(src) > MAX_EXPR_CHARS:
        raise ExprError(f"expression longer than {MAX_EXPR_CHARS} characters", 0, src[:40])
    out: list[Token] = []
    pos = 0
    while pos < len(src):
        m = _TOKEN_RE.match(src, pos)
        if m is None:
            raise ExprError(f"unexpected character {src[pos]!r}", pos, src)
        kind = m.lastgroup or ""
        text = m.group()
        if kind == "str" and text.count("\n"):
            raise ExprError("newline inside a string", pos, src)
        if kind != "ws":
            if kind == "name" and text in _KEYWORDS:
                kind = "kw"
            out.append(Token(kind, text, pos))
        pos = m.end()
    out.append(Token("end", "", len(src)))
    return out


# --- AST ---------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Lit:
    value: Any
    pos: int


@dataclass(frozen=True, slots=True)
class Var:
    path: tuple[str, ...]
    pos: int


@dataclass(frozen=True, slots=True)
class ListLit:
    items: tuple[Node, ...]
    pos: int


@dataclass(frozen=True, slots=True)
class Unary:
    op: str
    operand: Node
    pos: int


@dataclass(frozen=True, slots=True)
class Binary:
    op: str
    left: Node
    right: Node
    pos: int


@dataclass(frozen=True, slots=True)
class Call:
    func: str
    args: tuple[Node, ...]
    pos: int


Node = Lit | Var | ListLit | Unary | Binary | Call


def _unescape(text: str) -> str:
    body = text[1:-1]
    return re.sub(r"\\(.)", lambda m: {"n": "\n", "t": "\t"}.get(m.group(1), m.group(1)), body)


class _Parser:
    def __init__(self, src: str, tokens: list[Token]) -> None:
        self.src = src
        self.toks = tokens
        self.i = 0

    @property
    def tok(self) -> Token:
        return self.toks[self.i]

    def error(self, msg: str, tok: Token | None = None) -> ExprError:
        t = tok or self.tok
        return ExprError(msg, t.pos, self.src)

    def accept(self, kind: str, text: str | None = None) -> Token | None:
        t = self.tok
        if t.kind == kind and (text is None or t.text == text):
            self.i += 1
            return t
        return None

    def expect(self, kind: str, text: str, what: str) -> Token:
        t = self.accept(kind, text)
        if t is None:
            found = self.tok.text or "end of expression"
            raise self.error(f"expected {what}, found {found!r}")
        return t

    def parse_or(self) -> Node:
        left = self.parse_and()
        while (t := self.accept("kw", "or")) is not None:
            left = Binary("or", left, self.parse_and(), t.pos)
        return left

    def parse_and(self) -> Node:
        left = self.parse_not()
        while (t := self.accept("kw", "and")) is not None:
            left = Binary("and", left, self.parse_not(), t.pos)
        return left

    def parse_not(self) -> Node:
        if (t := self.accept("kw", "not")) is not None:
            return Unary("not", self.parse_not(), t.pos)
        return self.parse_cmp()

    def parse_cmp(self) -> Node:
        left = self.parse_add()
        t = self.tok
        if t.kind == "op" and t.text in ("==", "!=", "<", "<=", ">", ">="):
            self.i += 1
            return Binary(t.text, left, self.parse_add(), t.pos)
        if self.accept("kw", "in"):
            return Binary("in", left, self.parse_add(), t.pos)
        if t.kind == "kw" and t.text == "not" and self.toks[self.i + 1].text == "in":
            self.i += 2
            return Binary("not in", left, self.parse_add(), t.pos)
        return left

    def parse_add(self) -> Node:
        left = self.parse_mul()
        while self.tok.kind == "op" and self.tok.text in ("+", "-"):
            t = self.tok
            self.i += 1
            left = Binary(t.text, left, self.parse_mul(), t.pos)
        return left

    def parse_mul(self) -> Node:
        left = self.parse_unary()
        while self.tok.kind == "op" and self.tok.text in ("*", "/", "%"):
            t = self.tok
            self.i += 1
            left = Binary(t.text, left, self.parse_unary(), t.pos)
        return left

    def parse_unary(self) -> Node:
        if (t := self.accept("op", "-")) is not None:
            return Unary("-", self.parse_unary(), t.pos)
        return self.parse_primary()

    def parse_args(self, closer: str) -> tuple[Node, ...]:
        args: list[Node] = []
        if self.accept("op", closer):
            return ()
        while True:
            args.append(self.parse_or())
            if self.accept("op", closer):
                return tuple(args)
            self.expect("op", ",", f"',' or '{closer}'")

    def parse_primary(self) -> Node:
        t = self.tok
        if t.kind == "num":
            self.i += 1
            return Lit(float(t.text) if "." in t.text else int(t.text), t.pos)
        if t.kind == "str":
            self.i += 1
            return Lit(_unescape(t.text), t.pos)
        if t.kind == "kw" and t.text in ("true", "false", "null"):
            self.i += 1
            return Lit({"true": True, "false": False, "null": None}[t.text], t.pos)
        if self.accept("op", "("):
            inner = self.parse_or()
            self.expect("op", ")", "')'")
            return inner
        if self.accept("op", "["):
            return ListLit(self.parse_args("]"), t.pos)
        if t.kind == "name":
            self.i += 1
            if self.accept("op", "("):
                if t.text not in FUNCTIONS:
                    raise self.error(f"unknown function {t.text!r}", t)
                return Call(t.text, self.parse_args(")"), t.pos)
            path = [t.text]
            while self.accept("op", "."):
                nt = self.accept("name")
                if nt is None:
                    raise self.error("expected a field name after '.'")
                path.append(nt.text)
            return Var(tuple(path), t.pos)
        found = t.text or "end of expression"
        raise self.error(f"unexpected {found!r}")


@lru_cache(maxsize=4096)
def parse(src: str) -> Node:
    """Parse an expression; raises :class:`ExprError` with the position of the first problem."""
    p = _Parser(src, tokenize(src))
    if p.tok.kind == "end":
        raise p.error("empty expression")
    node = p.parse_or()
    if p.tok.kind != "end":
        raise p.error(f"unexpected {p.tok.text!r}")
    return node


def variables(node: Node) -> set[tuple[str, ...]]:
    """Every variable path the expression reads (the validator checks they are defined)."""
    if isinstance(node, Var):
        return {node.path}
    if isinstance(node, Unary):
        return variables(node.operand)
    if isinstance(node, Binary):
        return variables(node.left) | variables(node.right)
    if isinstance(node, ListLit | Call):
        out: set[tuple[str, ...]] = set()
        for item in node.items if isinstance(node, ListLit) else node.args:
            out |= variables(item)
        return out
    return set()


# --- evaluation --------------------------------------------------------------------------------


def _str_only(name: str, value: Any) -> str:
    if not isinstance(value, str):
        raise TypeError(f"{name}() needs text, got {type(value).__name__}")
    return value


def _to_int(value: Any) -> int:
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int | float):
        return int(value)
    if isinstance(value, str):
        return int(value.strip())
    raise TypeError(f"int() cannot convert {type(value).__name__}")


def _to_float(value: Any) -> float:
    if isinstance(value, int | float | str) and not isinstance(value, bool):
        return float(value)
    raise TypeError(f"float() cannot convert {type(value).__name__}")


def _to_str(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


FUNCTIONS: dict[str, Callable[..., Any]] = {
    "len": lambda v: len(v) if isinstance(v, str | list | dict) else _bad("len", v),
    "lower": lambda v: _str_only("lower", v).lower(),
    "upper": lambda v: _str_only("upper", v).upper(),
    "trim": lambda v: _str_only("trim", v).strip(),
    "contains": lambda h, n: n in h if isinstance(h, str | list | dict) else _bad("contains", h),
    "startswith": lambda v, p: _str_only("startswith", v).startswith(_str_only("startswith", p)),
    "endswith": lambda v, p: _str_only("endswith", v).endswith(_str_only("endswith", p)),
    "int": _to_int,
    "float": _to_float,
    "str": _to_str,
    "abs": lambda v: abs(_to_float(v)) if isinstance(v, float) else abs(_to_int(v)),
    "round": lambda v, n=0: round(_to_float(v), _to_int(n)),
    "min": lambda *a: min(a),
    "max": lambda *a: max(a),
    "default": lambda v, d: d if v is None or v == "" else v,
    "is_digits": lambda v: isinstance(v, str) and v.isdigit(),
}


def _bad(func: str, value: Any) -> Any:
    raise TypeError(f"{func}() does not accept {type(value).__name__}")


class _Missing:
    pass


MISSING = _Missing()


def lookup(scope: Mapping[str, Any], path: tuple[str, ...]) -> Any:
    """Walk ``path`` through nested dicts only; returns :data:`MISSING` when absent."""
    cur: Any = scope
    for part in path:
        if not isinstance(cur, Mapping) or part not in cur:
            return MISSING
        cur = cur[part]
    return cur


def _num(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


def _binary(op: str, a: Any, b: Any) -> Any:
    if op == "==":
        return a == b
    if op == "!=":
        return a != b
    if op in ("in", "not in"):
        if not isinstance(b, str | list | dict):
            raise TypeError(f"right side of '{op}' must be text or a list")
        if isinstance(b, str) and not isinstance(a, str):
            raise TypeError(f"left side of '{op}' must be text when the right side is text")
        return (a in b) if op == "in" else (a not in b)
    if op in ("<", "<=", ">", ">="):
        if not ((_num(a) and _num(b)) or (isinstance(a, str) and isinstance(b, str))):
            raise TypeError(
                f"cannot compare {type(a).__name__} with {type(b).__name__} using '{op}'"
            )
        return {"<": a < b, "<=": a <= b, ">": a > b, ">=": a >= b}[op]
    if op == "+" and isinstance(a, str) and isinstance(b, str):
        if len(a) + len(b) > MAX_STRING_RESULT:
            raise TypeError("text result too long")
        return a + b
    if op == "+" and isinstance(a, list) and isinstance(b, list):
        return a + b
    if not (_num(a) and _num(b)):
        raise TypeError(f"'{op}' needs two numbers, got {type(a).__name__} and {type(b).__name__}")
    if op in ("/", "%") and b == 0:
        raise ZeroDivisionError("division by zero")
    if op == "+":
        return a + b
    if op == "-":
        return a - b
    if op == "*":
        return a * b
    if op == "/":
        return a / b
    return a % b


def _eval(node: Node, scope: Mapping[str, Any], src: str) -> Any:
    try:
        if isinstance(node, Lit):
            return node.value
        if isinstance(node, Var):
            value = lookup(scope, node.path)
            if value is MISSING:
                raise ExprError(f"undefined variable {'.'.join(node.path)!r}", node.pos, src)
            return value
        if isinstance(node, ListLit):
            return [_eval(i, scope, src) for i in node.items]
        if isinstance(node, Unary):
            v = _eval(node.operand, scope, src)
            if node.op == "not":
                return not v
            if not _num(v):
                raise TypeError(f"cannot negate {type(v).__name__}")
            return -v
        if isinstance(node, Binary):
            left = _eval(node.left, scope, src)
            if node.op == "and":
                return _eval(node.right, scope, src) if left else left
            if node.op == "or":
                return left if left else _eval(node.right, scope, src)
            return _binary(node.op, left, _eval(node.right, scope, src))
        if node.func == "default" and node.args:
            # default(x, d) is the one place a missing variable is not an error
            try:
                first = _eval(node.args[0], scope, src)
            except ExprError as e:
                if not e.reason.startswith("undefined variable"):
                    raise
                first = None
            rest = [_eval(a, scope, src) for a in node.args[1:]]
            return FUNCTIONS["default"](first, *rest)
        args = [_eval(a, scope, src) for a in node.args]
        return FUNCTIONS[node.func](*args)
    except ExprError:
        raise
    except (TypeError, ValueError, ZeroDivisionError, OverflowError) as e:
        raise ExprError(str(e), node.pos, src) from e


def evaluate(src: str, scope: Mapping[str, Any]) -> Any:
    """Parse (cached) and evaluate ``src`` against ``scope``."""
    return _eval(parse(src), scope, src)
