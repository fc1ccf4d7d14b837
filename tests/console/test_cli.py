"""``ivr users|tenants|audit|calls`` in-process, and ``ivr console`` / ``ivr run`` as real
processes that print where the console listens and serve it."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests
from typer.testing import CliRunner

from app.cli.main import app
from console.identity import Identity
from storage.db import open_database
from tests.netutil import free_port, free_port_block

pytestmark = pytest.mark.xdist_group("console")
ROOT = Path(__file__).resolve().parents[2]
runner = CliRunner()


def env_for(tmp_path: Path) -> dict[str, str]:
    return {"IVR_STORAGE__URL": f"sqlite:///{tmp_path}/ivr.sqlite",
            "IVR_STORAGE__RECORDINGS_DIR": str(tmp_path / "rec"),
            "IVR_STORAGE__PROMPT_CACHE_DIR": str(tmp_path / "prompts"),
            "USER": "opsperson"}


def ivr(tmp_path: Path, *args: str, stdin: str | None = None) -> tuple[int, str, str]:
    res = runner.invoke(app, list(args), input=stdin, env=env_for(tmp_path))
    return res.exit_code, res.stdout, res.stderr


def test_users_tenants_tokens_and_the_audit_log_from_the_command_line(tmp_path: Path) -> None:
    assert ivr(tmp_path, "tenants", "add", "acme", "Acme 公司")[0] == 0
    code, out, _ = ivr(tmp_path, "users", "add", "alice", "--role", "client", "--tenant",
                       "acme", "--password-stdin", stdin="a fine long password\n")
    assert code == 0 and "created alice (client, tenant acme)" in out
    code, out, _ = ivr(tmp_path, "users", "add", "bob", "--role", "ops")  # no tty: generated
    assert code == 0 and "password: " in out
    generated = out.split("password: ")[1].split()[0]
    code, _, err = ivr(tmp_path, "users", "add", "carol", "--role", "ops", "--password-stdin",
                       stdin="short\n")
    assert code == 2 and "password: at least 10 characters" in err
    code, _, err = ivr(tmp_path, "users", "add", "dan", "--role", "ops", "--tenant", "nope",
                       "--password-stdin", stdin="a fine long password\n")
    assert code == 2 and "tenant" in err
    code, out, _ = ivr(tmp_path, "users", "list", "--json")
    users = {u["username"]: u for u in json.loads(out)}
    assert set(users) == {"alice", "bob"} and users["alice"]["tenant"] == "acme"
    code, out, _ = ivr(tmp_path, "users", "token", "alice", "--name", "reports", "--scope",
                       "calls.read")
    token = out.strip().splitlines()[-1]
    assert code == 0 and token.startswith("ivr_")
    code, _, err = ivr(tmp_path, "users", "token", "alice", "--scope", "users.manage")
    assert code == 2 and "not allowed for the client role" in err
    code, out, _ = ivr(tmp_path, "users", "passwd", "alice", "--password-stdin",
                       stdin="another fine password\n")
    assert code == 0
    code, out, _ = ivr(tmp_path, "users", "disable", "bob")
    assert code == 0
    ids = Identity(open_database(f"sqlite:///{tmp_path}/ivr.sqlite"))
    principal = ids.token_principal(token)
    assert (principal.username, principal.tenant, principal.scopes) == (
        "alice", "acme", frozenset({"calls.read"}))
    ids.check_password("alice", "another fine password")
    with pytest.raises(Exception, match="disabled"):
        ids.check_password("bob", generated)
    code, out, _ = ivr(tmp_path, "audit", "--json")
    entries = json.loads(out)
    actions = [e["action"] for e in reversed(entries)]
    assert actions == ["tenant.create", "user.create", "user.create", "token.create",
                       "user.password", "user.update"]
    assert {e["actor"] for e in entries} == {"opsperson (cli)"}
    assert all(e["after_digest"] or e["action"] in ("user.password",) for e in entries)
    code, out, _ = ivr(tmp_path, "audit", "--action", "user.", "--json")
    assert len(json.loads(out)) == 4


def test_cli_changes_are_audited_like_console_ones(tmp_path: Path) -> None:
    flow = tmp_path / "f.json"
    flow.write_text(json.dumps({"id": "f1", "name": "F", "nodes": [
        {"id": "start", "type": "start"},
        {"id": "bye", "type": "hangup", "params": {"prompt": {"text": "再见"}}}],
        "edges": [{"from": "start", "port": "next", "to": "bye"}]}, ensure_ascii=False))
    assert ivr(tmp_path, "flow", "publish", str(flow), "--tenant", "acme")[0] == 0
    assert ivr(tmp_path, "flow", "route", "4001", "f1", "--tenant", "acme")[0] == 0
    code, _, err = ivr(tmp_path, "flow", "route", "4001", "f1", "--tenant", "globex")
    assert code == 1 and "another tenant" in err  # one number, one tenant
    assert ivr(tmp_path, "lists", "add", "+8613800138000", "--tenant", "acme")[0] == 0
    code, out, _ = ivr(tmp_path, "audit", "--tenant", "acme", "--json")
    assert [e["action"] for e in reversed(json.loads(out))] == [
        "flow.publish", "route.set", "list.add"]


def _serve(cmd: list[str], env: dict[str, str], tmp_path: Path) -> tuple[subprocess.Popen, str]:
    proc = subprocess.Popen([sys.executable, "-m", "app.cli.main", *cmd], cwd=tmp_path,
                            env={**os.environ, **env, "PYTHONPATH": str(ROOT)},
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    assert proc.stdout is not None
    lines = []
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        lines.append(line)
        if line.startswith("console: http"):
            return proc, line.split()[1]
    proc.kill()
    raise AssertionError("no console line:\n" + "".join(lines))


def _stop(proc: subprocess.Popen) -> str:
    proc.send_signal(signal.SIGTERM)
    proc.wait(60)  # then read through the text buffer readline() already filled
    assert proc.stdout is not None
    out = proc.stdout.read()
    assert proc.returncode == 0, out
    return out


@pytest.mark.slow
def test_ivr_console_serves_alone_and_prints_how_to_log_in(tmp_path: Path) -> None:
    env = {**env_for(tmp_path), "IVR_CONSOLE__LISTEN": f"127.0.0.1:{free_port()}"}
    proc, url = _serve(["console"], env, tmp_path)
    try:
        health = requests.get(url + "api/health", timeout=10).json()
        doc = requests.get(url + "api/openapi.json", timeout=10).json()
    finally:
        out = _stop(proc)
    assert "console: first start: created user 'admin' with password" in out
    assert health == {"status": "ok", "engine": False, "version": "0.1.0"}
    assert doc["openapi"] == "3.1.0" and "/api/calls" in doc["paths"]


@pytest.mark.slow
def test_ivr_run_starts_the_console_next_to_the_engine(tmp_path: Path) -> None:
    rtp = free_port_block(20)
    env = {**env_for(tmp_path), "IVR_CONSOLE__LISTEN": f"127.0.0.1:{free_port()}",
           "IVR_SIP__LISTEN": f"127.0.0.1:{free_port()}", "IVR_METRICS__LISTEN": "",
           "IVR_RTP__PORT_MIN": str(rtp), "IVR_RTP__PORT_MAX": str(rtp + 18),
           "IVR_FLOWS__DEFAULT_FLOW": str(tmp_path / "none.json"), "IVR_SIP__DRAIN_S": "0"}
    proc, url = _serve(["run"], env, tmp_path)
    try:
        health = requests.get(url + "api/health", timeout=10).json()
    finally:
        out = _stop(proc)
    assert health["engine"] is True
    assert "console: first start: created user 'admin' with password" in out
