"""The validator: every rule has a negative test; all problems come back at once, structured."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from flows.schemagen import SCHEMA_PATH, flow_schema, schema_text
from flows.validator import FlowInvalid, compile_flow, load_json, validate

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "flows"


def flow(
    nodes: list[dict[str, Any]], edges: list[tuple[str, str, str]], **kw: Any
) -> dict[str, Any]:
    return {
        "id": "t",
        "name": "test",
        "nodes": nodes,
        "edges": [{"from": a, "port": p, "to": b} for a, p, b in edges],
        **kw,
    }


START = {"id": "start", "type": "start"}
BYE = {"id": "bye", "type": "hangup"}


def codes(doc: dict[str, Any]) -> set[tuple[str | None, str | None, str]]:
    return {(p.node_id, p.port, p.code) for p in validate(doc)}


def test_minimal_flow_is_valid() -> None:
    assert validate(flow([START, BYE], [("start", "next", "bye")])) == []


@pytest.mark.parametrize(
    "name", ["account_balance", "outbound_notification", "satisfaction_survey", "survey_thanks"]
)
def test_examples_validate(name: str) -> None:
    assert validate(json.loads((EXAMPLES / f"{name}.json").read_text())) == []


def test_unknown_node_type() -> None:
    doc = flow(
        [START, {"id": "x", "type": "teleport"}, BYE],
        [("start", "next", "x"), ("x", "next", "bye")],
    )
    problems = validate(doc)
    assert ("x", None, "unknown_node_type") in {(p.node_id, p.port, p.code) for p in problems}
    assert "teleport" in next(p.message for p in problems if p.code == "unknown_node_type")


def test_bad_params_name_the_field() -> None:
    doc = flow(
        [
            START,
            {
                "id": "m",
                "type": "collect_digits",
                "params": {"variable": "pin", "min_digits": 5, "max_digits": 4},
            },
            BYE,
        ],
        [
            ("start", "next", "m"),
            ("m", "ok", "bye"),
            ("m", "no_input", "bye"),
            ("m", "invalid", "bye"),
        ],
    )
    problems = [p for p in validate(doc) if p.code == "bad_params"]
    assert problems and problems[0].node_id == "m"
    assert "min_digits (5) > max_digits (4)" in problems[0].message


def test_unexpected_param_is_reported() -> None:
    doc = flow(
        [
            START,
            {"id": "p", "type": "play", "params": {"prompt": {"text": "x"}, "volume": 11}},
            BYE,
        ],
        [("start", "next", "p"), ("p", "next", "bye")],
    )
    msgs = [p.message for p in validate(doc) if p.code == "bad_params"]
    assert any("volume" in m for m in msgs)


def test_edges_to_and_from_missing_nodes() -> None:
    doc = flow([START, BYE], [("start", "next", "ghost"), ("phantom", "next", "bye")])
    c = codes(doc)
    assert ("start", "next", "edge_to_missing") in c
    assert ("phantom", "next", "edge_from_missing") in c


def test_unknown_port_and_duplicate_edge() -> None:
    doc = flow(
        [START, BYE, {"id": "b2", "type": "hangup"}],
        [("start", "next", "bye"), ("start", "next", "b2"), ("start", "nope", "bye")],
    )
    c = codes(doc)
    assert ("start", "next", "duplicate_edge") in c
    assert ("start", "nope", "unknown_port") in c


def test_unconnected_required_port() -> None:
    menu = {
        "id": "m",
        "type": "menu",
        "params": {"prompt": {"text": "press"}, "options": [{"port": "a", "digits": ["1"]}]},
    }
    doc = flow([START, menu, BYE], [("start", "next", "m"), ("m", "a", "bye")])
    c = codes(doc)
    assert ("m", "no_input", "unconnected_port") in c
    assert ("m", "no_match", "unconnected_port") in c


def test_unreachable_node() -> None:
    doc = flow([START, BYE, {"id": "island", "type": "hangup"}], [("start", "next", "bye")])
    assert ("island", None, "unreachable") in codes(doc)


def test_path_that_never_ends() -> None:
    a = {"id": "a", "type": "play", "params": {"prompt": {"text": "x"}}, "max_visits": 2}
    doc = flow([START, a], [("start", "next", "a"), ("a", "next", "a")])
    c = codes(doc)
    assert ("a", None, "no_exit") in c
    assert ("start", None, "no_exit") in c


def test_loop_without_retry_limit() -> None:
    a = {"id": "a", "type": "play", "params": {"prompt": {"text": "x"}}}
    cond = {
        "id": "c",
        "type": "condition",
        "params": {"branches": [{"when": "true", "port": "again"}], "else_port": "done"},
    }
    doc = flow(
        [START, a, cond, BYE],
        [("start", "next", "a"), ("a", "next", "c"), ("c", "again", "a"), ("c", "done", "bye")],
    )
    assert ("a", None, "loop_without_limit") in codes(doc)
    a["max_visits"] = 3
    doc["edges"].append({"from": "a", "port": "max_visits", "to": "bye"})
    assert validate(doc) == []


def test_undefined_variables_in_expressions_and_templates() -> None:
    play = {"id": "p", "type": "play", "params": {"prompt": {"text": "Hi {{ nickname }}"}}}
    cond = {
        "id": "c",
        "type": "condition",
        "params": {"branches": [{"when": "score > 3", "port": "hi"}], "else_port": "lo"},
    }
    doc = flow(
        [START, play, cond, BYE],
        [("start", "next", "p"), ("p", "next", "c"), ("c", "hi", "bye"), ("c", "lo", "bye")],
    )
    problems = [p for p in validate(doc) if p.code == "undefined_variable"]
    assert {p.node_id for p in problems} == {"p", "c"}
    doc["variables"] = {"nickname": "", "score": 0}
    assert validate(doc) == []


def test_bad_expression_syntax_is_positioned() -> None:
    cond = {"id": "c", "type": "condition", "params": {"branches": [{"when": "a ==", "port": "x"}]}}
    doc = flow(
        [START, cond, BYE],
        [("start", "next", "c"), ("c", "x", "bye"), ("c", "else", "bye")],
        variables={"a": 1},
    )
    msgs = [p.message for p in validate(doc) if p.code == "bad_expression"]
    assert msgs and "position 4" in msgs[0]


def test_start_rules() -> None:
    assert (None, None, "no_start") in codes(flow([BYE], []))
    two = flow(
        [START, {"id": "s2", "type": "start"}, BYE],
        [("start", "next", "bye"), ("s2", "next", "bye")],
    )
    assert ("s2", None, "multiple_starts") in codes(two)


def test_over_budget_port_needs_a_budget() -> None:
    doc = flow([START, BYE], [("start", "next", "bye"), ("start", "over_budget", "bye")])
    assert ("start", "over_budget", "no_budget") in codes(doc)


def test_every_problem_at_once_and_structured() -> None:
    doc = flow(
        [
            START,
            {"id": "x", "type": "warp"},
            {"id": "island", "type": "hangup"},
            {"id": "p", "type": "play", "params": {"prompt": {"text": "{{ who }}"}}},
        ],
        [("start", "next", "p"), ("p", "next", "nowhere")],
    )
    problems = validate(doc)
    kinds = {p.code for p in problems}
    assert {
        "unknown_node_type",
        "unreachable",
        "edge_to_missing",
        "unconnected_port",
        "undefined_variable",
        "no_exit",
    } <= kinds
    for p in problems:
        d = p.as_dict()
        assert set(d) == {"node_id", "port", "code", "message"}
        assert d["message"][0].isalpha()


def test_broken_node_entries_do_not_hide_other_problems() -> None:
    doc = flow(
        [START, {"type": "play"}, {"id": "bad id!", "type": "hangup"}, BYE],
        [("start", "next", "bye")],
    )
    problems = validate(doc)
    assert sum(p.code == "bad_params" for p in problems) >= 2


def test_broken_json_and_wrong_top_level() -> None:
    with pytest.raises(FlowInvalid) as e:
        load_json('{"id": "x",\n "nodes": [}')
    assert "line 2" in e.value.problems[0].message
    with pytest.raises(FlowInvalid):
        load_json("[1, 2]")
    assert any(p.code == "bad_params" for p in validate({"id": "x"}))


def test_compile_flow_raises_with_problems() -> None:
    with pytest.raises(FlowInvalid) as e:
        compile_flow(flow([START], []))
    assert e.value.problems


def test_schema_file_is_up_to_date() -> None:
    assert SCHEMA_PATH.read_text() == schema_text(), (
        "flows/schema/flow.schema.json is stale: run python -m flows.schemagen"
    )


def test_schema_knows_every_node_type_and_their_params() -> None:
    schema = flow_schema()
    text = json.dumps(schema)
    for t in ("menu", "collect_digits", "listen", "http", "verify_speaker", "subflow"):
        assert f'"const": "{t}"' in text
    menu = schema["$defs"]["MenuNodeSpec"]
    assert menu["properties"]["params"]["$ref"].endswith("MenuParams")
    assert "max_retries" in schema["$defs"]["MenuParams"]["properties"]


@pytest.mark.parametrize(
    "name", ["account_balance", "outbound_notification", "satisfaction_survey", "survey_thanks"]
)
def test_examples_pass_the_published_schema(name: str) -> None:
    import jsonschema

    schema = json.loads(SCHEMA_PATH.read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    jsonschema.validate(json.loads((EXAMPLES / f"{name}.json").read_text()), schema)


def test_published_schema_rejects_bad_params() -> None:
    import jsonschema

    schema = json.loads(SCHEMA_PATH.read_text())
    doc = flow([START, {"id": "m", "type": "menu", "params": {"prompt": {"text": "x"}}}], [])
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(doc, schema)
    doc = flow([START, {"id": "m", "type": "teleport"}], [])
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(doc, schema)


# --- robustness: mutated documents give problems, never exceptions -----------------------------

from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

_JUNK = st.one_of(
    st.none(),
    st.integers(),
    st.text(max_size=5),
    st.lists(st.integers(), max_size=2),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
)


@settings(max_examples=150, deadline=None)
@given(st.data())
def test_fuzz_mutated_example_never_crashes_the_validator(data: st.DataObject) -> None:
    doc = json.loads((EXAMPLES / "account_balance.json").read_text())
    for _ in range(data.draw(st.integers(1, 4))):
        node = data.draw(st.sampled_from(doc["nodes"]))
        where = data.draw(st.sampled_from(["node", "params", "edge", "top"]))
        key = data.draw(
            st.sampled_from(
                [
                    "id",
                    "type",
                    "params",
                    "prompt",
                    "options",
                    "to",
                    "from",
                    "port",
                    "variables",
                    "max_visits",
                    "text",
                ]
            )
        )
        value = data.draw(_JUNK)
        if where == "node":
            node[key] = value
        elif where == "params" and isinstance(node.get("params"), dict):
            node["params"][key] = value
        elif where == "edge":
            data.draw(st.sampled_from(doc["edges"]))[key] = value
        else:
            doc[key] = value
    problems = validate(doc)
    assert all(p.code and p.message for p in problems)
