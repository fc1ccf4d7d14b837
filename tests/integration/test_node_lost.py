"""A node killed mid-call (SIGKILL: no orderly stop, no flush) does not lose the call's record:
the record was written at INVITE and answer, and the node's restart marks it ``node_lost``.

The engine is a real process (the media benchmark's answerer); SIPp holds the call open."""

from __future__ import annotations

import asyncio
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from tests.netutil import free_port, free_port_block, wait_until
from tests.sipp import run_sipp_async

pytestmark = [pytest.mark.sipp, pytest.mark.xdist_group("sipp")]


def start_engine(sip_port: int, rtp: int, work: Path) -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.bench.media_engine", str(sip_port), str(rtp),
         str(rtp + 38), str(work)], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "ready"
    return proc


def rows(db: Path) -> list[tuple[str, str, str, float | None]]:
    if not db.exists():
        return []
    with sqlite3.connect(db) as c:
        try:
            return list(c.execute("select disposition, hangup_cause, node, answer_at from calls"))
        except sqlite3.OperationalError:  # the table is being created
            return []


async def test_a_killed_nodes_call_is_marked_node_lost_at_restart(tmp_path: Path) -> None:
    sip_port, rtp = free_port(), free_port_block(40)
    db = tmp_path / f"ivr-{sip_port}.sqlite"
    engine = start_engine(sip_port, rtp, tmp_path)
    try:
        # SIPp's uac holds the call for 8 s: the engine dies in the middle of it
        sipp = asyncio.ensure_future(run_sipp_async(
            f"127.0.0.1:{sip_port}", "uac", local_port=free_port(), workdir=tmp_path,
            extra=["-m", "1", "-d", "8000"], limit_s=60))
        await wait_until(lambda: any(r[3] is not None for r in rows(db)), 20,
                         "the answered call's row")
        engine.send_signal(signal.SIGKILL)
        engine.wait(10)
        (before,) = rows(db)
        engine = start_engine(sip_port, rtp, tmp_path)  # same node: same host and port
        await wait_until(lambda: rows(db)[0][1] == "node_lost", 20, "the orphan marked")
        (after,) = rows(db)
        await sipp  # its BYE reaches a node that never knew the call (481): SIPp gives up
    finally:
        engine.terminate()
        engine.wait(20)
    assert before[0] == "in_progress" and before[1] == ""
    assert after[0] == "answered" and after[1] == "node_lost"
    assert after[2] == before[2] and after[2].endswith(f":{sip_port}")
