"""The expression language's tokenizer, AST and parser (evaluation: :mod:`flows.expr`).

Flows are drawn by client tenants and stored in a database the console writes to, so nothing in
them may reach Python: there is no ``eval``, no attribute access and no calls except a fixed
whitelist. The language is a tokenizer plus a recursive-descent parser producing a tiny AST that
:mod:`flows.expr` evaluates against plain JSON-like data within hard time and memory bounds.
Dotted names walk into dicts only. Every error carries the character position so the console can
underline it, and is one :class:`ExprError` subclass per kind of failure, each with a problem
``code``.

Parsing is bounded too: at most :data:`MAX_EXPR_CHARS` characters, brackets/calls/``not``/unary
minus nested at most :data:`MAX_NESTING` deep, and an AST at most :data:`MAX_AST_DEPTH` deep (a
chain ``a + b + c ...`` adds a level per operator), so neither the parser nor the evaluator can
exhaust Python's stack.

Number literals may use any Unicode decimal digits (``１２``, ``١٢``): they mean the same number
as ``12`` (see :mod:`flows.i18n`).

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

import math
import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from flows.i18n import ascii_digits

MAX_EXPR_CHARS = 2000
MAX_NESTING = 32  # brackets, calls, 'not' and unary '-' inside one another
MAX_AST_DEPTH = 100  # operator chains count one level per operator
MAX_LITERAL_INT_BITS = 128  # the evaluator's integer bound (flows.expr.MAX_INT_BITS)


class ExprError(ValueError):
    """An expression or template problem; ``pos`` is the 0-based character offset in ``source``.

    ``code`` is the problem code the validator and the console use for this kind of failure.
    """

    code = "bad_expression"

    def __init__(self, message: str, pos: int, source: str) -> None:
        shown = source if len(source) <= 200 else source[:200] + "..."
        super().__init__(f"{message} at position {pos} in {shown!r}")
        self.reason = message
        self.pos = pos
        self.source = source


class ExprSyntaxError(ExprError):
    """The text does not parse."""


class ExprTooLong(ExprSyntaxError):
    code = "too_long"


class ExprTooDeep(ExprSyntaxError):
    code = "too_deep"


class UndefinedVariable(ExprError):
    code = "undefined_variable"


class ExprRuntimeError(ExprError):
    """Evaluation failed on the data: wrong types, division by zero, unreadable number..."""

    code = "expression_failed"


class ExprLimitError(ExprError):
    """Evaluation stopped at a bound (``limit``: steps, integer, text, value, depth, number)."""

    code = "expression_limit"

    def __init__(self, message: str, pos: int, source: str, limit: str) -> None:
        super().__init__(message, pos, source)
        self.limit = limit


# --- tokens ------------------------------------------------------------------------------------

_TOKEN_RE = re.compile(
    r"""(?P<ws>\s+)
      |(?P<num>\d+(?:\.\d+)?)
      |(?P<str>'(?:[^'\\\n]|\\.)*'|"(?:[^"\\\n]|\\.)*")
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
        raise ExprTooLong(f"expression longer than {MAX_EXPR_CHARS} characters", 0, src)
    out: list[Token] = []
    pos = 0
    while pos < len(src):
        m = _TOKEN_RE.match(src, pos)
        if m is None:
            if src[pos] in "'\"":
                raise ExprSyntaxError("string is not closed on this line", pos, src)
            raise ExprSyntaxError(f"unexpected character {src[pos]!r}", pos, src)
        kind = m.lastgroup or ""
        text = m.group()
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

# The function names the parser accepts; flows.expr implements each one.
FUNCTION_NAMES = frozenset(
    [
        "len",
        "lower",
        "upper",
        "trim",
        "contains",
        "startswith",
        "endswith",
        "int",
        "float",
        "str",
        "abs",
        "round",
        "min",
        "max",
        "default",
        "is_digits",
    ]
)


def children(node: Node) -> tuple[Node, ...]:
    if isinstance(node, Unary):
        return (node.operand,)
    if isinstance(node, Binary):
        return (node.left, node.right)
    if isinstance(node, ListLit):
        return node.items
    if isinstance(node, Call):
        return node.args
    return ()


def _unescape(text: str) -> str:
    body = text[1:-1]
    return re.sub(r"\\(.)", lambda m: {"n": "\n", "t": "\t"}.get(m.group(1), m.group(1)), body)


def _number(tok: Token, src: str) -> Lit:
    text = ascii_digits(tok.text)
    if "." in text:
        value: float | int = float(text)
        if not math.isfinite(value):
            raise ExprSyntaxError("number literal is too large", tok.pos, src)
    else:
        if len(text) > 40:  # cheaper than converting: 2**128 has 39 digits
            raise ExprSyntaxError(
                f"number literal larger than {MAX_LITERAL_INT_BITS} bits", tok.pos, src
            )
        value = int(text)
        if value.bit_length() > MAX_LITERAL_INT_BITS:
            raise ExprSyntaxError(
                f"number literal larger than {MAX_LITERAL_INT_BITS} bits", tok.pos, src
            )
    return Lit(value, tok.pos)


class Parser:
    """Recursive descent with two guards: bracket nesting and AST depth."""

    def __init__(self, src: str, tokens: list[Token]) -> None:
        self.src = src
        self.toks = tokens
        self.i = 0
        self.nesting = 0
        self._depth: dict[int, int] = {}  # id(node) -> AST depth; nodes stay alive in the tree

    @property
    def tok(self) -> Token:
        return self.toks[self.i]

    def error(self, msg: str, tok: Token | None = None) -> ExprError:
        t = tok or self.tok
        return ExprSyntaxError(msg, t.pos, self.src)

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

    def enter(self, tok: Token) -> None:
        self.nesting += 1
        if self.nesting > MAX_NESTING:
            raise ExprTooDeep(
                f"brackets, calls or 'not'/'-' nested deeper than {MAX_NESTING} levels",
                tok.pos,
                self.src,
            )

    def leave(self) -> None:
        self.nesting -= 1

    def made(self, node: Node) -> Node:
        """Record ``node``'s depth; refuse trees deeper than :data:`MAX_AST_DEPTH`."""
        depth = 1 + max((self._depth.get(id(c), 1) for c in children(node)), default=0)
        if depth > MAX_AST_DEPTH:
            raise ExprTooDeep(
                f"expression nested deeper than {MAX_AST_DEPTH} levels (each operator in a chain "
                "counts one; use 'x in [a, b, ...]' for long or-chains)",
                node.pos,
                self.src,
            )
        self._depth[id(node)] = depth
        return node

    def parse_or(self) -> Node:
        left = self.parse_and()
        while (t := self.accept("kw", "or")) is not None:
            left = self.made(Binary("or", left, self.parse_and(), t.pos))
        return left

    def parse_and(self) -> Node:
        left = self.parse_not()
        while (t := self.accept("kw", "and")) is not None:
            left = self.made(Binary("and", left, self.parse_not(), t.pos))
        return left

    def parse_not(self) -> Node:
        if (t := self.accept("kw", "not")) is not None:
            self.enter(t)
            node = self.made(Unary("not", self.parse_not(), t.pos))
            self.leave()
            return node
        return self.parse_cmp()

    def parse_cmp(self) -> Node:
        left = self.parse_add()
        t = self.tok
        if t.kind == "op" and t.text in ("==", "!=", "<", "<=", ">", ">="):
            self.i += 1
            return self.made(Binary(t.text, left, self.parse_add(), t.pos))
        if self.accept("kw", "in"):
            return self.made(Binary("in", left, self.parse_add(), t.pos))
        if t.kind == "kw" and t.text == "not" and self.toks[self.i + 1].text == "in":
            self.i += 2
            return self.made(Binary("not in", left, self.parse_add(), t.pos))
        return left

    def parse_add(self) -> Node:
        left = self.parse_mul()
        while self.tok.kind == "op" and self.tok.text in ("+", "-"):
            t = self.tok
            self.i += 1
            left = self.made(Binary(t.text, left, self.parse_mul(), t.pos))
        return left

    def parse_mul(self) -> Node:
        left = self.parse_unary()
        while self.tok.kind == "op" and self.tok.text in ("*", "/", "%"):
            t = self.tok
            self.i += 1
            left = self.made(Binary(t.text, left, self.parse_unary(), t.pos))
        return left

    def parse_unary(self) -> Node:
        if (t := self.accept("op", "-")) is not None:
            self.enter(t)
            node = self.made(Unary("-", self.parse_unary(), t.pos))
            self.leave()
            return node
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
            return _number(t, self.src)
        if t.kind == "str":
            self.i += 1
            return Lit(_unescape(t.text), t.pos)
        if t.kind == "kw" and t.text in ("true", "false", "null"):
            self.i += 1
            return Lit({"true": True, "false": False, "null": None}[t.text], t.pos)
        if self.accept("op", "("):
            self.enter(t)
            inner = self.parse_or()
            self.expect("op", ")", "')'")
            self.leave()
            return inner
        if self.accept("op", "["):
            self.enter(t)
            node = self.made(ListLit(self.parse_args("]"), t.pos))
            self.leave()
            return node
        if t.kind == "name":
            self.i += 1
            if self.accept("op", "("):
                if t.text not in FUNCTION_NAMES:
                    raise self.error(f"unknown function {t.text!r}", t)
                self.enter(t)
                node = self.made(Call(t.text, self.parse_args(")"), t.pos))
                self.leave()
                return node
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
    p = Parser(src, tokenize(src))
    if p.tok.kind == "end":
        raise p.error("empty expression")
    node = p.parse_or()
    if p.tok.kind != "end":
        raise p.error(f"unexpected {p.tok.text!r}")
    return node


def variables(node: Node) -> set[tuple[str, ...]]:
    """Every variable path the expression reads (the validator checks they are defined)."""
    out: set[tuple[str, ...]] = set()
    stack = [node]
    while stack:
        n = stack.pop()
        if isinstance(n, Var):
            out.add(n.path)
        stack.extend(children(n))
    return out
