"""``ivr flow ...`` end to end through typer: the examples' cases, validate, simulate, store."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from app.cli import flow_cli
from app.config import Settings
from flows.schemagen import SCHEMA_PATH

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "flows"
EXAMPLE_NAMES = ["account_balance", "outbound_notification", "satisfaction_survey",
                 "branded_caller"]


def make_app() -> typer.Typer:
    app = typer.Typer()

    @app.callback()
    def _root(ctx: typer.Context) -> None:
        ctx.obj = Settings()

    flow_cli.register(app)
    return app


runner = CliRunner()


def invoke(*args: str, stdin: str | None = None) -> tuple[int, str]:
    res = runner.invoke(make_app(), ["flow", *args], input=stdin)
    return res.exit_code, res.output


@pytest.mark.parametrize("name", EXAMPLE_NAMES)
def test_example_cases_pass(name: str) -> None:
    code, out = invoke("test", str(EXAMPLES / f"{name}.json"), str(EXAMPLES / f"{name}.cases.json"))
    assert code == 0, out
    assert "0 failed" in out and "FAIL" not in out


def test_default_sample_flow_is_an_example() -> None:
    assert Settings().flows.default_flow == "examples/flows/account_balance.json"


def test_failing_case_exits_non_zero(tmp_path: Path) -> None:
    cases = {
        "cases": [
            {
                "name": "wrong expectation",
                "steps": [
                    {"expect_prompt": "Welcome"},
                    {"send_dtmf": "0"},
                    {"expect_prompt": "this is never said"},
                ],
            }
        ]
    }
    path = tmp_path / "c.json"
    path.write_text(json.dumps(cases))
    code, out = invoke("test", str(EXAMPLES / "account_balance.json"), str(path))
    assert code == 1
    assert "FAIL  wrong expectation" in out and "this is never said" in out
    code, out = invoke("test", str(EXAMPLES / "account_balance.json"), str(path), "--json")
    assert code == 1 and json.loads(out)[0]["passed"] is False


def test_bad_case_file_is_a_usage_error(tmp_path: Path) -> None:
    path = tmp_path / "c.json"
    path.write_text(
        json.dumps({"cases": [{"name": "x", "steps": [{"send_dtmf": "1", "say": "hi"}]}]})
    )
    code, out = invoke("test", str(EXAMPLES / "account_balance.json"), str(path))
    assert code == 2 and "exactly one action" in out


def test_validate_reports_every_problem(tmp_path: Path) -> None:
    doc = json.loads((EXAMPLES / "account_balance.json").read_text())
    doc["nodes"].append({"id": "x", "type": "teleport"})
    doc["edges"].append({"from": "goodbye", "port": "next", "to": "nowhere"})
    path = tmp_path / "f.json"
    path.write_text(json.dumps(doc))
    code, out = invoke("validate", str(path), "--json")
    assert code == 1
    problems = json.loads(out)
    assert {"unknown_node_type", "edge_to_missing", "unreachable"} <= {p["code"] for p in problems}
    code, out = invoke("validate", str(EXAMPLES / "account_balance.json"))
    assert code == 0 and out.strip().endswith("ok")


def test_validate_broken_json(tmp_path: Path) -> None:
    path = tmp_path / "f.json"
    path.write_text('{"id": "x", "nodes": [')
    code, out = invoke("validate", str(path))
    assert code == 1 and "bad_json" in out


def test_schema_command_prints_the_published_schema() -> None:
    code, out = invoke("schema")
    assert code == 0 and json.loads(out) == json.loads(SCHEMA_PATH.read_text())


def test_simulate_with_piped_input(tmp_path: Path) -> None:
    mocks = tmp_path / "m.json"
    mocks.write_text(
        json.dumps(
            {
                "http": {
                    "*": {
                        "json": {"pin_ok": True, "balance": 12.3, "customer": {"first_name": "Ada"}}
                    }
                }
            }
        )
    )
    stdin = "1\n123456#\n1234\nmy voice is my password\n2\n"
    code, out = invoke(
        "simulate", str(EXAMPLES / "account_balance.json"), "--mocks", str(mocks), stdin=stdin
    )
    assert code == 0, out
    assert "IVR: Hello Ada. Your balance is 12 dollars and 30 cents." in out
    assert "[get_pin waits for digits] > 1234" in out
    assert "SMS to +15550100: Example Bank: your balance is 12.3." in out
    assert "-- ended: hangup" in out


def test_simulate_blank_line_is_silence_and_eof_hangs_up() -> None:
    code, out = invoke("simulate", str(EXAMPLES / "satisfaction_survey.json"), stdin="\n")
    assert "Please press a key from 1 to 5." in out
    assert "<EOF: hanging up>" in out and "-- ended: caller_hangup" in out
    assert code == 0


def test_publish_list_route(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path}/f.sqlite"
    flow = str(EXAMPLES / "account_balance.json")
    code, out = invoke("publish", flow, "--db", db)
    assert code == 0 and "account_balance version 1 published" in out
    code, out = invoke("publish", flow, "--db", db)
    assert "version 1 unchanged" in out
    code, out = invoke("route", "5000", "account_balance", "--db", db)
    assert code == 0
    code, out = invoke("route", "5001", "missing", "--db", db)
    assert code == 1 and "not published" in out
    code, out = invoke("list", "--db", db)
    assert "account_balance" in out and "routes: 5000" in out
    words = tmp_path / "words.txt"
    words.write_text("example bank\n")
    code, out = invoke("publish", flow, "--db", db, "--tenant", "t2", "--words", str(words))
    assert code == 1 and "[main_menu] blocked_words" in out
