"""Generates the published JSON Schema from the pydantic models (the one source of truth).

The loose :class:`~flows.model.NodeSpec` keeps ``params`` as a dict so the validator can report
every broken node; for outside tools the schema instead says, per node ``type``, exactly which
params are allowed, as a discriminated union built from the node registry. A unit test checks
that ``flows/schema/flow.schema.json`` matches this output, so the file never drifts.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any, Literal, Union

from pydantic import Field, create_model

from flows.model import COMMON_PORTS, Flow, NodeSpec
from flows.nodes import REGISTRY

SCHEMA_PATH = Path(__file__).parent / "schema" / "flow.schema.json"
SCHEMA_ID = "https://ivr-engine.local/schemas/flow.schema.json"


def _strict_flow_model() -> type[Flow]:
    variants: list[Any] = []
    for name in sorted(REGISTRY):
        cls = REGISTRY[name]
        type_literal: Any = Literal[name]
        model = create_model(
            f"{cls.__name__.removesuffix('Node')}NodeSpec",
            __base__=NodeSpec,
            __doc__=(cls.__doc__ or f"A '{name}' node.").strip().splitlines()[0],
            type=(type_literal, ...),
            params=(cls.Params, Field(default_factory=cls.Params) if _all_optional(cls) else ...),
        )
        variants.append(model)
    union: Any = Annotated[Union[tuple(variants)], Field(discriminator="type")]  # noqa: UP007
    nodes_type: Any = list[union]  # built at run time from the registry
    return create_model(
        "FlowDocument", __base__=Flow, __doc__=Flow.__doc__, nodes=(nodes_type, ...)
    )


def _all_optional(cls: Any) -> bool:
    return all(not f.is_required() for f in cls.Params.model_fields.values())


def _ports_extension(cls: Any) -> dict[str, Any]:
    """What an editor needs to draw a node type's output ports without running its code: the
    fixed ports, which may stay unconnected, the params the dynamic ones come from, the ports
    every node has, whether it ends the call and whether it waits for the caller."""
    return {"fixed": list(cls.fixed_ports), "optional": list(cls.optional_ports),
            "sources": list(cls.port_sources), "common": list(COMMON_PORTS),
            "terminal": bool(cls.terminal_outcomes), "input": bool(cls.takes_input)}


def flow_schema() -> dict[str, Any]:
    schema = _strict_flow_model().model_json_schema(by_alias=True)
    defs = schema.get("$defs", {})
    for cls in REGISTRY.values():
        spec = defs.get(f"{cls.__name__.removesuffix('Node')}NodeSpec")
        if spec is not None:
            spec["x-ports"] = _ports_extension(cls)
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", "$id": SCHEMA_ID, **schema}


def schema_text() -> str:
    return json.dumps(flow_schema(), indent=2, sort_keys=True) + "\n"


def write_schema(path: Path = SCHEMA_PATH) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(schema_text())


if __name__ == "__main__":
    write_schema()
