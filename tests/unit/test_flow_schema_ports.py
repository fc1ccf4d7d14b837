"""The schema's ``x-ports`` lets the console draw a node's output ports from the schema alone:
reading the declared ``sources`` out of the params must give exactly the ports the node class
computes (a node type whose sources drift from ``dynamic_ports`` fails here)."""

from __future__ import annotations

from typing import Any

import pytest

from flows.model import NodeSpec
from flows.nodes import REGISTRY
from flows.schemagen import flow_schema

SAMPLE_PARAMS: dict[str, dict[str, Any]] = {
    "menu": {"prompt": {"text": "按1查询，按2人工"}, "options": [
        {"port": "balance", "digits": ["1"]}, {"port": "agent", "digits": ["2"]}]},
    "condition": {"branches": [{"when": "vip", "port": "vip"}, {"when": "x > 1", "port": "big"}],
                  "else_port": "other"},
    "listen": {"prompt": {"text": "请说出业务"},
               "intents": {"balance": ["余额"], "agent": ["人工"]},
               "dtmf": {"1": "balance", "0": "operator"}},
}


def ports_from_sources(sources: list[str], params: dict[str, Any]) -> list[str]:
    """The same little path language console/static/js/editor/schema.js (outputPorts) implements."""
    out: list[str] = []
    for src in sources:
        if "[]." in src:
            name, field = src.split("[].")
            found = [item.get(field) for item in params.get(name, [])]
        elif src.endswith("{}="):
            found = list(params.get(src[:-3], {}).values())
        elif src.endswith("{}"):
            found = list(params.get(src[:-2], {}))
        else:
            found = [params.get(src)]
        out += [p for p in found if isinstance(p, str) and p and p not in out]
    return out


@pytest.mark.parametrize("type_name", sorted(SAMPLE_PARAMS))
def test_sources_give_the_dynamic_ports(type_name: str) -> None:
    cls = REGISTRY[type_name]
    node = cls.parse(NodeSpec(id="n", type=type_name, params=SAMPLE_PARAMS[type_name]))
    declared = next(d["x-ports"] for d in flow_schema()["$defs"].values()
                    if d.get("properties", {}).get("type", {}).get("const") == type_name)
    assert ports_from_sources(declared["sources"], SAMPLE_PARAMS[type_name]) == list(
        node.dynamic_ports())
    assert declared["fixed"] == list(cls.fixed_ports)


def test_every_node_type_declares_its_ports_and_dynamic_ones_name_sources() -> None:
    defs = flow_schema()["$defs"]
    for name, cls in REGISTRY.items():
        spec = defs[f"{cls.__name__.removesuffix('Node')}NodeSpec"]
        assert set(spec["x-ports"]) >= {"fixed", "optional", "sources", "common", "terminal"}
        has_dynamic = type(cls).__dict__.get("dynamic_ports") is not None or (
            cls.dynamic_ports is not REGISTRY["play"].dynamic_ports)
        assert bool(spec["x-ports"]["sources"]) == has_dynamic, name
