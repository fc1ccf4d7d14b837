"""Prompt and SMS templates: text with ``{{ expr | filter | filter(arg) }}`` holes.

Holes use the sandboxed expression language of :mod:`flows.expr`; filters are a fixed whitelist
(no user-defined code). Compiling is cached and reports errors with their position in the whole
template text, so the console can underline the exact spot.

Bounds: a template is at most :data:`MAX_TEMPLATE_CHARS` characters (a longer literal could never
render) with at most :data:`MAX_TEMPLATE_HOLES` holes; one render shares one step budget across
all its holes and filters (a flow node shares it with everything else it evaluates), and the
rendered text is at most :data:`~flows.expr.MAX_TEXT_CHARS` characters, checked as it grows.

Locale: ``money``, ``number``, ``digits`` and ``date`` read values the way the flow's language
says them (``zh-CN``: 一千二百三十四元五角; English: 1234 dollars and 50 cents); each takes an
optional language argument, e.g. ``{{ amount | money('zh-CN') }}``. See :mod:`flows.i18n`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from flows.expr import (
    MAX_TEXT_CHARS,
    ExprError,
    ExprLimitError,
    ExprRuntimeError,
    ExprSyntaxError,
    ExprTooLong,
    LimitExceeded,
    Meter,
    Node,
    UndefinedVariable,
    eval_node,
    to_int,
    to_text,
    tokenize,
    variables,
)
from flows.exprparse import Parser
from flows.i18n import locale_of, read_date, read_digits, read_money, read_number

MAX_TEMPLATE_CHARS = 10_000
MAX_TEMPLATE_HOLES = 200  # each hole costs a Python-level evaluation; no prompt needs more

# --- filters: (meter, locale, value, *args) -> value ---------------------------------------------

Filter = Callable[..., Any]


def _text_filter(method: str) -> Filter:
    def fn(m: Meter, loc: str, v: Any) -> str:
        text = to_text(v, m)
        m.charge(1 + len(text) // 32)
        return m.admit(getattr(text, method)())

    return fn


def _locale_filter(read: Callable[[Any, str], str]) -> Filter:
    def fn(m: Meter, loc: str, v: Any, language: Any = None) -> str:
        if language is not None and not isinstance(language, str):
            raise TypeError("the language argument must be text such as 'zh-CN'")
        if isinstance(v, str):
            m.charge(1 + len(v) // 32)
        elif read is read_digits:
            v = to_text(v, m)  # digits of a number: its text, within the integer bound
        return m.admit(read(v, locale_of(language) if language else loc))

    return fn


def _mask(m: Meter, loc: str, v: Any, keep: Any = 0) -> str:
    text = to_text(v, m)
    shown = min(max(to_int(keep), 0), len(text))
    m.charge(1 + len(text) // 32)
    return "*" * (len(text) - shown) + (text[len(text) - shown :] if shown else "")


FILTERS: dict[str, Filter] = {
    "upper": _text_filter("upper"),
    "lower": _text_filter("lower"),
    "trim": _text_filter("strip"),
    "default": lambda m, loc, v, d="": d if v is None or v == "" else v,
    "digits": _locale_filter(read_digits),  # "1234" -> "1 2 3 4" / "幺二三四", read one by one
    "money": _locale_filter(read_money),
    "number": _locale_filter(read_number),
    "date": _locale_filter(read_date),
    "mask": _mask,
    "length": lambda m, loc, v: len(v) if isinstance(v, str | list | dict) else 0,
}


@dataclass(frozen=True, slots=True)
class _Hole:
    expr: Node
    filters: tuple[tuple[str, tuple[Node, ...], int], ...]
    src: str
    offset: int  # where the hole's expression starts in the template


@dataclass(frozen=True, slots=True)
class Template:
    parts: tuple[str | _Hole, ...]
    source: str

    def render(
        self, scope: Mapping[str, Any], language: str | None = None, meter: Meter | None = None
    ) -> str:
        """Fill the holes; ``language`` (default: the scope's ``language``) picks the locale;
        ``meter`` is the step budget (default: a fresh one for this render)."""
        lang = language if language is not None else scope.get("language")
        loc = locale_of(lang if isinstance(lang, str) else None)
        meter = meter or Meter()
        out: list[str] = []
        size = 0
        for part in self.parts:
            text = part if isinstance(part, str) else self._fill(part, scope, loc, meter)
            size += len(text)
            if size > MAX_TEXT_CHARS:
                pos = 0 if isinstance(part, str) else part.offset
                raise ExprLimitError(
                    f"rendered text longer than {MAX_TEXT_CHARS} characters",
                    pos,
                    self.source,
                    "text",
                )
            out.append(text)
        return "".join(out)

    @staticmethod
    def _fill(part: _Hole, scope: Mapping[str, Any], loc: str, meter: Meter) -> str:
        try:
            value = eval_node(part.expr, scope, part.src, meter)
        except UndefinedVariable:
            if not any(f == "default" for f, _, _ in part.filters):
                raise
            value = None
        for name, args, pos in part.filters:
            argv = [eval_node(a, scope, part.src, meter) for a in args]
            try:
                value = FILTERS[name](meter, loc, value, *argv)
            except LimitExceeded as e:
                raise ExprLimitError(f"filter {name!r}: {e}", pos, part.src, e.limit) from None
            except (TypeError, ValueError, OverflowError) as e:
                raise ExprRuntimeError(f"filter {name!r}: {e}", pos, part.src) from e
        try:
            return to_text(value, meter)
        except LimitExceeded as e:
            raise ExprLimitError(str(e), 0, part.src, e.limit) from None

    def variables(self) -> set[tuple[str, ...]]:
        out: set[tuple[str, ...]] = set()
        for part in self.parts:
            if isinstance(part, _Hole):
                out |= variables(part.expr)
                for _, args, _ in part.filters:
                    for a in args:
                        out |= variables(a)
        return out

    def has_default(self, path: tuple[str, ...]) -> bool:
        """True when every hole reading ``path`` directly has a ``default`` filter."""
        holes = [p for p in self.parts if isinstance(p, _Hole) and variables(p.expr) == {path}]
        return bool(holes) and all(any(f == "default" for f, _, _ in h.filters) for h in holes)


@lru_cache(maxsize=4096)
def compile_template(src: str) -> Template:
    """Split ``src`` into text and ``{{ expr | filter }}`` holes; errors carry the position."""
    if len(src) > MAX_TEMPLATE_CHARS:
        raise ExprTooLong(
            f"template longer than {MAX_TEMPLATE_CHARS} characters ({len(src)})", 0, src
        )
    parts: list[str | _Hole] = []
    pos = holes = 0
    while True:
        start = src.find("{{", pos)
        if start < 0:
            if "}}" in src[pos:]:
                raise ExprSyntaxError("'}}' without '{{'", src.index("}}", pos), src)
            parts.append(src[pos:])
            break
        if "}}" in src[pos:start]:
            raise ExprSyntaxError("'}}' without '{{'", src.index("}}", pos), src)
        end = src.find("}}", start + 2)
        if end < 0:
            raise ExprSyntaxError("'{{' is never closed", start, src)
        parts.append(src[pos:start])
        parts.append(_parse_hole(src, start + 2, end))
        holes += 1
        if holes > MAX_TEMPLATE_HOLES:
            raise ExprTooLong(f"template has more than {MAX_TEMPLATE_HOLES} holes", start, src)
        pos = end + 2
    return Template(tuple(p for p in parts if p != ""), src)


def _parse_hole(src: str, start: int, end: int) -> _Hole:
    inner = src[start:end]
    try:
        p = Parser(inner, tokenize(inner))
        if p.tok.kind == "end":
            raise p.error("empty '{{ }}'")
        expr = p.parse_or()
        filters: list[tuple[str, tuple[Node, ...], int]] = []
        while p.accept("op", "|"):
            name_tok = p.accept("name")
            if name_tok is None:
                raise p.error("expected a filter name after '|'")
            if name_tok.text not in FILTERS:
                raise p.error(f"unknown filter {name_tok.text!r}", name_tok)
            args = p.parse_args(")") if p.accept("op", "(") else ()
            filters.append((name_tok.text, args, name_tok.pos))
        if p.tok.kind != "end":
            raise p.error(f"unexpected {p.tok.text!r}")
    except ExprError as e:
        raise type(e)(e.reason, start + e.pos, src) from e
    return _Hole(expr, tuple(filters), inner, start)


def render(
    src: str, scope: Mapping[str, Any], language: str | None = None, meter: Meter | None = None
) -> str:
    return compile_template(src).render(scope, language, meter)
