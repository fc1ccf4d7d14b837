"""The call record says which backend carried the call; databases made before that column
existed are upgraded in place, rows kept; the CLI shows it and refuses bad ``--backend``."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from typer.testing import CliRunner

from app.cli.main import app
from core.bus import EventBus
from engine.cdr import CallRecord, CallRecords
from engine.cdr_builder import CallRecordBuilder
from storage import open_database

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
    path = tmp_path / "old.sqlite"
    with sqlite3.connect(path) as db:
        db.executescript(OLD_SCHEMA)
    records = CallRecords(open_database(f"sqlite:///{path}"))
    (old,) = records.list()
    assert old.id == "11111111-old" and old.backend == "sip" and old.digits == "1"
    records.save_many([CallRecord(sip_call_id="1700000000.5", direction="inbound",
                                  from_number="13800138000", to_number="4000",
                                  backend="asterisk")])
    assert sorted(r.backend for r in records.list()) == ["asterisk", "sip"]
    open_database(f"sqlite:///{path}")  # a second open adds nothing and breaks nothing
    assert len(records.list()) == 2


def test_builder_takes_the_backend_from_the_invite() -> None:
    bus, out = EventBus(), []
    CallRecordBuilder(bus, out.append)
    bus.publish("call.invite", "a", direction="inbound", caller="1", callee="2", at=1.0,
                backend="asterisk")
    bus.publish("call.ended", "a", disposition="answered", at=2.0)
    bus.publish("call.invite", "b", direction="inbound", caller="1", callee="2", at=1.0)
    bus.publish("call.ended", "b", disposition="answered", at=2.0)
    assert [r.backend for r in out] == ["asterisk", "sip"]


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


def test_asterisk_check_says_why_the_login_failed(tmp_path: Path) -> None:
    r = CliRunner().invoke(app, ["asterisk", "check"],
                           env={"IVR_ASTERISK__AMI_PORT": "1", "IVR_ASTERISK__SECRET": "x"})
    assert r.exit_code == 1
    assert "error: AMI login as 'ivr': 127.0.0.1:1:" in r.output
