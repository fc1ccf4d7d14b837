"""``ivr run --workers 2``: two engine processes behind the Kamailio the supervisor starts on
the public address. Calls through it succeed and land on both workers' records; a worker killed
with SIGKILL is started again; SIGTERM stops everything in order."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sqlite3
import sys
from pathlib import Path

import psutil
import pytest

from tests.netutil import free_port, free_port_block, wait_until
from tests.sipp import run_sipp_async

pytestmark = [pytest.mark.sipp, pytest.mark.slow, pytest.mark.xdist_group("sipp")]
FIXTURES = Path(__file__).parent.parent / "fixtures" / "sipp"


def answers_options(port: int) -> bool:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(0.3)
    s.bind(("127.0.0.1", 0))
    me = s.getsockname()[1]
    s.sendto((f"OPTIONS sip:ivr@127.0.0.1:{port} SIP/2.0\r\n"
              f"Via: SIP/2.0/UDP 127.0.0.1:{me};rport;branch=z9hG4bK-sup{me}\r\n"
              f"From: <sip:t@127.0.0.1>;tag=1\r\nTo: <sip:ivr@127.0.0.1>\r\n"
              f"Call-ID: sup-{me}\r\nCSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\n"
              "Content-Length: 0\r\n\r\n").encode(), ("127.0.0.1", port))
    try:
        return s.recv(2048).startswith(b"SIP/2.0 200")
    except OSError:
        return False
    finally:
        s.close()


async def test_two_workers_behind_kamailio(tmp_path: Path) -> None:
    port = free_port()
    while not all(_free(port + d) for d in (10, 11)):
        port = free_port()
    rtp = free_port_block(100)
    env = {**os.environ, "IVR_SIP__LISTEN": f"127.0.0.1:{port}",
           "IVR_STORAGE__URL": f"sqlite:///{tmp_path}/ivr.sqlite",
           "IVR_STORAGE__RECORDINGS_DIR": str(tmp_path / "rec"),
           "IVR_RTP__PORT_MIN": str(rtp), "IVR_RTP__PORT_MAX": str(rtp + 99),
           "IVR_METRICS__LISTEN": "", "IVR_SIP__DRAIN_S": "2"}
    sup = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "app.cli.main", "run", "--workers", "2", "--demo", env=env,
        cwd=tmp_path, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    try:
        await wait_until(lambda: answers_options(port + 10) and answers_options(port + 11),
                         60, "both workers")
        await wait_until(lambda: answers_options(port), 30, "kamailio")
        res = await run_sipp_async(
            f"127.0.0.1:{port}", FIXTURES / "uac_via_proxy.xml", local_port=free_port(),
            workdir=tmp_path, extra=["-m", "10", "-r", "5", "-d", "1000", "-s", "100",
                                     "-default_behaviors", "pingreply,bye"], limit_s=60)
        assert res.successful == 10, res.stdout[-1500:] + res.errors
        workers = engine_workers(sup.pid)
        assert len(workers) == 2
        workers[0].send_signal(signal.SIGKILL)
        await wait_until(lambda: len([p for p in engine_workers(sup.pid)
                                      if p.pid != workers[0].pid]) == 2, 30, "a new worker")
        await wait_until(lambda: answers_options(port + 10) and answers_options(port + 11),
                         60, "both workers again")
    finally:
        sup.send_signal(signal.SIGTERM)
        out, _ = await asyncio.wait_for(sup.communicate(), 60)
    assert sup.returncode == 0, out.decode()[-2000:]
    with sqlite3.connect(tmp_path / "ivr.sqlite") as db:
        nodes = dict(db.execute("select node, count(*) from calls where disposition='answered' "
                                "group by node"))
    assert sum(nodes.values()) == 10 and len(nodes) == 2, nodes  # both workers took calls
    assert b"worker 0 exited" in out and b"starting it again" in out


def engine_workers(supervisor_pid: int) -> list[psutil.Process]:
    """The supervisor's children that are engine workers (not kamailio), skipping one that
    exits while we look (the killed worker: listed, then reaped before its name is read)."""
    found = []
    for p in psutil.Process(supervisor_pid).children():
        try:
            if "kamailio" not in p.name():
                found.append(p)
        except psutil.NoSuchProcess:
            continue
    return found


def _free(port: int) -> bool:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        s.bind(("127.0.0.1", port))
        return True
    except OSError:
        return False
    finally:
        s.close()
