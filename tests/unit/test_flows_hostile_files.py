"""``ivr flow validate/publish/simulate/test`` on files nobody here wrote: problems, never
tracebacks, and a bad file next to a good flow does not break that flow."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner, Result

from flows.interpreter import RunResult
from tests.unit.test_flows_cli import make_app

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "flows"
GOOD = json.loads((EXAMPLES / "account_balance.json").read_text())


def invoke(*args: str, stdin: str | None = None) -> Result:
    return CliRunner().invoke(make_app(), ["flow", *args], input=stdin)


def no_traceback(res: Result) -> None:
    assert res.exception is None or isinstance(res.exception, SystemExit), repr(res.exception)
    assert "Traceback" not in res.output


BAD_FILES: dict[str, bytes] = {
    "latin1": json.dumps({"id": "x", "name": "caf\u00e9", "nodes": []}, ensure_ascii=False).encode(
        "latin-1"
    ),
    "utf16": json.dumps({"id": "x", "name": "x", "nodes": []}).encode("utf-16"),
    "utf16_nobom": json.dumps({"id": "x", "name": "x", "nodes": []}).encode("utf-16-le"),
    "binary": bytes(range(256)) * 4,
    "deep": b"[" * 100_000 + b"]" * 100_000,
    "deep_object": b'{"a":' * 100_000 + b"1" + b"}" * 100_000,
    "dupkeys": b'{"id": "x", "name": "x", "name": "y", "nodes": []}',
    "nan": b'{"id": "x", "name": "x", "variables": {"v": NaN}, "nodes": []}',
    "bigint": b'{"id": "x", "name": "x", "variables": {"v": ' + b"9" * 5000 + b'}, "nodes": []}',
    "empty": b"",
}


@pytest.mark.parametrize("kind", sorted(BAD_FILES))
def test_validate_reports_bad_json_without_a_traceback(tmp_path: Path, kind: str) -> None:
    path = tmp_path / f"{kind}.json"
    path.write_bytes(BAD_FILES[kind])
    res = invoke("validate", str(path))
    no_traceback(res)
    assert res.exit_code == 1
    assert "bad_json" in res.output, res.output
    res = invoke("validate", str(path), "--json")
    no_traceback(res)
    assert res.exit_code == 1
    assert json.loads(res.stdout)[0]["code"] == "bad_json"


@pytest.mark.parametrize("kind", ["latin1", "utf16", "binary", "deep"])
def test_publish_reports_bad_json_without_a_traceback(tmp_path: Path, kind: str) -> None:
    path = tmp_path / f"{kind}.json"
    path.write_bytes(BAD_FILES[kind])
    res = invoke(*publish_args(tmp_path, path))
    no_traceback(res)
    assert res.exit_code == 1 and "bad_json" in res.output


def publish_args(tmp_path: Path, path: Path) -> tuple[str, ...]:
    """``publish`` into a fresh database with an empty blocked-words list."""
    words = tmp_path / "words.txt"
    words.write_text("")
    return ("publish", str(path), "--db", f"sqlite:///{tmp_path / 'f.db'}", "--words", str(words))


def test_a_file_over_the_size_limit_is_refused_unread(tmp_path: Path) -> None:
    path = tmp_path / "huge.json"
    doc = {**GOOD, "description": "x" * 50_000_000}
    path.write_text(json.dumps(doc))
    res = invoke("validate", str(path))
    no_traceback(res)
    assert res.exit_code == 1 and "too_large" in res.output


def _chain(n: int) -> dict[str, Any]:
    nodes = [{"id": "start", "type": "start"}]
    nodes += [
        {"id": f"p{i}", "type": "play", "params": {"prompt": {"text": f"step {i}"}}}
        for i in range(n)
    ]
    nodes.append({"id": "bye", "type": "hangup"})
    ids = [n["id"] for n in nodes]
    edges = [{"from": a, "port": "next", "to": b} for a, b in zip(ids, ids[1:], strict=False)]
    return {"id": "chain", "name": "chain", "nodes": nodes, "edges": edges}


@pytest.mark.parametrize("n", [1000, 4990])
def test_a_long_chain_validates(tmp_path: Path, n: int) -> None:
    path = tmp_path / "chain.json"
    path.write_text(json.dumps(_chain(n)))
    res = invoke("validate", str(path))
    no_traceback(res)
    assert res.exit_code == 0, res.output


def test_a_long_loop_without_limit_is_found(tmp_path: Path) -> None:
    doc = _chain(3000)
    doc["edges"][-1] = {"from": "p2999", "port": "next", "to": "p0"}
    doc["nodes"].pop()
    path = tmp_path / "loop.json"
    path.write_text(json.dumps(doc))
    res = invoke("validate", str(path), "--json")
    no_traceback(res)
    assert {p["code"] for p in json.loads(res.stdout)} == {"loop_without_limit", "no_exit"}


@pytest.mark.parametrize(
    ("field", "text"),
    [
        ("when", "(" * 124 + "1" + ")" * 124),
        ("when", "[" * 110 + "]" * 110 + " == []"),
        ("prompt", "{{ " + "(" * 130 + "1" + ")" * 130 + " }}"),
    ],
)
def test_deep_expressions_are_problems(tmp_path: Path, field: str, text: str) -> None:
    doc = json.loads(json.dumps(GOOD))
    node = next(n for n in doc["nodes"] if n["type"] == "play")
    if field == "prompt":
        node["params"]["prompt"]["text"] = text
    else:
        node["type"] = "condition"
        node["params"] = {"branches": [{"when": text, "port": "next"}], "else_port": "other"}
        doc["edges"].append({"from": node["id"], "port": "other", "to": "goodbye"})
    path = tmp_path / "deep.json"
    path.write_text(json.dumps(doc))
    for cmd in (("validate", str(path)), publish_args(tmp_path, path)):
        res = invoke(*cmd)
        no_traceback(res)
        assert res.exit_code == 1 and "too_deep" in res.output, res.output


@pytest.mark.parametrize("kind", ["latin1", "utf16", "binary", "deep", "dupkeys"])
def test_a_bad_file_next_to_a_good_flow_breaks_nothing(tmp_path: Path, kind: str) -> None:
    for name in ("account_balance.json", "account_balance.cases.json"):
        shutil.copy(EXAMPLES / name, tmp_path / name)
    (tmp_path / f"zz_{kind}.json").write_bytes(BAD_FILES[kind])
    res = invoke(
        "test", str(tmp_path / "account_balance.json"), str(tmp_path / "account_balance.cases.json")
    )
    no_traceback(res)
    assert res.exit_code == 0 and "0 failed" in res.output, res.output
    res = invoke("simulate", str(tmp_path / "account_balance.json"), stdin="0\n")
    no_traceback(res)
    assert "TRANSFER" in res.output, res.output


def test_simulate_vars_and_json_output_survive_huge_values(tmp_path: Path) -> None:
    res = invoke(
        "simulate",
        str(EXAMPLES / "account_balance.json"),
        "--var",
        "big=" + "9" * 4000,
        stdin="/vars\n/hangup\n",
    )
    no_traceback(res)
    assert '"big": ' in res.output
    doc = RunResult("error", variables={"x": 10**5000, "f": float("nan")}).as_dict()
    text = json.dumps(doc)
    assert json.loads(text)["variables"]["f"] == "nan"


def test_bad_mocks_and_campaign_options_are_errors_not_tracebacks(tmp_path: Path) -> None:
    mocks = tmp_path / "mocks.json"
    mocks.write_bytes(BAD_FILES["latin1"])
    res = invoke("simulate", str(EXAMPLES / "account_balance.json"), "--mocks", str(mocks))
    no_traceback(res)
    assert res.exit_code == 2 and "mocks" in res.output
    mocks.write_text('{"verify_speaker": "perhaps"}')
    res = invoke("simulate", str(EXAMPLES / "account_balance.json"), "--mocks", str(mocks))
    no_traceback(res)
    assert res.exit_code == 2 and "verify_speaker" in res.output
    res = invoke("simulate", str(EXAMPLES / "account_balance.json"), "--campaign", "{nope")
    no_traceback(res)
    assert res.exit_code == 2 and "campaign" in res.output
