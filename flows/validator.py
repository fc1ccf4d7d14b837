"""The flow validator: every problem at once, each tied to a node and port for the console.

It never stops at the first error: structure, node params, edges, ports, reachability, exits,
loops and variables are all checked and reported as :class:`Problem` objects
(``{node_id, port, code, message}``) that the console paints on the graph. Use :func:`compile_flow`
to get a runnable :class:`CompiledFlow` or a :class:`FlowInvalid` carrying the problems.
"""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import asdict, dataclass
from typing import Any

from pydantic import ValidationError

from flows.expr import ExprError, parse, variables
from flows.model import (
    BUILTIN_VARIABLES,
    COMMON_PORTS,
    MAX_VISITS_PORT,
    OVER_BUDGET_PORT,
    Flow,
    NodeSpec,
)
from flows.nodes import REGISTRY, NodeType
from flows.template import compile_template


@dataclass(frozen=True, slots=True)
class Problem:
    node_id: str | None
    port: str | None
    code: str
    message: str

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def __str__(self) -> str:
        where = f"[{self.node_id}{'.' + self.port if self.port else ''}] " if self.node_id else ""
        return f"{where}{self.code}: {self.message}"


class FlowInvalid(ValueError):
    def __init__(self, problems: list[Problem]) -> None:
        super().__init__(f"{len(problems)} problem(s): " + "; ".join(str(p) for p in problems[:5]))
        self.problems = problems


@dataclass(frozen=True, slots=True)
class CompiledFlow:
    """A validated flow ready to run: node objects and an edge table. Immutable once built."""

    flow: Flow
    nodes: dict[str, NodeType]
    edges: dict[tuple[str, str], str]
    start_id: str
    version: int | None = None
    content_hash: str = ""

    @property
    def id(self) -> str:
        return self.flow.id


def _loc(err: Any) -> str:
    return ".".join(str(p) for p in err["loc"]) or "(root)"


def _pydantic_problems(e: ValidationError, node_id: str | None, prefix: str) -> list[Problem]:
    out = []
    for err in e.errors():
        field = _loc(err)
        msg = err["msg"].removeprefix("Value error, ")
        out.append(Problem(node_id, None, "bad_params", f"{prefix}{field}: {msg}"))
    return out


def load_json(text: str) -> dict[str, Any]:
    """Parse flow JSON text; raises FlowInvalid with line/column on broken JSON."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        raise FlowInvalid(
            [
                Problem(
                    None,
                    None,
                    "bad_json",
                    f"not valid JSON: {e.msg} at line {e.lineno}, column {e.colno}",
                )
            ]
        ) from e
    if not isinstance(data, dict):
        raise FlowInvalid([Problem(None, None, "bad_json", "a flow must be a JSON object")])
    return data


def _parse_structure(data: dict[str, Any], problems: list[Problem]) -> Flow | None:
    """Validate the document shell; node entries that are broken are dropped with a problem."""
    raw_nodes = data.get("nodes")
    good_nodes: list[dict[str, Any]] = []
    if isinstance(raw_nodes, list):
        for i, raw in enumerate(raw_nodes):
            nid = raw.get("id") if isinstance(raw, dict) else None
            try:
                NodeSpec.model_validate(raw)
                good_nodes.append(raw)
            except ValidationError as e:
                problems.extend(_pydantic_problems(e, str(nid) if nid else None, f"nodes[{i}]."))
    shell = {**data, "nodes": good_nodes if isinstance(raw_nodes, list) else raw_nodes}
    try:
        return Flow.model_validate(shell)
    except ValidationError as e:
        problems.extend(_pydantic_problems(e, None, ""))
        return None


def validate(data: dict[str, Any] | Flow) -> list[Problem]:
    """All problems in a flow document (empty list: the flow can be published)."""
    return _validate(data)[0]


def compile_flow(data: dict[str, Any] | Flow) -> CompiledFlow:
    problems, compiled = _validate(data)
    if problems or compiled is None:
        raise FlowInvalid(problems)
    return compiled


def _validate(data: dict[str, Any] | Flow) -> tuple[list[Problem], CompiledFlow | None]:
    problems: list[Problem] = []
    flow = data if isinstance(data, Flow) else _parse_structure(data, problems)
    if flow is None:
        return problems, None

    # nodes: ids, types, params
    nodes: dict[str, NodeType] = {}
    seen: set[str] = set()
    for spec in flow.nodes:
        if spec.id in seen:
            problems.append(
                Problem(spec.id, None, "duplicate_node", f"two nodes have the id {spec.id!r}")
            )
            continue
        seen.add(spec.id)
        cls = REGISTRY.get(spec.type)
        if cls is None:
            problems.append(
                Problem(
                    spec.id,
                    None,
                    "unknown_node_type",
                    f"unknown node type {spec.type!r}; known types: {', '.join(sorted(REGISTRY))}",
                )
            )
            continue
        try:
            nodes[spec.id] = cls.parse(spec)
        except ValidationError as e:
            problems.extend(_pydantic_problems(e, spec.id, f"{spec.type} params: "))
    starts = [s.id for s in flow.nodes if s.type == "start"]
    if not starts:
        problems.append(Problem(None, None, "no_start", "the flow has no 'start' node"))
    for extra in starts[1:]:
        problems.append(Problem(extra, None, "multiple_starts", "only one 'start' node is allowed"))

    # edges
    edges: dict[tuple[str, str], str] = {}
    for edge in flow.edges:
        if edge.from_ not in seen:
            problems.append(
                Problem(
                    edge.from_,
                    edge.port,
                    "edge_from_missing",
                    f"an edge starts at node {edge.from_!r}, which does not exist",
                )
            )
            continue
        if edge.to not in seen:
            problems.append(
                Problem(
                    edge.from_,
                    edge.port,
                    "edge_to_missing",
                    f"port {edge.port!r} leads to node {edge.to!r}, which does not exist",
                )
            )
            continue
        node = nodes.get(edge.from_)
        if node is not None and edge.port not in node.ports() + COMMON_PORTS:
            problems.append(
                Problem(
                    edge.from_,
                    edge.port,
                    "unknown_port",
                    f"a {node.type_name} node has no port {edge.port!r}; its ports "
                    f"are {', '.join(node.ports() + COMMON_PORTS)}",
                )
            )
            continue
        if (edge.from_, edge.port) in edges:
            problems.append(
                Problem(
                    edge.from_,
                    edge.port,
                    "duplicate_edge",
                    f"port {edge.port!r} is connected more than once",
                )
            )
            continue
        edges[(edge.from_, edge.port)] = edge.to

    for nid, node in nodes.items():
        for port in node.required_ports():
            if (nid, port) not in edges:
                problems.append(
                    Problem(
                        nid, port, "unconnected_port", f"port {port!r} is not connected to any node"
                    )
                )
        if node.spec.budget_ms is None and (nid, OVER_BUDGET_PORT) in edges:
            problems.append(
                Problem(
                    nid,
                    OVER_BUDGET_PORT,
                    "no_budget",
                    "the 'over_budget' port is connected but the node declares no budget_ms",
                )
            )
        if node.spec.max_visits is None and (nid, MAX_VISITS_PORT) in edges:
            problems.append(
                Problem(
                    nid,
                    MAX_VISITS_PORT,
                    "no_max_visits",
                    "the 'max_visits' port is connected but the node declares no max_visits",
                )
            )

    succ: dict[str, set[str]] = defaultdict(set)
    for (src, _port), dst in edges.items():
        succ[src].add(dst)
    start = starts[0] if starts else None
    reachable = _reach(start, succ) if start else set()
    for spec in flow.nodes:
        if start and spec.id not in reachable and spec.id in seen:
            problems.append(
                Problem(spec.id, None, "unreachable", "no path from 'start' leads to this node")
            )
    problems.extend(_exit_problems(nodes, succ, reachable))
    problems.extend(_loop_problems(nodes, succ, reachable))
    problems.extend(_variable_problems(flow, nodes))

    # dedupe while keeping order (a node can trip the same rule twice through params)
    uniq = list(dict.fromkeys(problems))
    if uniq or start is None:
        return uniq, None
    return [], CompiledFlow(flow, nodes, edges, start, None, flow.content_hash())


def _reach(start: str, succ: dict[str, set[str]]) -> set[str]:
    seen = {start}
    stack = [start]
    while stack:
        for nxt in succ.get(stack.pop(), ()):
            if nxt not in seen:
                seen.add(nxt)
                stack.append(nxt)
    return seen


def _exit_problems(
    nodes: dict[str, NodeType], succ: dict[str, set[str]], reachable: set[str]
) -> list[Problem]:
    """Nodes from which no path ends the call (hangup, transfer or return)."""
    pred: dict[str, set[str]] = defaultdict(set)
    for src, dsts in succ.items():
        for d in dsts:
            pred[d].add(src)
    can_exit = {nid for nid, n in nodes.items() if n.is_terminal}
    stack = list(can_exit)
    while stack:
        for p in pred.get(stack.pop(), ()):
            if p not in can_exit:
                can_exit.add(p)
                stack.append(p)
    return [
        Problem(
            nid,
            None,
            "no_exit",
            "no path from this node reaches a 'hangup', 'transfer' or 'return' node",
        )
        for nid in nodes
        if nid in reachable and nid not in can_exit
    ]


def _loop_problems(
    nodes: dict[str, NodeType], succ: dict[str, set[str]], reachable: set[str]
) -> list[Problem]:
    """Cycles (strongly connected components) in which no node declares ``max_visits``."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    comps: list[list[str]] = []
    counter = 0

    def strong(v: str) -> None:  # Tarjan; flows are small, recursion depth is bounded by nodes
        nonlocal counter
        index[v] = low[v] = counter
        counter += 1
        stack.append(v)
        on_stack.add(v)
        for w in succ.get(v, ()):
            if w not in index:
                strong(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            comps.append(comp)

    for v in sorted(reachable):
        if v not in index:
            strong(v)
    out = []
    for comp in comps:
        is_cycle = len(comp) > 1 or comp[0] in succ.get(comp[0], ())
        if not is_cycle:
            continue
        if any(nodes[n].spec.max_visits for n in comp if n in nodes):
            continue
        first = sorted(comp)[0]
        out.append(
            Problem(
                first,
                None,
                "loop_without_limit",
                f"the loop through {', '.join(sorted(comp))} has no retry limit: set "
                "max_visits on one of these nodes",
            )
        )
    return out


def _variable_problems(flow: Flow, nodes: dict[str, NodeType]) -> list[Problem]:
    defined = set(flow.variables) | set(BUILTIN_VARIABLES)
    for node in nodes.values():
        defined.update(node.assigns())
    out: list[Problem] = []
    for nid, node in nodes.items():
        items: list[tuple[str, set[tuple[str, ...]], Any]] = []
        for field, src in node.expressions():
            try:
                items.append((field, variables(parse(src)), None))
            except ExprError as e:
                out.append(Problem(nid, None, "bad_expression", f"{field}: {e}"))
        for field, src in node.templates():
            try:
                tpl = compile_template(src)
                items.append((field, tpl.variables(), tpl))
            except ExprError as e:
                out.append(Problem(nid, None, "bad_template", f"{field}: {e}"))
        for field, paths, tpl in items:
            for path in sorted(paths):
                if path[0] in defined or (tpl is not None and tpl.has_default(path)):
                    continue
                out.append(
                    Problem(
                        nid,
                        None,
                        "undefined_variable",
                        f"{field} reads {'.'.join(path)!r}, which no node sets and "
                        "the flow does not declare in 'variables'",
                    )
                )
    return out
