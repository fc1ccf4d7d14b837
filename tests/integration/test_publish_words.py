"""Content security at publish: a flow whose prompt or SMS contains a term from the operator's
sensitive-word list (imported with ``ivr words import``) is refused, naming each node."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
FLOW = ROOT / "examples" / "flows" / "account_balance.json"


def ivr(tmp: Path, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "IVR_STORAGE__URL": f"sqlite:///{tmp}/ivr.sqlite"}
    return subprocess.run([sys.executable, "-m", "app.cli.main", *args], input=stdin,
                          capture_output=True, text=True, env=env, cwd=tmp, timeout=120,
                          check=False)


def test_publish_refused_for_blocked_words_then_allowed(tmp_path: Path) -> None:
    ok = ivr(tmp_path, "flow", "publish", str(FLOW))
    assert ok.returncode == 0, ok.stderr
    assert "account_balance version 1 published" in ok.stdout
    (tmp_path / "words.txt").write_text("Example Bank\n")
    assert ivr(tmp_path, "words", "import", str(tmp_path / "words.txt")).returncode == 0
    changed = FLOW.read_text().replace('"name": "', '"name": "v2 ', 1)
    (tmp_path / "v2.json").write_text(changed)
    refused = ivr(tmp_path, "flow", "publish", str(tmp_path / "v2.json"))
    assert refused.returncode == 1
    for node in ("main_menu", "sms_balance", "goodbye"):
        assert f"[{node}] blocked_words" in refused.stderr
    listed = ivr(tmp_path, "flow", "list")
    assert "v2" not in listed.stdout  # nothing stored for the refused version
