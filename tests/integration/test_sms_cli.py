"""``ivr sms`` in real processes against one SQLite file: refusals exit 1 with the reason and
no traceback, a queued message is listed and shown, templates are checked when saved."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def ivr(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT),
           "IVR_STORAGE__URL": f"sqlite:///{tmp_path}/ivr.sqlite",
           "IVR_SMS__ALLOWED_DOMAINS": '["acme.cn"]'}
    return subprocess.run([sys.executable, "-m", "app.cli.main", "sms", *args], cwd=tmp_path,
                          env=env, capture_output=True, text=True, timeout=60, check=False)


def test_send_list_status_and_templates(tmp_path: Path) -> None:
    sent = ivr(tmp_path, "send", "138 0013 8000", "您好，详情见 https://m.acme.cn/x", "--json",
               "--key", "k1")
    assert sent.returncode == 0, sent.stderr
    rec = json.loads(sent.stdout)
    assert (rec["status"], rec["to"], rec["parts"], rec["coding"]) == (
        "queued", "+8613800138000", 1, "ucs2")
    again = json.loads(ivr(tmp_path, "send", "13800138000", "别的", "--json", "--key",
                           "k1").stdout)
    assert again["id"] == rec["id"]  # the key was used: the first message, not a second

    bad_link = ivr(tmp_path, "send", "13800138000", "领奖 http://evil.com/x")
    assert bad_link.returncode == 1 and "evil.com is not on the allow-list" in bad_link.stdout
    bad_number = ivr(tmp_path, "send", "12", "hi")
    assert bad_number.returncode == 1 and "to:" in bad_number.stdout
    assert "Traceback" not in bad_link.stderr + bad_number.stderr

    listed = json.loads(ivr(tmp_path, "list", "--json").stdout)
    assert [m["status"] for m in listed] == ["refused", "refused", "queued"]
    shown = ivr(tmp_path, "status", rec["id"])
    assert shown.returncode == 0 and "queued" in shown.stdout and "+8613800138000" in shown.stdout
    missing = ivr(tmp_path, "status", "nope")
    assert missing.returncode == 1 and "no message" in missing.stderr

    saved = ivr(tmp_path, "template", "save", "missed", "未接来电（{{ disposition }}）",
                "--tenant", "acme", "--signature", "Acme")
    assert saved.returncode == 0, saved.stderr
    broken = ivr(tmp_path, "template", "save", "bad", "您好 {{ name ", "--tenant", "acme")
    assert broken.returncode == 1 and "never closed" in broken.stderr
    by_template = json.loads(ivr(tmp_path, "send", "13800138000", "--template", "missed",
                                 "--var", "disposition=busy", "--tenant", "acme",
                                 "--json").stdout)
    assert by_template["text"] == "【Acme】未接来电（busy）"
    unknown = ivr(tmp_path, "send", "13800138000", "--template", "nope", "--tenant", "acme")
    assert unknown.returncode == 1 and "no template 'nope'" in unknown.stdout
