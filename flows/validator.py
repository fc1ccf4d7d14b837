"""The flow validator: every problem at once, each tied to a node and port for the console.

It never stops at the first error: document limits, structure, node params, edges, ports,
reachability, exits, loops, subflows and variables are all checked and reported as
:class:`Problem` objects (``{node_id, port, code, message}``) that the console paints on the graph.
Use :func:`compile_flow` to get a runnable :class:`CompiledFlow` or a :class:`FlowInvalid`
carrying the problems. Graph rules run iteratively (:mod:`flows.graph`), so a flow's size, not
Python's recursion limit, bounds what can be validated.

Loops: every cycle must pass through a node with ``max_visits`` (checked on the graph with the
guarded nodes removed, so an unguarded inner loop inside a guarded outer one is found), and a
``max_visits`` on a loop that takes no caller input must be below the runaway guard
(:data:`~flows.model.MAX_VISITS_IN_A_ROW` entries without input), or it could never fire.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from flows.document import (
    document_problems,
    load_flow_file,
    load_json,
    parse_structure,
    pydantic_problems,
)
from flows.expr import ExprError, parse, variables
from flows.graph import can_reach, cycles, reachable
from flows.model import (
    BUILTIN_VARIABLES,
    COMMON_PORTS,
    MAX_VISITS_IN_A_ROW,
    MAX_VISITS_PORT,
    OVER_BUDGET_PORT,
    Flow,
)
from flows.nodes import REGISTRY, NodeType
from flows.problems import FlowInvalid, Problem
from flows.template import compile_template

__all__ = [
    "CompiledFlow",
    "FlowInvalid",
    "Problem",
    "compile_flow",
    "load_flow_file",
    "load_json",
    "validate",
]


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


def validate(
    data: dict[str, Any] | Flow, *, known_flows: Collection[str] | None = None
) -> list[Problem]:
    """All problems in a flow document (empty list: the flow can be published).

    ``known_flows``: ids a ``subflow`` node may call (published flows, or flow files next to
    this one); None skips that check (e.g. when the caller resolves subflows itself).
    """
    return _validate(data, known_flows)[0]


def compile_flow(
    data: dict[str, Any] | Flow, *, known_flows: Collection[str] | None = None
) -> CompiledFlow:
    problems, compiled = _validate(data, known_flows)
    if problems or compiled is None:
        raise FlowInvalid(problems)
    return compiled


def _validate(
    data: dict[str, Any] | Flow, known_flows: Collection[str] | None
) -> tuple[list[Problem], CompiledFlow | None]:
    problems: list[Problem] = []
    if isinstance(data, Flow):
        flow: Flow | None = data
    else:
        if not isinstance(data, dict):
            return [Problem(None, None, "bad_json", "a flow must be a JSON object")], None
        problems, fatal = document_problems(data)
        if fatal:
            return problems, None
        flow = parse_structure(data, problems)
    if flow is None:
        return problems, None

    nodes, seen = _node_objects(flow, problems)
    starts = [s.id for s in flow.nodes if s.type == "start"]
    if not starts:
        problems.append(Problem(None, None, "no_start", "the flow has no 'start' node"))
    for extra in starts[1:]:
        problems.append(Problem(extra, None, "multiple_starts", "only one 'start' node is allowed"))
    edges = _edge_table(flow, nodes, seen, problems)
    problems.extend(_port_problems(nodes, edges))

    succ: dict[str, set[str]] = defaultdict(set)
    for (src, _port), dst in edges.items():
        succ[src].add(dst)
    start = starts[0] if starts else None
    reach = reachable(start, succ) if start else set()
    for spec in flow.nodes:
        if start and spec.id not in reach and spec.id in seen:
            problems.append(
                Problem(spec.id, None, "unreachable", "no path from 'start' leads to this node")
            )
    problems.extend(_exit_problems(nodes, succ, reach))
    problems.extend(_loop_problems(nodes, succ, reach))
    if known_flows is not None:
        problems.extend(_subflow_problems(nodes, {*known_flows, flow.id}))
    problems.extend(_variable_problems(flow, nodes))

    # dedupe while keeping order (a node can trip the same rule twice through params)
    uniq = list(dict.fromkeys(problems))
    if uniq or start is None:
        return uniq, None
    return [], CompiledFlow(flow, nodes, edges, start, None, flow.content_hash())


def _node_objects(flow: Flow, problems: list[Problem]) -> tuple[dict[str, NodeType], set[str]]:
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
            problems.extend(pydantic_problems(e, spec.id, f"{spec.type} params: "))
    return nodes, seen


def _edge_table(
    flow: Flow, nodes: dict[str, NodeType], seen: set[str], problems: list[Problem]
) -> dict[tuple[str, str], str]:
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
    return edges


def _port_problems(nodes: dict[str, NodeType], edges: dict[tuple[str, str], str]) -> list[Problem]:
    out: list[Problem] = []
    for nid, node in nodes.items():
        for port in node.required_ports():
            if (nid, port) not in edges:
                out.append(
                    Problem(
                        nid, port, "unconnected_port", f"port {port!r} is not connected to any node"
                    )
                )
        if node.spec.max_visits is not None and (nid, MAX_VISITS_PORT) not in edges:
            out.append(
                Problem(
                    nid,
                    MAX_VISITS_PORT,
                    "unconnected_port",
                    f"max_visits is {node.spec.max_visits} but the 'max_visits' port is not "
                    "connected: say where the call goes when the limit is reached",
                )
            )
        if node.spec.budget_ms is None and (nid, OVER_BUDGET_PORT) in edges:
            out.append(
                Problem(
                    nid,
                    OVER_BUDGET_PORT,
                    "no_budget",
                    "the 'over_budget' port is connected but the node declares no budget_ms",
                )
            )
        if node.spec.max_visits is None and (nid, MAX_VISITS_PORT) in edges:
            out.append(
                Problem(
                    nid,
                    MAX_VISITS_PORT,
                    "no_max_visits",
                    "the 'max_visits' port is connected but the node declares no max_visits",
                )
            )
    return out


def _exit_problems(
    nodes: dict[str, NodeType], succ: dict[str, set[str]], reach: set[str]
) -> list[Problem]:
    """Nodes from which no path ends the call (hangup, transfer or return)."""
    can_exit = can_reach((nid for nid, n in nodes.items() if n.is_terminal), succ)
    return [
        Problem(
            nid,
            None,
            "no_exit",
            "no path from this node reaches a 'hangup', 'transfer' or 'return' node",
        )
        for nid in nodes
        if nid in reach and nid not in can_exit
    ]


def _loop_problems(
    nodes: dict[str, NodeType], succ: dict[str, set[str]], reach: set[str]
) -> list[Problem]:
    """Cycles that avoid every ``max_visits`` node, and limits the runaway guard pre-empts."""
    out = []
    unguarded = [n for n in reach if n in nodes and not nodes[n].spec.max_visits]
    for comp in cycles(unguarded, succ):
        out.append(
            Problem(
                comp[0],
                None,
                "loop_without_limit",
                f"the loop through {', '.join(comp)} has no retry limit: set max_visits on one "
                "of these nodes",
            )
        )
    silent = [n for n in reach if n in nodes and not nodes[n].takes_input]
    for comp in cycles(silent, succ):
        for nid in comp:
            limit = nodes[nid].spec.max_visits
            if limit is not None and limit >= MAX_VISITS_IN_A_ROW:
                out.append(
                    Problem(
                        nid,
                        MAX_VISITS_PORT,
                        "max_visits_unreachable",
                        f"max_visits {limit} can never be reached: the loop through "
                        f"{', '.join(comp)} waits for no caller input, and the runaway guard "
                        f"ends the call after {MAX_VISITS_IN_A_ROW} entries of a node without "
                        f"input; use max_visits {MAX_VISITS_IN_A_ROW - 1} or less, or put an "
                        "input node in the loop",
                    )
                )
    return out


def _subflow_problems(nodes: dict[str, NodeType], known: set[str]) -> list[Problem]:
    out = []
    for nid, node in nodes.items():
        target = node.calls_flow()
        if target is not None and target not in known:
            out.append(
                Problem(
                    nid,
                    None,
                    "unknown_subflow",
                    f"calls flow {target!r}, which is not published (publish it first)",
                )
            )
    return out


def _expr_code(e: ExprError, default: str) -> str:
    return e.code if e.code in ("too_deep", "too_long") else default


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
                out.append(Problem(nid, None, _expr_code(e, "bad_expression"), f"{field}: {e}"))
        for field, src in node.templates():
            try:
                tpl = compile_template(src)
                items.append((field, tpl.variables(), tpl))
            except ExprError as e:
                out.append(Problem(nid, None, _expr_code(e, "bad_template"), f"{field}: {e}"))
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
