"""``ivr campaign ...`` in separate processes, as an operator types it: the example spec and
contacts are accepted as they are; Chinese contact files (a GB18030 CSV, an .xlsx with a title
row and Chinese headers) import with their bad rows named by line and column; a bad spec names
its field and exits 2 without a traceback; start/pause/resume/stop, status and report (JSON
and CSV) work; every change is in the audit log as ``<user> (cli)``. No engine runs: nothing
is dialled (the SIPp tests dial)."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import xlsxwriter

from console.audit import AuditLog, AuditQuery
from storage import open_database
from storage.tenancy import EVERY_TENANT

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples" / "campaigns"


def ivr(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "IVR_STORAGE__URL": f"sqlite:///{tmp_path}/cli.sqlite",
           "IVR_SPEAKER__ENCRYPTION_KEY": ""}
    env.pop("IVR_COMPLIANCE__REDIS_URL", None)
    return subprocess.run([sys.executable, "-m", "app.cli.main", *args], capture_output=True,
                          text=True, env=env, cwd=ROOT, timeout=120, check=False)


def _spec(tmp_path: Path, **changes: object) -> Path:
    spec = json.loads((EXAMPLES / "notification.json").read_text("utf-8"))
    spec["flow"] = {"file": str(EXAMPLES / "notification_flow.json")}
    spec.update(changes)
    path = tmp_path / f"{spec['id']}.json"
    path.write_text(json.dumps(spec, ensure_ascii=False), "utf-8")
    return path


@pytest.mark.slow
def test_the_example_runs_through_the_cli_and_is_audited(tmp_path: Path) -> None:
    created = ivr(tmp_path, "campaign", "create", str(EXAMPLES / "notification.json"),
                  "--contacts", str(EXAMPLES / "contacts.csv"), "--json")
    assert created.returncode == 0, created.stderr
    out = json.loads(created.stdout)
    assert out["state"] == "draft" and out["imported"] == 3 and out["errors"] == 0
    cid = out["id"]
    steps = [ivr(tmp_path, "campaign", action, cid) for action in ("start", "pause", "resume")]
    assert [s.stdout.strip() for s in steps] == [f"campaign {cid}: running",
                                                 f"campaign {cid}: paused",
                                                 f"campaign {cid}: running"]
    status = json.loads(ivr(tmp_path, "campaign", "status", cid, "--json").stdout)
    report_csv = tmp_path / "report.csv"
    report = ivr(tmp_path, "campaign", "report", cid, "--csv", str(report_csv))
    stop = ivr(tmp_path, "campaign", "stop", cid)
    again = ivr(tmp_path, "campaign", "start", cid)
    assert status["by_state"] == {"pending": 3} and status["state"] == "running"
    assert report.returncode == 0, report.stderr
    with report_csv.open(encoding="utf-8-sig") as f:
        rows = list(csv.DictReader(f))
    assert sorted(r["number"] for r in rows) == ["+8613700137000", "+8613800138000",
                                                 "+8613900139000"]
    assert "name=张三" in {r["number"]: r for r in rows}["+8613800138000"]["variables"]
    assert stop.stdout.strip() == f"campaign {cid}: stopped"
    assert again.returncode == 1 and "stopped" in again.stderr and "Traceback" not in again.stderr
    audit = AuditLog(open_database(f"sqlite:///{tmp_path}/cli.sqlite"))
    entries = audit.search(AuditQuery(resource=f"campaign:{cid}"), tenants=EVERY_TENANT,
                           limit=50).entries
    assert sorted({e.action for e in entries}) == [
        "campaign.create", "campaign.pause", "campaign.resume", "campaign.start",
        "campaign.stop"]
    assert all(e.actor.endswith("(cli)") for e in entries)


@pytest.mark.slow
def test_chinese_contact_files_and_bad_input(tmp_path: Path) -> None:
    gb = tmp_path / "名单.csv"
    gb.write_bytes(("手机号码,姓名,金额,截止日期\n"
                    "13800138000,张三,12.5,12月20日\n"
                    "1380013,李四,8,12月20日\n"  # line 3: too short for a phone number
                    "13900139000,,9,12月20日\n"  # line 4: name is required
                    "+86 138-0013-8000,张三丰,1,12月21日\n").encode("gb18030"))
    xlsx = tmp_path / "名单.xlsx"
    book = xlsxwriter.Workbook(str(xlsx))
    sheet = book.add_worksheet("客户")
    sheet.merge_range("A1:D1", "2026年12月缴费提醒名单（内部资料）")
    for col, title in enumerate(["客户姓名", "电话号码", "欠费金额", "缴费截止日期"]):
        sheet.write(1, col, title)
    sheet.write(2, 0, "赵六")
    sheet.write_number(2, 1, 13600136000.0)  # a number cell, as Excel keeps phone numbers
    sheet.write_number(2, 2, 42)
    sheet.write(2, 3, "12月20日")
    sheet.write(3, 0, "钱七")
    sheet.write(3, 1, "无")
    sheet.write_number(3, 2, 1)
    book.close()
    from_gb = ivr(tmp_path, "campaign", "create", str(_spec(tmp_path, id="gb")),
                  "--contacts", str(gb), "--json", "--errors-file", str(tmp_path / "err.csv"))
    from_xlsx = ivr(tmp_path, "campaign", "create", str(_spec(tmp_path, id="xl")),
                    "--contacts", str(xlsx), "--json")
    bad_spec = ivr(tmp_path, "campaign", "create", str(_spec(
        tmp_path, id="bad", pacing={"calls_per_s": 0})), "--contacts", str(gb))
    no_file = ivr(tmp_path, "campaign", "create", str(_spec(tmp_path, id="nofile")),
                  "--contacts", str(tmp_path / "missing.csv"))
    unknown = ivr(tmp_path, "campaign", "start", "nosuch")
    assert from_gb.returncode == 0, from_gb.stderr
    gb_out = json.loads(from_gb.stdout)
    assert gb_out["imported"] == 1 and gb_out["merged"] == 1 and gb_out["errors"] == 2
    assert "名单.csv:3" in from_gb.stderr and "名单.csv:4" in from_gb.stderr
    with (tmp_path / "err.csv").open(encoding="utf-8-sig") as f:
        errors = list(csv.DictReader(f))
    assert sorted((e["line"], e["column"]) for e in errors) == [("3", "手机号码"),
                                                                 ("4", "姓名")]
    assert from_xlsx.returncode == 0, from_xlsx.stderr
    xl_out = json.loads(from_xlsx.stdout)
    assert xl_out["imported"] == 1 and xl_out["errors"] == 1
    assert xl_out["columns"]["number"] == "电话号码" and xl_out["columns"]["name"] == "客户姓名"
    for r, field in ((bad_spec, "pacing.calls_per_s"), (no_file, "missing.csv"),
                     (unknown, "nosuch")):
        assert r.returncode == 2 and field in r.stderr and "Traceback" not in r.stderr, r.stderr
