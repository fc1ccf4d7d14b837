"""The call record says which backend carried the call; databases made before that column
existed are upgraded in place, rows kept; the CLI shows it and refuses bad ``--backend``."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from typer.testing import CliRunner

from app.cli.main import app
from app.config import ConfigError, load_settings
from core.bus import EventBus
from engine.cdr import CallRecord, CallRecords
from engine.cdr_builder import CallRecordBuilder
from storage import open_database
from storage.tenancy import Tenants

OLD_SCHEMA = """
CREATE TABLE calls (
    id VARCHAR(36) NOT NULL PRIMARY KEY, tenant VARCHAR(64), sip_call_id VARCHAR(255),
    direction VARCHAR(8), from_number VARCHAR(128), to_number VARCHAR(128), invite_at FLOAT,
    answer_at FLOAT, end_at FLOAT, disposition VARCHAR(32), hangup_cause VARCHAR(64),
    hangup_side VARCHAR(16), sip_status INTEGER, digits VARCHAR(256), recording_path TEXT,
    codec VARCHAR(16), flow_id VARCHAR(128), flow_version INTEGER, trace JSON, media JSON,
    flow_result JSON);
INSERT INTO calls VALUES ('11111111-old', 'default', 'c@x', 'inbound', '10086', '4000', 1.0,
    2.0, 5.0, 'answered', 'normal', 'caller', NULL, '1', NULL, 'PCMU', NULL, NULL, '[]', '{}',
    '{}');
"""


def test_old_database_gains_the_column_and_keeps_its_rows(tmp_path: Path) -> None:
    """A database from before migrations, nodes and backends, with a call in it: migrations
    0003 (node) and 0004 (backend) add their columns with defaults and keep the row."""
    path = tmp_path / "old.sqlite"
    with sqlite3.connect(path) as db:
        db.executescript(OLD_SCHEMA)
    records = CallRecords(open_database(f"sqlite:///{path}"))
    (old,) = records.list(tenants=Tenants.every())
    assert old.id == "11111111-old" and old.backend == "sip" and old.digits == "1"
    assert old.node == ""
    records.save_many([CallRecord(sip_call_id="1700000000.5", direction="inbound",
                                  from_number="13800138000", to_number="4000",
                                  backend="asterisk")])
    assert sorted(r.backend for r in records.list(tenants=Tenants.every())) == ["asterisk", "sip"]
    open_database(f"sqlite:///{path}")  # a second open adds nothing and breaks nothing
    assert len(records.list(tenants=Tenants.every())) == 2


def test_builder_takes_the_backend_from_the_invite() -> None:
    bus, out = EventBus(), []
    CallRecordBuilder(bus, out.append)
    bus.publish("call.invite", "a", direction="inbound", caller="1", callee="2", at=1.0,
                backend="asterisk")
    bus.publish("call.ended", "a", disposition="answered", at=2.0)
    bus.publish("call.invite", "b", direction="inbound", caller="1", callee="2", at=1.0)
    bus.publish("call.ended", "b", disposition="answered", at=2.0)
    final = {r.id: r for r in out}  # the builder also writes an in-progress snapshot first
    assert [final[i].backend for i in ("a", "b")] == ["asterisk", "sip"]
    assert all(r.backend == final[r.id].backend for r in out)


def test_calls_list_shows_the_backend(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/ivr.sqlite"
    CallRecords(open_database(url)).save_many([
        CallRecord(sip_call_id="u1", direction="outbound", from_number="95588",
                   to_number="13800138000", backend="asterisk", disposition="busy")])
    r = CliRunner().invoke(app, ["calls", "list"], env={"IVR_STORAGE__URL": url})
    assert r.exit_code == 0, r.output
    header, row = r.output.splitlines()[:2]
    assert "backend" in header and "asterisk" in row and "busy" in row


def test_run_refuses_an_unknown_backend(tmp_path: Path) -> None:
    r = CliRunner().invoke(app, ["run", "--backend", "freeswitch"],
                           env={"IVR_STORAGE__URL": f"sqlite:///{tmp_path}/x.sqlite"})
    assert r.exit_code == 2
    assert "--backend: 'freeswitch' is not one of sip, asterisk, both" in r.output


def test_run_refuses_asterisk_with_workers(tmp_path: Path) -> None:
    r = CliRunner().invoke(app, ["run", "--backend", "both", "--workers", "2"],
                           env={"IVR_STORAGE__URL": f"sqlite:///{tmp_path}/x.sqlite"})
    assert r.exit_code == 2
    assert "--workers: the Asterisk backend runs in one engine process" in r.output


def test_asterisk_check_says_why_the_login_failed(tmp_path: Path) -> None:
    r = CliRunner().invoke(app, ["asterisk", "check"],
                           env={"IVR_ASTERISK__AMI_PORT": "1", "IVR_ASTERISK__SECRET": "x"})
    assert r.exit_code == 1
    assert "error: AMI login as 'ivr': 127.0.0.1:1:" in r.output


def test_a_branch_database_that_has_the_column_already_is_adopted(tmp_path: Path) -> None:
    """The Asterisk branch once added ``calls.backend`` itself (before migrations): 0004
    leaves such a column, and its values, alone."""
    path = tmp_path / "branch.sqlite"
    with sqlite3.connect(path) as db:
        db.executescript(OLD_SCHEMA)
        db.execute("ALTER TABLE calls ADD COLUMN backend VARCHAR(16) DEFAULT 'sip'")
        db.execute("UPDATE calls SET backend = 'asterisk'")
    (old,) = CallRecords(open_database(f"sqlite:///{path}")).list(tenants=Tenants.every())
    assert old.backend == "asterisk" and old.digits == "1"


def test_a_bad_audiosocket_network_is_named() -> None:
    with pytest.raises(ConfigError, match=r"asterisk\.audiosocket_allow.*'10\.0\.0\.300/32' "
                                          r"is not a network"):
        load_settings(environ={"IVR_ASTERISK__AUDIOSOCKET_ALLOW": '["10.0.0.300/32"]'})
    settings = load_settings(environ={"IVR_ASTERISK__AUDIOSOCKET_ALLOW": '["10.0.0.5"]'})
    assert settings.asterisk.audiosocket_allow == ["10.0.0.5"]
