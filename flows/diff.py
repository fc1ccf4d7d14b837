"""What changed between two versions of a flow (or a version and the draft): nodes added,
removed and changed (which fields), edges added and removed, and top-level fields changed.

Works on raw documents, so a draft that does not validate yet can still be compared; entries
without an id are ignored rather than crashing the comparison.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

NODE_FIELDS_IGNORED = frozenset({"position"})  # moving a node on the canvas is not a change


@dataclass(slots=True)
class NodeChange:
    id: str
    fields: list[str]


@dataclass(slots=True)
class FlowDiff:
    nodes_added: list[str] = field(default_factory=list)
    nodes_removed: list[str] = field(default_factory=list)
    nodes_changed: list[NodeChange] = field(default_factory=list)
    edges_added: list[dict[str, str]] = field(default_factory=list)
    edges_removed: list[dict[str, str]] = field(default_factory=list)
    fields_changed: list[str] = field(default_factory=list)  # name, variables, language, ...
    moved: list[str] = field(default_factory=list)  # nodes only moved on the canvas

    @property
    def empty(self) -> bool:
        return not (self.nodes_added or self.nodes_removed or self.nodes_changed
                    or self.edges_added or self.edges_removed or self.fields_changed)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _nodes(doc: dict[str, Any]) -> dict[str, dict[str, Any]]:
    nodes = doc.get("nodes")
    if not isinstance(nodes, list):
        return {}
    return {str(n["id"]): n for n in nodes if isinstance(n, dict) and "id" in n}


def _edges(doc: dict[str, Any]) -> set[tuple[str, str, str]]:
    edges = doc.get("edges")
    if not isinstance(edges, list):
        return set()
    return {(str(e.get("from")), str(e.get("port")), str(e.get("to")))
            for e in edges if isinstance(e, dict)}


def diff_flows(old: dict[str, Any], new: dict[str, Any]) -> FlowDiff:
    out = FlowDiff()
    a, b = _nodes(old), _nodes(new)
    out.nodes_added = sorted(b.keys() - a.keys())
    out.nodes_removed = sorted(a.keys() - b.keys())
    for nid in sorted(a.keys() & b.keys()):
        keys = (a[nid].keys() | b[nid].keys())
        changed = sorted(k for k in keys if k not in NODE_FIELDS_IGNORED
                         and a[nid].get(k) != b[nid].get(k))
        if changed:
            out.nodes_changed.append(NodeChange(nid, changed))
        elif a[nid].get("position") != b[nid].get("position"):
            out.moved.append(nid)
    ea, eb = _edges(old), _edges(new)
    out.edges_added = [{"from": f, "port": p, "to": t} for f, p, t in sorted(eb - ea)]
    out.edges_removed = [{"from": f, "port": p, "to": t} for f, p, t in sorted(ea - eb)]
    top = (old.keys() | new.keys()) - {"nodes", "edges"}
    out.fields_changed = sorted(k for k in top if old.get(k) != new.get(k))
    return out
