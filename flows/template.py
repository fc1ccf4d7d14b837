"""Prompt and SMS templates: text with ``{{ expr | filter | filter(arg) }}`` holes.

Holes use the sandboxed expression language of :mod:`flows.expr`; filters are a fixed whitelist
(no user-defined code). Compiling is cached and reports errors with their position in the whole
template text, so the console can underline the exact spot.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from flows.expr import (
    MAX_STRING_RESULT,
    ExprError,
    Node,
    _eval,
    _Parser,
    _to_float,
    _to_int,
    _to_str,
    tokenize,
    variables,
)

# --- templates ---------------------------------------------------------------------------------


def _digits(v: Any) -> str:
    return " ".join(_to_str(v))


def _money(v: Any) -> str:
    amount = _to_float(v)
    units, cents = divmod(round(abs(amount) * 100), 100)
    sign = "minus " if amount < 0 else ""
    return f"{sign}{units} dollars and {cents} cents"


FILTERS: dict[str, Callable[..., str | Any]] = {
    "upper": lambda v: _to_str(v).upper(),
    "lower": lambda v: _to_str(v).lower(),
    "trim": lambda v: _to_str(v).strip(),
    "default": lambda v, d="": d if v is None or v == "" else v,
    "digits": _digits,  # "1234" -> "1 2 3 4" so TTS reads digit by digit
    "money": _money,
    "mask": lambda v, keep=0: (
        "*" * max(0, len(_to_str(v)) - _to_int(keep))
        + (_to_str(v)[-_to_int(keep) :] if _to_int(keep) else "")
    ),
    "length": lambda v: len(v) if isinstance(v, str | list | dict) else 0,
}


@dataclass(frozen=True, slots=True)
class _Hole:
    expr: Node
    filters: tuple[tuple[str, tuple[Node, ...], int], ...]
    src: str


@dataclass(frozen=True, slots=True)
class Template:
    parts: tuple[str | _Hole, ...]
    source: str

    def render(self, scope: Mapping[str, Any]) -> str:
        out: list[str] = []
        for part in self.parts:
            if isinstance(part, str):
                out.append(part)
                continue
            try:
                value = _eval(part.expr, scope, part.src)
            except ExprError as e:
                if "undefined variable" in e.reason and any(
                    f == "default" for f, _, _ in part.filters
                ):
                    value = None
                else:
                    raise
            for name, args, pos in part.filters:
                argv = [_eval(a, scope, part.src) for a in args]
                try:
                    value = FILTERS[name](value, *argv)
                except (TypeError, ValueError) as e:
                    raise ExprError(f"filter {name!r}: {e}", pos, part.src) from e
            out.append(_to_str(value))
        text = "".join(out)
        if len(text) > MAX_STRING_RESULT:
            raise ExprError("rendered text too long", 0, self.source)
        return text

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
    parts: list[str | _Hole] = []
    pos = 0
    while True:
        start = src.find("{{", pos)
        if start < 0:
            if "}}" in src[pos:]:
                raise ExprError("'}}' without '{{'", src.index("}}", pos), src)
            parts.append(src[pos:])
            break
        if "}}" in src[pos:start]:
            raise ExprError("'}}' without '{{'", src.index("}}", pos), src)
        end = src.find("}}", start + 2)
        if end < 0:
            raise ExprError("'{{' is never closed", start, src)
        parts.append(src[pos:start])
        parts.append(_parse_hole(src, start + 2, end))
        pos = end + 2
    return Template(tuple(p for p in parts if p != ""), src)


def _parse_hole(src: str, start: int, end: int) -> _Hole:
    inner = src[start:end]
    try:
        p = _Parser(inner, tokenize(inner))
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
        raise ExprError(e.reason, start + e.pos, src) from e
    return _Hole(expr, tuple(filters), inner)


def render(src: str, scope: Mapping[str, Any]) -> str:
    return compile_template(src).render(scope)
