"""``ivr run --workers N``: one engine process per core, behind Kamailio on the public address.

Why processes: one asyncio loop runs on one core; media for 1,000 calls needs about a core
(docs/benchmarks.md), so a box with N cores runs N engines. Each worker is a whole engine on the
public host at its own SIP port (``sip.listen`` port + 10 + i), with its own slice of the RTP
range, its own metrics port (metrics port + 1 + i) and its own node id (for its call records);
they share the database. Kamailio (Debian ``kamailio``) is started on ``sip.listen`` with the
shipped ``deploy/kamailio/kamailio.cfg``: it spreads new calls over the workers, probes them
with OPTIONS, and the trust policy (``sip.trusted_peers``) moves to it.

A worker that dies is started again (after 1 s, doubling to 30 s while it keeps dying; a
restarted worker marks the calls it lost ``node_lost``). SIGTERM/SIGINT drains: every worker
gets SIGTERM (503 to new calls and OPTIONS, so Kamailio stops sending; calls finish for
``sip.drain_s``), then Kamailio stops. Without Kamailio, run the workers behind your own
balancer with ``--no-balancer``.
"""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
import signal
import socket
import sys
from dataclasses import dataclass
from pathlib import Path

from app.config import Settings, parse_hostport
from core.tasks import TaskScope

log = logging.getLogger("ivr.supervisor")

PROJECT_ROOT = Path(__file__).resolve().parents[1]
KAMAILIO_CFG = PROJECT_ROOT / "deploy" / "kamailio" / "kamailio.cfg"
WORKER_PORT_OFFSET = 10
RESTART_START_S = 1.0
RESTART_MAX_S = 30.0
STABLE_S = 60.0  # a worker up this long has its restart backoff reset


@dataclass(frozen=True, slots=True)
class WorkerPlan:
    index: int
    sip: tuple[str, int]
    rtp: tuple[int, int]
    metrics: str | None
    node_id: str

    def env(self) -> dict[str, str]:
        env = {"IVR_SIP__LISTEN": f"{self.sip[0]}:{self.sip[1]}",
               "IVR_RTP__PORT_MIN": str(self.rtp[0]), "IVR_RTP__PORT_MAX": str(self.rtp[1]),
               "IVR_CLUSTER__NODE_ID": self.node_id,
               "IVR_METRICS__LISTEN": self.metrics or ""}
        if self.index > 0:  # one console (worker 0's) over the shared database
            env["IVR_CONSOLE__LISTEN"] = ""
        return env


def plan_workers(settings: Settings, n: int) -> list[WorkerPlan]:
    """Ports, RTP slices, metrics ports and node ids for ``n`` workers."""
    if n < 1:
        raise ValueError(f"--workers must be at least 1, got {n}")
    host, port = parse_hostport(settings.sip.listen)
    lo, hi = settings.rtp.port_min, settings.rtp.port_max
    size = (hi - lo + 1) // n
    if size < 4:
        raise ValueError(f"rtp.port_min..port_max ({lo}..{hi}) is too small for {n} workers")
    size -= size % 2
    metrics = settings.metrics.listen
    plans = []
    for i in range(n):
        m = None
        if metrics:
            mh, mp = parse_hostport(metrics, 9108)
            m = f"{mh}:{mp + 1 + i}"
        plans.append(WorkerPlan(i, (host, port + WORKER_PORT_OFFSET + i),
                                (lo + i * size, lo + (i + 1) * size - 1), m,
                                f"{socket.gethostname()}:w{i}"))
    return plans


def kamailio_config(settings: Settings, plans: list[WorkerPlan], workdir: Path) -> Path:
    """The shipped config with this box's addresses filled in."""
    host, port = parse_hostport(settings.sip.listen)
    workdir.mkdir(parents=True, exist_ok=True)
    dispatcher = workdir / "dispatcher.list"
    dispatcher.write_text("".join(f"1 sip:{p.sip[0]}:{p.sip[1]} 0 0\n" for p in plans))
    cfg = workdir / "kamailio.cfg"
    cfg.write_text(KAMAILIO_CFG.read_text()
                   .replace("__LISTEN__", f"{host}:{port}")
                   .replace("__HOST__", host)
                   .replace("__TRUSTED_SUBNETS__", ",".join(settings.sip.trusted_peers))
                   .replace("__DISPATCHER_LIST__", str(dispatcher)))
    return cfg


class Supervisor:
    def __init__(self, settings: Settings, workers: int, *, config_path: Path | None,
                 demo: bool = False, balancer: bool = True,
                 workdir: Path = Path("var/cluster")) -> None:
        self.settings = settings
        self.plans = plan_workers(settings, workers)
        self.config_path = config_path
        self.demo = demo
        self.balancer = balancer
        self.workdir = workdir.resolve()  # kamailio changes directory: absolute paths only
        self.procs: dict[int, asyncio.subprocess.Process] = {}
        self.restarts = 0
        self._stopping = False
        self._tasks = TaskScope("supervisor")
        self._kamailio: asyncio.subprocess.Process | None = None

    async def run(self, stop: asyncio.Event) -> None:
        if self.balancer:
            await self._start_kamailio()
        for plan in self.plans:
            self._tasks.spawn(self._keep_running(plan), f"worker-{plan.index}")
        await stop.wait()
        await self.stop()

    def _worker_env(self, plan: WorkerPlan) -> dict[str, str]:
        env = {**os.environ, **plan.env()}
        host = plan.sip[0]
        # the workers trust the balancer's address (it applies sip.trusted_peers itself)
        trusted = [*self.settings.sip.trusted_peers, f"{host}/32" if ":" not in host
                   else f"{host}/128"]
        env["IVR_SIP__TRUSTED_PEERS"] = "[" + ",".join(f'"{t}"' for t in trusted) + "]"
        # the workers carry SIP only: one AudioSocket address and AMI login per engine
        env["IVR_ASTERISK__ENABLED"] = "false"
        return env

    def _worker_cmd(self) -> list[str]:
        cmd = [sys.executable, "-m", "app.cli.main"]
        if self.config_path is not None:
            cmd += ["--config", str(self.config_path)]
        cmd.append("run")
        if self.demo:
            cmd.append("--demo")
        return cmd

    async def _keep_running(self, plan: WorkerPlan) -> None:
        backoff = RESTART_START_S
        loop = asyncio.get_running_loop()
        while not self._stopping:
            proc = await asyncio.create_subprocess_exec(*self._worker_cmd(),
                                                        env=self._worker_env(plan))
            self.procs[plan.index] = proc
            log.info("worker %d (pid %d) on sip:%s:%d", plan.index, proc.pid, *plan.sip)
            started = loop.time()
            rc = await proc.wait()
            if self._stopping:
                return
            if loop.time() - started > STABLE_S:
                backoff = RESTART_START_S
            self.restarts += 1
            log.error("worker %d exited with %s; starting it again in %.0f s", plan.index, rc,
                      backoff)
            await asyncio.sleep(backoff)
            backoff = min(RESTART_MAX_S, backoff * 2)

    async def _start_kamailio(self) -> None:
        binary = shutil.which("kamailio")
        if binary is None:
            raise RuntimeError("ivr run --workers needs kamailio (Debian package kamailio) on "
                               "the public address, or --no-balancer behind your own")
        cfg = kamailio_config(self.settings, self.plans, self.workdir)
        self._kamailio = await asyncio.create_subprocess_exec(
            binary, "-f", str(cfg), "-DD", "-E", "-m", "64", "-M", "8", "-Y",
            str(self.workdir), "-P", str(self.workdir / "kamailio.pid"))
        log.info("kamailio (pid %d) on sip:%s", self._kamailio.pid, self.settings.sip.listen)

    async def stop(self) -> None:
        """Drain every worker (SIGTERM), wait for them, then stop the balancer."""
        self._stopping = True
        for proc in self.procs.values():
            if proc.returncode is None:
                proc.send_signal(signal.SIGTERM)
        wait_s = self.settings.sip.drain_s + 15
        for proc in self.procs.values():
            try:
                await asyncio.wait_for(proc.wait(), wait_s)
            except TimeoutError:
                proc.kill()
        await self._tasks.close(grace_s=1.0)
        if self._kamailio is not None and self._kamailio.returncode is None:
            self._kamailio.terminate()
            try:
                await asyncio.wait_for(self._kamailio.wait(), 10)
            except TimeoutError:
                self._kamailio.kill()
