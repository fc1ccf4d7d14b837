"""``ivr speaker ...`` through the real CLI app (typer runner), real model and real speech."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from app.cli.main import app
from speaker_id.store import generate_key
from speaker_id.testdata import build_real_set

pytestmark = pytest.mark.models


@pytest.fixture(scope="module")
def real_set(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_real_set(tmp_path_factory.mktemp("speakers"))


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    return {"IVR_SPEAKER__ENCRYPTION_KEY": generate_key(),
            "IVR_STORAGE__URL": f"sqlite:///{tmp_path / 'ivr.sqlite'}"}


def test_enroll_verify_delete(real_set: Path, env: dict[str, str]) -> None:
    runner = CliRunner()
    spk = real_set / "pyannote_spk91"
    r = runner.invoke(app, ["speaker", "enroll", "cust-1", str(spk / "00.wav"),
                            str(spk / "01.wav")], env=env)
    assert r.exit_code == 0, r.output
    assert r.output.startswith("enrolled")
    r = runner.invoke(app, ["speaker", "verify", "cust-1", str(spk / "02.wav"), "--json"], env=env)
    assert r.exit_code == 0, r.output
    out = json.loads(r.output)
    assert out["outcome"] == "match" and out["score"] >= out["threshold"]
    r = runner.invoke(app, ["speaker", "verify", "cust-1", str(real_set / "beckett" / "00.wav")],
                      env=env)
    assert r.exit_code == 1 and r.output.startswith("no_match score=")
    r = runner.invoke(app, ["speaker", "delete", "cust-1"], env=env)
    assert r.exit_code == 0 and r.output.strip() == "deleted"
    r = runner.invoke(app, ["speaker", "verify", "cust-1", str(spk / "02.wav")], env=env)
    assert r.exit_code == 1 and r.output.startswith("not_enrolled")
    r = runner.invoke(app, ["speaker", "audit", "cust-1"], env=env)
    assert [line.split()[2:] for line in r.output.splitlines()] == [
        ["enroll", "cli", "enrolled"], ["verify", "cli", "match"], ["verify", "cli", "no_match"],
        ["delete", "cli", "deleted"], ["verify", "cli", "not_enrolled"]]


def test_enroll_without_key_refuses(real_set: Path, tmp_path: Path) -> None:
    r = CliRunner().invoke(app, ["speaker", "enroll", "x", str(real_set / "beckett" / "00.wav")],
                           env={"IVR_STORAGE__URL": f"sqlite:///{tmp_path / 'a.sqlite'}",
                                "IVR_SPEAKER__ENCRYPTION_KEY": ""})
    assert r.exit_code == 2
    assert "encryption_key is not set" in r.output


def test_calibrate_telephone_band(real_set: Path) -> None:
    r = CliRunner().invoke(app, ["speaker", "calibrate", str(real_set), "--telephone",
                                 "-t", "0.75", "-t", "0.8", "--json"])
    assert r.exit_code == 0, r.output
    report = json.loads(r.output.strip().splitlines()[-1])
    assert report["band"].startswith("telephone")
    assert report["speakers"] == 14  # every real speaker in var/testdata (speaker_id.testdata)
    assert 0.0 <= report["eer"] <= 0.02  # CAM++ at 8 kHz: 0.0 % measured (docs/speaker.md)
    assert [row[0] for row in report["at_thresholds"]] == [0.75, 0.8]


def test_calibrate_missing_folder(tmp_path: Path) -> None:
    r = CliRunner().invoke(app, ["speaker", "calibrate", str(tmp_path / "nope")])
    assert r.exit_code == 2
    assert "does not exist" in r.output
