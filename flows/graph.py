"""Graph algorithms for the validator, all iterative: a 5,000-node chain must not hit Python's
recursion limit, and each runs in time linear in nodes plus edges."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection, Iterable, Iterator, Mapping

Succ = Mapping[str, Collection[str]]


def reachable(start: str, succ: Succ) -> set[str]:
    seen = {start}
    stack = [start]
    while stack:
        for nxt in succ.get(stack.pop(), ()):
            if nxt not in seen:
                seen.add(nxt)
                stack.append(nxt)
    return seen


def reverse(succ: Succ) -> dict[str, set[str]]:
    pred: dict[str, set[str]] = defaultdict(set)
    for src, dsts in succ.items():
        for d in dsts:
            pred[d].add(src)
    return pred


def can_reach(targets: Iterable[str], succ: Succ) -> set[str]:
    """Every node with a path to one of ``targets`` (the targets included)."""
    pred = reverse(succ)
    found = set(targets)
    stack = list(found)
    while stack:
        for p in pred.get(stack.pop(), ()):
            if p not in found:
                found.add(p)
                stack.append(p)
    return found


def strongly_connected(nodes: Iterable[str], succ: Succ) -> list[list[str]]:
    """Tarjan's strongly connected components over ``nodes``, with an explicit stack.

    Edges to nodes outside ``nodes`` are ignored, so passing a subset gives the components of
    the induced subgraph (used to find cycles that avoid every guarded node).
    """
    members = set(nodes)
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    comps: list[list[str]] = []

    adjacent = {v: sorted(w for w in succ.get(v, ()) if w in members) for v in members}

    def successors(v: str) -> Iterator[str]:
        return iter(adjacent[v])

    for root in sorted(members):
        if root in index:
            continue
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        work: list[tuple[str, Iterator[str]]] = [(root, successors(root))]
        while work:
            v, children = work[-1]
            for w in children:
                if w not in index:
                    index[w] = low[w] = len(index)
                    stack.append(w)
                    on_stack.add(w)
                    work.append((w, successors(w)))
                    break
                if w in on_stack:
                    low[v] = min(low[v], index[w])
            else:
                work.pop()
                if work:
                    parent = work[-1][0]
                    low[parent] = min(low[parent], low[v])
                if low[v] == index[v]:
                    comp: list[str] = []
                    while True:
                        w = stack.pop()
                        on_stack.discard(w)
                        comp.append(w)
                        if w == v:
                            break
                    comps.append(comp)
    return comps


def cycles(nodes: Iterable[str], succ: Succ) -> list[list[str]]:
    """The components of the induced subgraph that contain a cycle, each sorted."""
    out = []
    for comp in strongly_connected(nodes, succ):
        if len(comp) > 1 or comp[0] in succ.get(comp[0], ()):
            out.append(sorted(comp))
    return sorted(out)
