"""The operator's commands against the real Asterisk, each in a subprocess as an operator runs
them: ``ivr doctor`` and ``ivr asterisk check`` log in to AMI; ``ivr run --backend asterisk
--demo`` answers a SIPp call that came through Asterisk (no SIP listener of its own), and
``ivr calls list`` shows the record with its backend."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from audio.tones import silence
from tests.asterisk import Asterisk
from tests.integration.asterisk_harness import call_asterisk, caller_scenario, open_caller_sink
from tests.netutil import free_port_block, wait_until
from tests.rtp_pcap import caller_pcap

pytestmark = [pytest.mark.sipp, pytest.mark.asterisk, pytest.mark.xdist_group("asterisk")]
ROOT = Path(__file__).resolve().parents[2]


def ivr_env(tmp_path: Path, asterisk: Asterisk) -> dict[str, str]:
    rtp = free_port_block(20)
    return {**os.environ, **asterisk.engine_env(), "PYTHONPATH": str(ROOT),
            "IVR_STORAGE__URL": f"sqlite:///{tmp_path}/ivr.sqlite",
            "IVR_STORAGE__RECORDINGS_DIR": str(tmp_path / "recordings"),
            "IVR_RTP__PORT_MIN": str(rtp), "IVR_RTP__PORT_MAX": str(rtp + 18),
            "IVR_METRICS__LISTEN": "127.0.0.1:0", "IVR_CONSOLE__LISTEN": ""}


def http_get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def ivr(*args: str, env: dict[str, str], timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "app.cli.main", *args], env=env, cwd=ROOT,
                          capture_output=True, text=True, timeout=timeout, check=False)


def test_doctor_and_check_log_in(tmp_path: Path, asterisk: Asterisk) -> None:
    env = ivr_env(tmp_path, asterisk)
    doctor = ivr("doctor", env=env)
    line = next(x for x in doctor.stdout.splitlines() if "Asterisk AMI login" in x)
    assert line.startswith("ok ") and "Asterisk 23-git" in line, doctor.stdout
    assert ivr("asterisk", "check", env=env).returncode == 0
    bad = ivr("asterisk", "check", env={**env, "IVR_ASTERISK__SECRET": "wrong"})
    assert bad.returncode == 1 and "Authentication failed" in bad.stderr, bad.stderr


async def test_run_backend_asterisk_answers_through_asterisk(tmp_path: Path,
                                                             asterisk: Asterisk) -> None:
    env = ivr_env(tmp_path, asterisk)
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "app.cli.main", "run", "--backend", "asterisk", "--demo",
        env=env, cwd=ROOT, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    assert proc.stdout is not None
    seen: list[str] = []
    try:
        while not any(line.startswith("answering with") for line in seen):
            line = (await asyncio.wait_for(proc.stdout.readline(), 60)).decode()
            assert line, "ivr run exited:\n" + "".join(seen)
            seen.append(line)
        assert any("listening: AudioSocket" in x for x in seen), seen
        assert not any("sip:" in x for x in seen), seen  # no SIP listener of its own
        metrics = next(x.split()[1] for x in seen if x.startswith("metrics:"))
        health = metrics.replace("/metrics", "/healthz")
        ready = metrics.replace("/metrics", "/readyz")
        await wait_until(lambda: http_get(ready)[0] == 200, 30, "ready (AMI logged in)")
        status, body = http_get(health)
        assert status == 200 and json.loads(body)["asterisk_ami"] == "connected", body
        pcap = caller_pcap(tmp_path / "caller.pcap", silence(6.0), ((3.0, "1"),))
        _, sink, sink_port = await open_caller_sink()
        scenario = caller_scenario(tmp_path, pcap=pcap, hold_ms=6000, sink_port=sink_port)
        res = await call_asterisk(asterisk, tmp_path, scenario)
        sink.close()
        assert res.successful == 1, res.stdout[-1000:]
    finally:
        proc.send_signal(signal.SIGTERM)
        rest, _ = await asyncio.wait_for(proc.communicate(), 30)
        seen.append(rest.decode(errors="replace"))
    listed = await asyncio.to_thread(ivr, "calls", "list", env=env)
    assert len(listed.stdout.splitlines()) >= 2, (listed.stdout, listed.stderr, seen)
    header, row = listed.stdout.splitlines()[:2]
    assert "backend" in header and " asterisk " in row and "13800138000" in row, listed.stdout
    assert " 1" in row.split("answered", 1)[1]  # the key the caller pressed (digits column)
