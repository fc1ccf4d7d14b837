"""From bytes to a :class:`~flows.model.Flow`: loading, document limits and the shell.

Every way a file or a posted document can be wrong becomes a :class:`~flows.problems.Problem`,
never a traceback: not UTF-8 (latin-1, UTF-16, binary), broken or non-standard JSON (NaN,
duplicate keys, 100k-deep nesting), too big (bytes, nodes, edges, one string), nested too deep,
numbers no flow can use. Structure errors are collected per node and per edge, so one bad entry
(an illegal port name) never hides the problems of the rest of the graph.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from pydantic import TypeAdapter, ValidationError

from flows.expr import LimitExceeded, check_value
from flows.jsondoc import MAX_JSON_DEPTH, JsonError, depth_exceeded, parse_json
from flows.model import (
    MAX_DOC_TEXT_CHARS,
    MAX_EDGES,
    MAX_FLOW_BYTES,
    MAX_NODES,
    Edge,
    Flow,
    NodeSpec,
)
from flows.problems import FlowInvalid, Problem

MAX_DOC_INT_BITS = 1000  # a document number past this is no use to any flow (and slow to print)
_LIST_ADAPTERS: dict[type, TypeAdapter[Any]] = {
    NodeSpec: TypeAdapter(list[NodeSpec]),
    Edge: TypeAdapter(list[Edge]),
}


def load_json(text: str | bytes) -> dict[str, Any]:
    """Parse flow JSON text; raises :class:`FlowInvalid` (``bad_json``/``too_large``)."""
    if len(text) > MAX_FLOW_BYTES:
        raise FlowInvalid(
            [Problem(None, None, "too_large", f"a flow file is at most {MAX_FLOW_BYTES} bytes")]
        )
    try:
        data = parse_json(text)
    except JsonError as e:
        raise FlowInvalid([Problem(None, None, "bad_json", str(e))]) from e
    if not isinstance(data, dict):
        raise FlowInvalid([Problem(None, None, "bad_json", "a flow must be a JSON object")])
    return data


def load_flow_file(path: Path) -> dict[str, Any]:
    """Read and parse a flow file, reading no more than the size limit allows."""
    try:
        with path.open("rb") as f:
            data = f.read(MAX_FLOW_BYTES + 1)
    except OSError as e:
        raise FlowInvalid([Problem(None, None, "bad_json", f"cannot read the file: {e}")]) from e
    return load_json(data)


def _loc(err: Any) -> str:
    return ".".join(str(p) for p in err["loc"]) or "(root)"


def pydantic_problems(
    e: ValidationError, node_id: str | None, prefix: str, code: str = "bad_params", port: Any = None
) -> list[Problem]:
    out = []
    for err in e.errors():
        msg = err["msg"].removeprefix("Value error, ")
        out.append(
            Problem(
                node_id,
                port if isinstance(port, str) else None,
                code,
                f"{prefix}{_loc(err)}: {msg}",
            )
        )
    return out


def _where(data: dict[str, Any], path: tuple[Any, ...]) -> str | None:
    """The node id a document path points into (``nodes[3]...`` -> that node's id)."""
    if len(path) >= 2 and path[0] == "nodes" and isinstance(path[1], int):
        node = data["nodes"][path[1]]
        nid = node.get("id") if isinstance(node, dict) else None
        return nid if isinstance(nid, str) else None
    return None


def _path_text(path: tuple[Any, ...]) -> str:
    return "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in path).lstrip(".")


def document_problems(data: dict[str, Any]) -> tuple[list[Problem], bool]:
    """Limits on the raw document; returns (problems, fatal). Fatal: do not validate further.

    One iterative pass without paths (the common case: nothing wrong); a second pass that
    tracks paths runs only when something was found, to name where."""
    for key, limit in (("nodes", MAX_NODES), ("edges", MAX_EDGES)):
        items = data.get(key)
        if isinstance(items, list) and len(items) > limit:
            return [
                Problem(None, None, "too_large", f"{len(items)} {key}; a flow has at most {limit}")
            ], True
    if _suspicious(data):
        deep = depth_exceeded(data, MAX_JSON_DEPTH)
        if deep is not None:
            return [
                Problem(
                    None, None, "too_deep", f"nested deeper than {MAX_JSON_DEPTH} levels at {deep}"
                )
            ], True
        problems = _value_problems(data)
    else:
        problems = []
    variables = data.get("variables")
    if isinstance(variables, dict):
        for name, default in variables.items():
            try:
                check_value(default)
            except LimitExceeded as e:
                problems.append(Problem(None, None, "bad_value", f"variables.{name}: {e}"))
    return problems, False


def _bad_scalar(value: Any) -> bool:
    if isinstance(value, str):
        return len(value) > MAX_DOC_TEXT_CHARS
    if isinstance(value, float):
        return not math.isfinite(value)
    return isinstance(value, int) and value.bit_length() > MAX_DOC_INT_BITS


def _suspicious(data: Any) -> bool:
    """True if anything is nested too deep or is a bad scalar (fast: no paths)."""
    stack: list[tuple[Any, int]] = [(data, 1)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, dict | list):
            if depth > MAX_JSON_DEPTH:
                return True
            children = value.values() if isinstance(value, dict) else value
            for child in children:
                if isinstance(child, dict | list):
                    stack.append((child, depth + 1))
                elif _bad_scalar(child):
                    return True
        elif _bad_scalar(value):
            return True
    return False


def _value_problems(data: dict[str, Any]) -> list[Problem]:
    problems: list[Problem] = []
    stack: list[tuple[Any, tuple[Any, ...]]] = [(data, ())]
    while stack:
        value, path = stack.pop()
        if isinstance(value, dict):
            stack.extend((v, (*path, k)) for k, v in value.items())
        elif isinstance(value, list):
            stack.extend((v, (*path, i)) for i, v in enumerate(value))
        elif isinstance(value, str) and _bad_scalar(value):
            problems.append(
                Problem(
                    _where(data, path),
                    None,
                    "too_long",
                    f"{_path_text(path)}: text of {len(value)} characters; at most "
                    f"{MAX_DOC_TEXT_CHARS}",
                )
            )
        elif _bad_scalar(value):
            problems.append(
                Problem(
                    _where(data, path),
                    None,
                    "bad_value",
                    f"{_path_text(path)}: not a usable number (NaN, infinite or enormous)",
                )
            )
    return problems


def parse_structure(data: dict[str, Any], problems: list[Problem]) -> Flow | None:
    """Validate the document shell; broken node and edge entries are dropped with a problem
    each, broken top-level fields are reported and replaced by placeholders, so the graph
    rules still run and report everything else."""
    good_nodes = _good_entries(data.get("nodes"), NodeSpec, "nodes", problems)
    good_edges = _good_entries(data.get("edges"), Edge, "edges", problems)
    shell = {**data, "nodes": good_nodes, "edges": good_edges}
    try:
        return Flow.model_validate(shell)
    except ValidationError as e:
        problems.extend(pydantic_problems(e, None, ""))
        bad = {err["loc"][0] for err in e.errors() if err["loc"]}
    if bad & {"nodes", "edges"} or not isinstance(data.get("nodes"), list):
        return None
    patched = {k: v for k, v in shell.items() if k not in bad}
    patched.setdefault("id", "invalid")
    patched.setdefault("name", "invalid")
    try:
        return Flow.model_validate(patched)
    except ValidationError:
        return None


def _good_entries(
    raw: Any, model: type[NodeSpec] | type[Edge], key: str, problems: list[Problem]
) -> Any:
    if not isinstance(raw, list):
        return raw  # the shell check reports it
    try:  # the common case, all good: one pydantic call for the whole list
        return _LIST_ADAPTERS[model].validate_python(raw)
    except ValidationError:
        pass  # find the bad entries one by one
    good: list[NodeSpec | Edge] = []  # validated once; Flow takes the instances as they are
    for i, entry in enumerate(raw):
        try:
            good.append(model.model_validate(entry))
        except ValidationError as e:
            if model is NodeSpec:
                nid = entry.get("id") if isinstance(entry, dict) else None
                problems.extend(
                    pydantic_problems(e, nid if isinstance(nid, str) else None, f"{key}[{i}].")
                )
            else:
                src = entry.get("from") if isinstance(entry, dict) else None
                port = entry.get("port") if isinstance(entry, dict) else None
                problems.extend(
                    pydantic_problems(
                        e, src if isinstance(src, str) else None, f"{key}[{i}].", "bad_edge", port
                    )
                )
    return good
