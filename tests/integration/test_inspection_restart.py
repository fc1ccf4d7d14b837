"""A restart mid-queue loses no job: ``ivr inspect worker`` is killed (SIGKILL) while it
inspects, started again, and every call ends up inspected exactly once, with real recordings
(real voices on both channels) and real whisper."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from audio.resample import to_8k
from audio.tones import silence
from audio.wavio import read_wav, write_stereo_wav
from engine.cdr import CallRecord, CallRecords
from inspection.queue import JobQueue
from inspection.store import ResultStore
from storage import open_database
from storage.tenancy import EVERY_TENANT
from tests.speech_data import REAL_DIR

pytestmark = [pytest.mark.models]

ROOT = Path(__file__).resolve().parents[2]
CALLERS = ("ps_librivox_0880.wav", "ps_librivox_0890.wav", "ps_librivox_0920.wav",
           "ps_librivox_0930.wav")


def _voice(name: str) -> np.ndarray:
    pcm, rate = read_wav(REAL_DIR / name)
    return to_8k(pcm, rate)


def _recording(path: Path, caller: str) -> None:
    engine = np.concatenate([silence(0.3), _voice("../arctic_a0007.wav"), silence(0.5)])
    said = np.concatenate([silence(0.5), _voice(caller), silence(0.5)])
    left = np.concatenate([np.zeros(len(engine), np.int16), said])
    right = np.concatenate([engine, np.zeros(len(said), np.int16)])
    write_stereo_wav(path, left, right)


def _worker(env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-m", "app.cli.main", "inspect", "worker"],
                            cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)


def _wait(what: str, check: object, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if check():  # type: ignore[operator]
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def test_a_killed_worker_loses_no_job(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/ivr.sqlite"
    db = open_database(url)
    records, queue = CallRecords(db), JobQueue(db)
    now = time.time()
    for i, caller in enumerate(CALLERS):
        wav = tmp_path / f"call{i}.wav"
        _recording(wav, caller)
        records.save_many([CallRecord(f"sip-{i}", "inbound", "1000", "2000", id=f"call-{i}",
                                      invite_at=now - 60, answer_at=now - 59, end_at=now - 30,
                                      disposition="answered", recording_path=str(wav))])
        queue.enqueue(f"call-{i}", "", now)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "IVR_STORAGE__URL": url,
           "IVR_CLUSTER__NODE_ID": "qa-box-1", "IVR_INSPECTION__POLL_S": "0.2"}
    first = _worker(env)
    try:
        _wait("the first job to start", lambda: queue.counts().get("running"), 120)
        first.send_signal(signal.SIGKILL)  # a crash: nothing released, the lease stands
        first.wait(10)
    finally:
        first.kill()
    counts = queue.counts()
    assert counts.get("done", 0) < len(CALLERS), counts  # killed mid-queue, not after
    assert counts.get("running") == 1, counts
    second = _worker(env)  # the same node comes back: it takes its own running job back
    try:
        _wait("every job done", lambda: queue.counts() == {"done": len(CALLERS)}, 240)
        second.send_signal(signal.SIGTERM)
        _out, err = second.communicate(timeout=30)
    finally:
        second.kill()
    assert second.returncode == 0, err.decode()[-2000:]
    results = ResultStore(db).search(tenants=EVERY_TENANT, limit=100)
    assert sorted(r.call_id for r in results) == [f"call-{i}" for i in range(len(CALLERS))]
    # the killed attempt was given back, not counted: nobody needed a retry
    assert all(j.attempts == 1 for j in queue.jobs()), [(j.call_id, j.attempts)
                                                       for j in queue.jobs()]
    row = ResultStore(db).get("call-1", tenants=EVERY_TENANT)
    assert row is not None and "rather selfish" in row.text.lower(), row.text
