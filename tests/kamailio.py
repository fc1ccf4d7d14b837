"""Run Kamailio (Debian ``kamailio``) with the project's own ``deploy/kamailio/kamailio.cfg``
in front of engine nodes on loopback, for the cluster tests."""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path

from tests.netutil import free_port

ROOT = Path(__file__).resolve().parents[1]
CONFIG = ROOT / "deploy" / "kamailio" / "kamailio.cfg"


class Kamailio:
    def __init__(self, nodes: list[tuple[str, int]], workdir: Path,
                 trusted: str = "127.0.0.0/8") -> None:
        binary = shutil.which("kamailio")
        if binary is None:
            raise RuntimeError("kamailio is not installed (scripts/apt-packages.txt has it)")
        self.binary = binary
        self.port = free_port()
        self.workdir = workdir
        workdir.mkdir(parents=True, exist_ok=True)
        (workdir / "dispatcher.list").write_text(
            "".join(f"1 sip:{h}:{p} 0 0\n" for h, p in nodes))
        self.cfg = workdir / "kamailio.cfg"
        self.cfg.write_text(CONFIG.read_text()
                            .replace("__LISTEN__", f"127.0.0.1:{self.port}")
                            .replace("__HOST__", "127.0.0.1")
                            .replace("__TRUSTED_SUBNETS__", trusted)
                            .replace("__DISPATCHER_LIST__", str(workdir / "dispatcher.list")))
        self.log = workdir / "kamailio.log"
        self.proc: asyncio.subprocess.Process | None = None

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    async def __aenter__(self) -> Kamailio:
        log = self.log.open("w")
        self.proc = await asyncio.create_subprocess_exec(
            self.binary, "-f", str(self.cfg), "-DD", "-E", "-m", "64", "-M", "8",
            "-Y", str(self.workdir), "-P", str(self.workdir / "kamailio.pid"),
            stdout=log, stderr=log)
        for _ in range(100):  # until it listens
            await asyncio.sleep(0.05)
            if "INFO: <core>" in self.log.read_text() or self.proc.returncode is not None:
                break
        if self.proc.returncode is not None:
            raise RuntimeError(f"kamailio did not start: {self.log.read_text()[-2000:]}")
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self.proc is not None and self.proc.returncode is None:
            self.proc.terminate()
            try:
                await asyncio.wait_for(self.proc.wait(), 10)
            except TimeoutError:
                self.proc.kill()
