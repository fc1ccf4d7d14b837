"""What the validator reports: one :class:`Problem` per finding, tied to a node and port.

Codes (the console keys its help text on them): ``bad_json``, ``too_large``, ``too_deep``,
``too_long``, ``bad_value``, ``bad_params``, ``bad_edge``, ``unknown_node_type``,
``duplicate_node``, ``no_start``, ``multiple_starts``, ``edge_from_missing``, ``edge_to_missing``,
``unknown_port``, ``duplicate_edge``, ``unconnected_port``, ``no_budget``, ``no_max_visits``,
``unreachable``, ``no_exit``, ``loop_without_limit``, ``max_visits_unreachable``,
``unknown_subflow``, ``bad_expression``, ``bad_template``, ``undefined_variable``; at publish also
``blocked_words``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any


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
