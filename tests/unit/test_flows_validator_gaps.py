"""Validator gaps found by trying flows as an outsider would: each one used to validate (or
publish) and then fail on every call, or hide the problems of the rest of the graph."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from flows.store import FlowStore
from flows.validator import FlowInvalid, load_json, validate
from storage.db import open_database

START = {"id": "start", "type": "start"}
BYE = {"id": "bye", "type": "hangup"}


def flow(
    nodes: list[dict[str, Any]], edges: list[tuple[str, str, str]], **kw: Any
) -> dict[str, Any]:
    return {
        "id": kw.pop("id", "g"),
        "name": "gaps",
        "nodes": copy.deepcopy(nodes),
        "edges": [{"from": a, "port": p, "to": b} for a, p, b in edges],
        **kw,
    }


def codes(doc: dict[str, Any], **kw: Any) -> set[tuple[str | None, str | None, str]]:
    return {(p.node_id, p.port, p.code) for p in validate(doc, **kw)}


def play(nid: str, **kw: Any) -> dict[str, Any]:
    return {"id": nid, "type": "play", "params": {"prompt": {"text": nid}}, **kw}


def cond(nid: str, **kw: Any) -> dict[str, Any]:
    return {
        "id": nid,
        "type": "condition",
        "params": {"branches": [{"when": "true", "port": "again"}], "else_port": "done"},
        **kw,
    }


def test_unguarded_inner_cycle_inside_a_guarded_loop() -> None:
    # a (guarded) -> b -> c -> b ... the b/c cycle never passes through a
    doc = flow(
        [START, play("a", max_visits=3), play("b"), cond("c"), BYE],
        [
            ("start", "next", "a"),
            ("a", "next", "b"),
            ("a", "max_visits", "bye"),
            ("b", "next", "c"),
            ("c", "again", "b"),
            ("c", "done", "a"),
        ],
    )
    found = [p for p in validate(doc) if p.code == "loop_without_limit"]
    assert [p.node_id for p in found] == ["b"]
    assert "b, c" in found[0].message


def test_max_visits_above_the_runaway_guard_on_a_silent_loop() -> None:
    doc = flow(
        [START, play("a", max_visits=50), cond("c"), BYE],
        [
            ("start", "next", "a"),
            ("a", "next", "c"),
            ("a", "max_visits", "bye"),
            ("c", "again", "a"),
            ("c", "done", "bye"),
        ],
    )
    problems = [p for p in validate(doc) if p.code == "max_visits_unreachable"]
    assert [(p.node_id, p.port) for p in problems] == [("a", "max_visits")]
    assert "max_visits 9 or less" in problems[0].message
    doc["nodes"][1]["max_visits"] = 9
    assert validate(doc) == []


def test_a_loop_through_an_input_node_may_have_a_larger_limit() -> None:
    menu = {
        "id": "m",
        "type": "menu",
        "params": {"prompt": {"text": "1 or 2"}, "options": [{"port": "one", "digits": ["1"]}]},
        "max_visits": 50,
    }
    doc = flow(
        [START, menu, BYE],
        [
            ("start", "next", "m"),
            ("m", "one", "m"),
            ("m", "no_input", "bye"),
            ("m", "no_match", "bye"),
            ("m", "max_visits", "bye"),
        ],
    )
    assert validate(doc) == []


def test_unconnected_max_visits_port() -> None:
    doc = flow(
        [START, play("a", max_visits=3), cond("c"), BYE],
        [("start", "next", "a"), ("a", "next", "c"), ("c", "again", "a"), ("c", "done", "bye")],
    )
    assert ("a", "max_visits", "unconnected_port") in codes(doc)


def test_one_illegal_port_name_hides_nothing_and_names_its_node() -> None:
    doc = flow(
        [START, {"id": "x", "type": "warp"}, BYE],
        [("start", "next", "bye"), ("start", "no such port!", "bye")],
    )
    c = codes(doc)
    assert ("start", "no such port!", "bad_edge") in c
    assert ("x", None, "unknown_node_type") in c
    assert ("x", None, "unreachable") in c


def test_bad_top_level_field_hides_nothing() -> None:
    doc = flow([START, {"id": "x", "type": "warp"}, BYE], [("start", "next", "bye")], name="")
    c = {code for _, _, code in codes(doc)}
    assert {"bad_params", "unknown_node_type"} <= c


def test_subflow_that_does_not_exist() -> None:
    sub = {"id": "s", "type": "subflow", "params": {"flow_id": "nowhere"}}
    doc = flow([START, sub, BYE], [("start", "next", "s"), ("s", "done", "bye")])
    assert ("s", None, "unknown_subflow") in codes(doc, known_flows={"elsewhere"})
    assert ("s", None, "unknown_subflow") not in codes(doc, known_flows={"nowhere"})


def test_huge_prompt_is_refused_at_validate() -> None:
    doc = flow([START, play("p"), BYE], [("start", "next", "p"), ("p", "next", "bye")])
    doc["nodes"][1]["params"]["prompt"]["text"] = "la " * 350_000  # ~1 MB
    assert ("p", None, "too_long") in codes(doc)


def test_prompt_that_can_never_render_is_refused() -> None:
    doc = flow([START, play("p"), BYE], [("start", "next", "p"), ("p", "next", "bye")])
    doc["nodes"][1]["params"]["prompt"]["text"] = "x" * 20_000
    assert ("p", None, "too_long") in codes(doc)


def test_duplicate_keys_are_refused() -> None:
    with pytest.raises(FlowInvalid) as e:
        load_json('{"id": "a", "name": "n", "id": "b", "nodes": []}')
    assert e.value.problems[0].code == "bad_json"
    assert "duplicate key 'id'" in e.value.problems[0].message


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity"])
def test_nan_is_refused_in_files(literal: str) -> None:
    with pytest.raises(FlowInvalid) as e:
        load_json(
            '{"id": "a", "name": "n", "variables": {"x": LIT}, "nodes": []}'.replace("LIT", literal)
        )
    assert e.value.problems[0].code == "bad_json"
    assert literal in e.value.problems[0].message


def test_nan_in_a_posted_document_is_refused() -> None:
    doc = flow([START, BYE], [("start", "next", "bye")], variables={"x": float("nan")})
    assert (None, None, "bad_value") in codes(doc)
    doc = flow([START, BYE], [("start", "next", "bye")])
    doc["nodes"][0]["position"] = {"x": float("inf"), "y": 0}
    assert ("start", None, "bad_value") in codes(doc)


# --- publishing and routes ----------------------------------------------------------------------


@pytest.fixture
def store(tmp_path: Any) -> FlowStore:
    return FlowStore(open_database(f"sqlite:///{tmp_path / 'f.db'}"))


def test_publish_refuses_a_missing_subflow_then_accepts_it(store: FlowStore) -> None:
    sub = {"id": "s", "type": "subflow", "params": {"flow_id": "child"}}
    parent = flow([START, sub, BYE], [("start", "next", "s"), ("s", "done", "bye")], id="parent")
    with pytest.raises(FlowInvalid) as e:
        store.publish(parent)
    assert [p.code for p in e.value.problems] == ["unknown_subflow"]
    ret = {"id": "r", "type": "return"}
    store.publish(flow([START, ret], [("start", "next", "r")], id="child"))
    assert store.publish(parent).version == 1


def test_publish_refuses_a_huge_prompt(store: FlowStore) -> None:
    doc = flow([START, play("p"), BYE], [("start", "next", "p"), ("p", "next", "bye")])
    doc["nodes"][1]["params"]["prompt"]["text"] = "x" * 1_000_000
    with pytest.raises(FlowInvalid):
        store.publish(doc)


@pytest.mark.parametrize(
    "number", ["", "1" * 100, "5000; DROP TABLE flow_routes", "50 00", "\u0661"]
)
def test_bad_route_numbers_are_refused(store: FlowStore, number: str) -> None:
    store.publish(flow([START, BYE], [("start", "next", "bye")], id="f"))
    with pytest.raises(ValueError, match="route number"):
        store.set_route(number, "f")
    assert store.routes() == {}


@pytest.mark.parametrize("number", ["5000", "+8613800138000", "*", "sales", "*99#"])
def test_good_route_numbers_are_stored(store: FlowStore, number: str) -> None:
    store.publish(flow([START, BYE], [("start", "next", "bye")], id="f"))
    store.set_route(number, "f")
    assert store.routes() == {number: "f"}


def test_published_document_round_trips_as_strict_json(store: FlowStore) -> None:
    doc = flow([START, BYE], [("start", "next", "bye")], variables={"big": 2**100, "f": 0.1})
    pub = store.publish(doc)
    assert json.loads(json.dumps(pub.document)) == pub.document
    assert store.get("g").document["variables"] == {"big": 2**100, "f": 0.1}


def test_keyword_lists_are_bounded() -> None:
    options = [{"port": "one", "digits": ["1"], "keywords": [f"w{i}" for i in range(1000)]}]
    menu = {"id": "m", "type": "menu", "params": {"prompt": {"text": "?"}, "options": options}}
    doc = flow(
        [START, menu, BYE],
        [
            ("start", "next", "m"),
            ("m", "one", "bye"),
            ("m", "no_input", "bye"),
            ("m", "no_match", "bye"),
        ],
    )
    problems = [p for p in validate(doc) if p.code == "bad_params"]
    assert problems and "at most 100 keywords" in problems[0].message
