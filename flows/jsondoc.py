"""Strict JSON in and safe JSON out, for flow files, case files and webhook replies.

Python's ``json`` module accepts things a flow must not: ``NaN``/``Infinity`` (stored as null, or
crashing later), duplicate keys (the last silently wins), nesting deep enough to raise
``RecursionError``, and bytes in any encoding once decoded by the caller. :func:`parse_json` turns
every such input into one :class:`JsonError` with a message a person can act on; it never raises
anything else. :func:`jsonable` is the way out: whatever a run produced (huge numbers, NaN from a
service, odd objects), the result can always be written as JSON.
"""

from __future__ import annotations

import json
import math
from typing import Any

MAX_JSON_DEPTH = 64  # flow and case documents; deeper data is refused before anything walks it
_UTF16_BOMS = (b"\xff\xfe", b"\xfe\xff")
_UTF32_BOMS = (b"\xff\xfe\x00\x00", b"\x00\x00\xfe\xff")


class JsonError(ValueError):
    """Text that is not a JSON document this engine accepts; the message says why."""


def decode_text(data: bytes) -> str:
    """UTF-8 (with or without BOM) to text; other encodings and binary data are named."""
    if data.startswith(_UTF32_BOMS):
        raise JsonError("the file is UTF-32 text, not UTF-8: save it as UTF-8")
    if data.startswith(_UTF16_BOMS) or data[:2].count(0) == 1:
        raise JsonError("the file is UTF-16 text, not UTF-8: save it as UTF-8")
    if b"\x00" in data[:4096]:
        raise JsonError("the file is binary data, not JSON text")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        bad = data[e.start : e.start + 1].hex()
        raise JsonError(
            f"the file is not UTF-8 text (byte 0x{bad} at offset {e.start}; a latin-1 or GBK "
            "file?): save it as UTF-8"
        ) from e


def _no_constants(name: str) -> Any:
    raise JsonError(f"{name} is not a JSON number")


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise JsonError(f"duplicate key {key!r} in one object")
        out[key] = value
    return out


def parse_json(text: str | bytes, *, unique_keys: bool = True) -> Any:
    """Parse JSON strictly: no NaN/Infinity, optionally no duplicate keys, bounded nesting.

    Raises :class:`JsonError` only; broken syntax names the line and column.
    """
    if isinstance(text, bytes):
        text = decode_text(text)
    try:
        return json.loads(
            text,
            parse_constant=_no_constants,
            object_pairs_hook=_unique_keys if unique_keys else None,
        )
    except JsonError:
        raise
    except json.JSONDecodeError as e:
        raise JsonError(f"not valid JSON: {e.msg} at line {e.lineno}, column {e.colno}") from e
    except RecursionError as e:
        raise JsonError("not valid JSON: nested too deeply") from e
    except ValueError as e:  # e.g. an integer literal over Python's 4,300-digit limit
        raise JsonError(f"not valid JSON: {e}".split(";")[0]) from e


def depth_exceeded(data: Any, max_depth: int = MAX_JSON_DEPTH) -> str | None:
    """The JSON path of the first place nested deeper than ``max_depth``, or None (iterative)."""
    stack: list[tuple[Any, int, str]] = [(data, 1, "$")]
    while stack:
        value, depth, path = stack.pop()
        if isinstance(value, dict | list):
            if depth > max_depth:
                return path
            items = value.items() if isinstance(value, dict) else enumerate(value)
            for key, child in items:
                if isinstance(child, dict | list):
                    step = f".{key}" if isinstance(key, str) else f"[{key}]"
                    stack.append((child, depth + 1, path + step))
    return None


MAX_SAFE_INT_BITS = 1000  # far below the 4,300-digit str() limit; bigger ints become text
MAX_JSONABLE_ITEMS = 100_000  # shared sub-lists are copied per reference: a DAG cannot explode


def jsonable(value: Any, max_depth: int = MAX_JSON_DEPTH) -> Any:
    """A copy of ``value`` that ``json.dumps`` always accepts (iterative and bounded).

    Huge integers and non-finite floats become strings, unknown objects their ``str()``; past
    ``max_depth`` levels or :data:`MAX_JSONABLE_ITEMS` values the rest is the string ``"..."``.
    """
    root: list[Any] = [None]
    stack: list[tuple[Any, Any, Any, int]] = [(value, root, 0, 0)]
    budget = MAX_JSONABLE_ITEMS
    while stack:
        item, parent, slot, depth = stack.pop()
        budget -= 1
        out = "..." if budget < 0 else _jsonable_leaf(item, depth, max_depth)
        parent[slot] = out
        if isinstance(item, dict) and isinstance(out, dict):
            for k, v in item.items():
                out[str(k)] = None
                stack.append((v, out, str(k), depth + 1))
        elif isinstance(item, list | tuple) and isinstance(out, list):
            stack.extend((v, out, i, depth + 1) for i, v in enumerate(item))
    return root[0]


def _jsonable_leaf(item: Any, depth: int, max_depth: int) -> Any:
    if item is None or isinstance(item, bool | str):
        return item
    if isinstance(item, int):
        bits = item.bit_length()
        return item if bits <= MAX_SAFE_INT_BITS else f"<integer of {bits} bits>"
    if isinstance(item, float):
        return item if math.isfinite(item) else str(item)
    if isinstance(item, dict | list | tuple):
        if depth >= max_depth:
            return "..."
        return {} if isinstance(item, dict) else [None] * len(item)
    return str(item)
