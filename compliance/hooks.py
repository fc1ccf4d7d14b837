"""Where the sensitive-word filter meets the rest of the engine: prompts, SMS and flows.

Text that is about to be spoken (TTS) or sent (SMS) goes through :func:`guard_text`, which raises
:class:`BlockedText` before anything leaves; a flow is checked once at publish by
:func:`check_flow`, which walks every string parameter of every node, so a prompt or SMS
template with a blocked term cannot be published and the error names the node.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from compliance.words import Hit, WordFilter


class BlockedText(ValueError):
    """Text with a blocking term; ``hits`` says which and where."""

    def __init__(self, where: str, hits: list[Hit]) -> None:
        terms = ", ".join(sorted({h.term for h in hits}))
        super().__init__(f"{where}: blocked term(s) {terms}")
        self.where = where
        self.hits = hits


def guard_text(text: str, word_filter: WordFilter, *, where: str = "text") -> str:
    """The text to speak/send (masked terms masked) or :class:`BlockedText`."""
    result = word_filter.scan(text)
    if result.blocked:
        raise BlockedText(where, [h for h in result.hits if h.action.value == "block"])
    return result.masked_text


@dataclass(frozen=True, slots=True)
class FlowTextProblem:
    node_id: str
    field: str  # dotted path inside the node's params, e.g. "sms.template"
    hits: list[Hit]
    blocked: bool

    @property
    def message(self) -> str:
        terms = ", ".join(sorted({h.term for h in self.hits}))
        verb = "blocked" if self.blocked else "flagged"
        return f"node {self.node_id}: {self.field} contains {verb} term(s) {terms}"


def _strings(value: Any, path: str) -> Iterator[tuple[str, str]]:
    if isinstance(value, str):
        yield path, value
    elif isinstance(value, Mapping):
        for k, v in value.items():
            yield from _strings(v, f"{path}.{k}" if path else str(k))
    elif isinstance(value, list | tuple):
        for i, v in enumerate(value):
            yield from _strings(v, f"{path}[{i}]")


def check_flow(flow: Mapping[str, Any], word_filter: WordFilter) -> list[FlowTextProblem]:
    """Every node string (prompts, SMS templates, ...) with a hit; ``blocked`` ones stop publish."""
    problems: list[FlowTextProblem] = []
    for node in flow.get("nodes", []):
        node_id = str(node.get("id", "?"))
        for path, text in _strings(node.get("params", {}), ""):
            result = word_filter.scan(text)
            if result.hits:
                problems.append(FlowTextProblem(node_id, path, result.hits, result.blocked))
    return problems


class FlowBlocked(ValueError):
    def __init__(self, problems: list[FlowTextProblem]) -> None:
        super().__init__("; ".join(p.message for p in problems))
        self.problems = problems


def assert_flow_publishable(flow: Mapping[str, Any], word_filter: WordFilter) -> None:
    """Raise :class:`FlowBlocked` naming each node whose text has a blocking term."""
    blocked = [p for p in check_flow(flow, word_filter) if p.blocked]
    if blocked:
        raise FlowBlocked(blocked)
