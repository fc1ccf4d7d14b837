"""``ivr flow test`` on broken and sloppy case files: one bad case fails alone and the rest run;
expectations are strict (types, end statuses, input after the call ended, the suite's flow)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from typer.testing import CliRunner, Result

from tests.unit.test_flows_cli import make_app

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "flows"
FLOW = EXAMPLES / "account_balance.json"
AGENT = {  # press 0: the example flow transfers to an agent and ends 'transferred'
    "name": "agent",
    "steps": [
        {"send_dtmf": "0"},
        {"expect_transfer": "sip:agents@127.0.0.1:5090"},
        {"expect_end": "transferred"},
    ],
}


def run_cases(tmp_path: Path, cases: list[dict[str, Any]], *extra: str, **suite: Any) -> Result:
    path = tmp_path / "t.cases.json"
    path.write_text(json.dumps({**suite, "cases": cases}))
    args = [str(FLOW), str(path)] if "flow" not in suite else [str(path)]
    res = CliRunner().invoke(make_app(), ["flow", "test", *args, *extra])
    assert res.exception is None or isinstance(res.exception, SystemExit), repr(res.exception)
    return res


def report(res: Result) -> dict[str, dict[str, Any]]:
    return {r["name"]: r for r in json.loads(res.stdout)}


def test_the_agent_case_passes(tmp_path: Path) -> None:
    res = run_cases(tmp_path, [AGENT])
    assert res.exit_code == 0, res.output


def test_a_case_busy_past_its_clock_watchdog_fails_alone(tmp_path: Path) -> None:
    # 6 tries x 30 s plus back-off keep the flow busy past the runner's clock watchdog before the
    # first step: the old runner aborted the whole suite here
    doc = {
        "id": "slow",
        "name": "slow",
        "nodes": [
            {"id": "start", "type": "start"},
            {
                "id": "h",
                "type": "http",
                "params": {
                    "url": "https://x.example/",
                    "timeout_s": 30,
                    "retries": 5,
                    "retry_backoff_s": 10,
                },
            },
            {"id": "bye", "type": "hangup"},
        ],
        "edges": [
            {"from": "start", "port": "next", "to": "h"},
            {"from": "h", "port": "ok", "to": "bye"},
            {"from": "h", "port": "error", "to": "bye"},
        ],
    }
    flow = tmp_path / "slow.json"
    flow.write_text(json.dumps(doc))
    cases = {
        "cases": [
            {
                "name": "stuck",
                "mocks": {"http": {"*": {"hang": True}}},
                "steps": [{"expect_end": "hangup"}],
            },
            {
                "name": "fine",
                "mocks": {"http": {"*": {"json": {}}}},
                "steps": [{"expect_end": "hangup"}],
            },
        ]
    }
    path = tmp_path / "c.json"
    path.write_text(json.dumps(cases))
    res = CliRunner().invoke(make_app(), ["flow", "test", str(flow), str(path), "--json"])
    assert res.exception is None or isinstance(res.exception, SystemExit), repr(res.exception)
    assert res.exit_code == 1, res.output
    out = report(res)
    assert out["fine"]["passed"] is True
    assert out["stuck"]["passed"] is False
    assert "still busy after" in out["stuck"]["error"]


def test_a_bad_regex_fails_its_case_and_the_rest_run(tmp_path: Path) -> None:
    bad = {"name": "bad regex", "steps": [{"expect_prompt": "/([unclosed/"}]}
    res = run_cases(tmp_path, [bad, AGENT], "--json")
    out = report(res)
    assert out["agent"]["passed"] is True and out["bad regex"]["passed"] is False
    assert "regular expression" in out["bad regex"]["error"]
    assert res.exit_code == 2  # the case file needs fixing


def test_a_bad_mock_fails_its_case_and_the_rest_run(tmp_path: Path) -> None:
    bad = {"name": "bad mock", "mocks": {"verify_speaker": "perhaps"}, "steps": [{"silence": True}]}
    res = run_cases(tmp_path, [bad, AGENT], "--json")
    out = report(res)
    assert out["agent"]["passed"] is True and out["bad mock"]["passed"] is False
    assert "verify_speaker" in out["bad mock"]["error"]


def test_a_misspelled_end_status_is_rejected_at_load(tmp_path: Path) -> None:
    bad = {"name": "typo", "steps": [{"send_dtmf": "0"}, {"expect_end": "transfered"}]}
    res = run_cases(tmp_path, [bad, AGENT], "--json")
    out = report(res)
    assert out["typo"]["passed"] is False and out["typo"]["steps"] == []  # never ran
    assert "transferred" in out["typo"]["error"]  # the message lists the real statuses
    assert res.exit_code == 2


def test_a_missing_subflow_file_is_reported_and_the_rest_run(tmp_path: Path) -> None:
    res = run_cases(tmp_path, [AGENT], subflows=["nowhere.json"])
    assert "nowhere.json" in res.output
    assert "PASS  agent" in res.output
    assert res.exit_code == 2


def test_input_after_the_call_ended_fails(tmp_path: Path) -> None:
    late = {"name": "late", "steps": [*AGENT["steps"], {"send_dtmf": "1"}]}
    res = run_cases(tmp_path, [late], "--json")
    assert res.exit_code == 1
    step = report(res)["late"]["steps"][-1]
    assert step["ok"] is False and "ended" in step["message"]


def test_equals_is_type_strict(tmp_path: Path) -> None:
    base = [{"send_dtmf": "1"}, {"send_dtmf": "12345678#"}]
    cases = [
        {
            "name": "int vs bool",
            "variables": {"flag": True},
            "steps": [{"expect_variable": {"name": "flag", "equals": 1}}],
        },
        {
            "name": "bool vs int",
            "variables": {"flag": 1},
            "steps": [{"expect_variable": {"name": "flag", "equals": True}}],
        },
        {
            "name": "text vs number",
            "steps": [*base, {"expect_variable": {"name": "account", "equals": 12345678}}],
        },
        {
            "name": "same",
            "variables": {"flag": 1.0},
            "steps": [{"expect_variable": {"name": "flag", "equals": 1}}],
        },
        {
            "name": "same list",
            "variables": {"xs": [1, "a", None]},
            "steps": [{"expect_variable": {"name": "xs", "equals": [1, "a", None]}}],
        },
        {
            "name": "list vs bools",
            "variables": {"xs": [1, 0]},
            "steps": [{"expect_variable": {"name": "xs", "equals": [True, False]}}],
        },
    ]
    out = report(run_cases(tmp_path, cases, "--json"))
    assert {n: r["passed"] for n, r in out.items()} == {
        "int vs bool": False,
        "bool vs int": False,
        "text vs number": False,
        "same": True,
        "same list": True,
        "list vs bools": False,
    }


def test_variable_expectation_needs_exactly_one_check(tmp_path: Path) -> None:
    bad = {"name": "vague", "steps": [{"expect_variable": {"name": "x"}}]}
    out = report(run_cases(tmp_path, [bad, AGENT], "--json"))
    assert out["vague"]["passed"] is False and "exactly one of" in out["vague"]["error"]


def test_the_suites_flow_field_is_honoured(tmp_path: Path) -> None:
    for name in ("account_balance.json", "outbound_notification.json"):
        shutil.copy(EXAMPLES / name, tmp_path / name)
    res = run_cases(tmp_path, [AGENT], flow="account_balance.json")  # no FLOW argument
    assert res.exit_code == 0, res.output
    path = tmp_path / "t.cases.json"
    res = CliRunner().invoke(
        make_app(), ["flow", "test", str(tmp_path / "outbound_notification.json"), str(path)]
    )
    assert res.exit_code == 2
    assert "account_balance.json" in res.output and "outbound_notification.json" in res.output


def test_cases_without_a_flow_anywhere_is_a_usage_error(tmp_path: Path) -> None:
    path = tmp_path / "t.cases.json"
    path.write_text(json.dumps({"cases": [AGENT]}))
    res = CliRunner().invoke(make_app(), ["flow", "test", str(path)])
    assert res.exit_code == 2 and "flow" in res.output


def test_a_case_file_that_is_not_json_is_a_usage_error(tmp_path: Path) -> None:
    path = tmp_path / "t.cases.json"
    path.write_bytes("caf\u00e9".encode("latin-1"))
    res = CliRunner().invoke(make_app(), ["flow", "test", str(FLOW), str(path)])
    assert res.exception is None or isinstance(res.exception, SystemExit)
    assert res.exit_code == 2 and "UTF-8" in res.output
