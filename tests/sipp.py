"""Run SIPp (Debian sip-tester) as a real peer and read its statistics.

SIPp writes cumulative counters to ``<scenario>_<pid>_.csv`` with ``-trace_stat``; the last row
holds the totals. Its exit code is 0 when every call succeeded, 1 when some failed.
"""

from __future__ import annotations

import asyncio
import csv
import shutil
import socket
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from tests.netutil import PeerNotBound, wait_bound

SIPP_DATA = Path("/usr/share/sip-tester")


@dataclass
class SippResult:
    returncode: int
    successful: int
    failed: int
    retransmissions: int
    stats: dict[str, str] = field(default_factory=dict)
    stdout: str = ""
    errors: str = ""

    def response_time_ms(self, n: int = 1) -> float:
        """ResponseTime<n>(C) cumulative average, in ms (``HH:MM:SS:mmmuuu``)."""
        raw = self.stats.get(f"ResponseTime{n}(C)", "00:00:00:000000")
        h, m, s, rest = raw.split(":")
        return (int(h) * 3600 + int(m) * 60 + int(s)) * 1000 + int(rest) / 1000


def sipp_binary() -> str:
    path = shutil.which("sipp")
    if path is None:
        raise RuntimeError("sipp is not installed (Debian sip-tester; make test installs it)")
    return path


def dump_builtin(name: str, dest: Path) -> Path:
    """Write SIPp's built-in scenario ``name`` as XML, with pcap paths made absolute."""
    # sipp -sd prints the scenario and exits 99 by design; judge by what it printed.
    out = subprocess.run([sipp_binary(), "-sd", name], capture_output=True, text=True,
                         check=False)
    if "<scenario" not in out.stdout:
        raise RuntimeError(f"sipp -sd {name} printed no scenario: {out.stderr[-500:]}")
    xml = out.stdout.replace('"pcap/', f'"{SIPP_DATA}/')
    dest.write_text(xml)
    return dest


def _command(target: str | None, scenario: str | Path, local_port: int, extra: list[str]
             ) -> list[str]:
    cmd = [sipp_binary()]
    if target:
        cmd.append(target)
    if isinstance(scenario, Path):
        cmd += ["-sf", str(scenario)]
    else:
        cmd += ["-sn", scenario]
    cmd += ["-i", "127.0.0.1", "-p", str(local_port), "-nostdin", "-trace_stat", "-fd", "1",
            "-trace_err", *extra]
    return cmd


def _collect(proc_rc: int, stdout: str, workdir: Path) -> SippResult:
    stats: dict[str, str] = {}
    csvs = sorted(workdir.glob("*_.csv"), key=lambda p: p.stat().st_mtime)
    if csvs:
        with csvs[-1].open() as f:
            rows = list(csv.reader(f, delimiter=";"))
        if len(rows) >= 2:
            stats = dict(zip(rows[0], rows[-1], strict=False))
    errors = "".join(p.read_text(errors="replace")[-4000:] for p in workdir.glob("*_errors.log"))

    def num(key: str) -> int:
        try:
            return int(stats.get(key, "0") or 0)
        except ValueError:
            return 0

    return SippResult(proc_rc, num("SuccessfulCall(C)"), num("FailedCall(C)"),
                      num("Retransmissions(C)"), stats, stdout[-4000:], errors)


def run_sipp(target: str | None, scenario: str | Path, *, local_port: int, workdir: Path,
             extra: list[str] | None = None, timeout: float = 60.0) -> SippResult:
    """Run SIPp to completion (``-m`` must be in ``extra`` for a caller)."""
    cmd = _command(target, scenario, local_port, extra or [])
    proc = subprocess.run(cmd, cwd=workdir, capture_output=True, text=True, timeout=timeout,
                          check=False)
    return _collect(proc.returncode, proc.stdout + proc.stderr, workdir)


async def run_sipp_async(target: str | None, scenario: str | Path, *, local_port: int,
                         workdir: Path, extra: list[str] | None = None,
                         limit_s: float = 60.0) -> SippResult:
    """Same as :func:`run_sipp` without blocking the event loop (the engine runs on it)."""
    cmd = _command(target, scenario, local_port, extra or [])
    proc = await asyncio.create_subprocess_exec(
        *cmd, cwd=workdir, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    try:
        out, _ = await asyncio.wait_for(proc.communicate(), limit_s)
    except TimeoutError:
        proc.kill()
        out, _ = await proc.communicate()
    return _collect(proc.returncode if proc.returncode is not None else -9,
                    out.decode(errors="replace"), workdir)


class SippServer:
    """A SIPp UAS running in the background (for outbound tests)."""

    def __init__(self, scenario: str | Path, *, local_port: int, workdir: Path,
                 extra: list[str] | None = None) -> None:
        extra = extra or []
        self.cmd = _command(None, scenario, local_port, extra)
        self.workdir = workdir
        self.local_port = local_port
        transport = extra[extra.index("-t") + 1] if "-t" in extra else "u1"  # SIPp's default
        self.kind = socket.SOCK_DGRAM if transport.startswith("u") else socket.SOCK_STREAM
        self.proc: asyncio.subprocess.Process | None = None

    async def __aenter__(self) -> SippServer:
        """Start SIPp and return once it holds its SIP port (or fail with what it printed).

        A fixed sleep was enough on a quiet machine; on a loaded one SIPp can take longer, and
        a SIPp that could not start at all left the test waiting for an answer that never came
        (a 20 s timeout saying nothing about why)."""
        out = (self.workdir / "sipp.out").open("wb")
        try:
            self.proc = await asyncio.create_subprocess_exec(
                *self.cmd, cwd=self.workdir, stdout=out, stderr=subprocess.STDOUT)
        finally:
            out.close()
        try:
            await wait_bound(self.proc, self.local_port, self.kind)
        except PeerNotBound as e:
            said = "".join(f.read_text(errors="replace")[-1500:] for f in
                           (*self.workdir.glob("*_errors.log"), self.workdir / "sipp.out"))
            await self.__aexit__()
            raise RuntimeError(f"SIPp did not start on port {self.local_port} ({e}): "
                               f"{said}") from None
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self.proc is not None and self.proc.returncode is None:
            self.proc.terminate()
            try:
                await asyncio.wait_for(self.proc.wait(), 5)
            except TimeoutError:
                self.proc.kill()

    def result(self) -> SippResult:
        rc = self.proc.returncode if self.proc and self.proc.returncode is not None else -1
        return _collect(rc, "", self.workdir)
