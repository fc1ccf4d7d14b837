"""Run Kannel (Debian ``kannel`` + ``kannel-extras``) as a real SMS gateway for tests.

bearerbox (the core) starts first; its smsbox port must be listening before smsbox and the far
end connect (the start order matters: smsbox gives up on a bearerbox that is not there yet).
The far end is either Kannel's own ``fakesmsc`` (which prints every message it gets, one line
each, in ``sender receiver type text`` form; it starts in well under 0.4 s) through a
``smsc = fake`` group, or an SMPP SMSC (the smpp34 simulator) through a ``smsc = smpp``
group, with Kannel as its SMPP client. Receipts come back to our dlr-url, replies to our
sms-service get-url.
"""

from __future__ import annotations

import asyncio
import shutil
import socket
import subprocess
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path

from tests.netutil import free_port

BEARERBOX = "/usr/sbin/bearerbox"
SMSBOX = "/usr/sbin/smsbox"
FAKESMSC = "/usr/lib/kannel/test/fakesmsc"
USERNAME, PASSWORD = "ivr", "kannel-test"


def listen_port() -> int:
    """A TCP port for Kannel to listen on. It must be below the ephemeral range: our own waits
    for bearerbox (connections retried every few ms) take ephemeral local ports, and one of them
    can hold a port picked from that range just when bearerbox binds it (EADDRINUSE, PANIC).
    ``free_port`` hands out ports from there (tests/netutil.py)."""
    return free_port(socket.SOCK_STREAM)


def kannel_installed() -> bool:
    return all(Path(p).exists() for p in (BEARERBOX, SMSBOX, FAKESMSC))


async def wait_port(port: int, timeout_s: float = 10.0, what: str = "port") -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while True:
        try:
            _, w = await asyncio.open_connection("127.0.0.1", port)
            w.close()
            return
        except OSError:
            if loop.time() > deadline:
                raise AssertionError(f"{what} {port} not listening after {timeout_s} s") from None
            await asyncio.sleep(0.02)


@dataclass
class Kannel:
    workdir: Path
    callback_port: int  # our /sms/dlr and /sms/mo
    smpp_port: int | None = None  # None: a fake SMSC group and fakesmsc
    admin_port: int = field(default_factory=listen_port)
    smsbox_port: int = field(default_factory=listen_port)
    sendsms_port: int = field(default_factory=listen_port)
    fake_port: int = field(default_factory=listen_port)
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)
    fakesmsc: subprocess.Popen[bytes] | None = None

    @property
    def sendsms_url(self) -> str:
        return f"http://127.0.0.1:{self.sendsms_port}/cgi-bin/sendsms"

    @property
    def fakesmsc_log(self) -> Path:
        return self.workdir / "fakesmsc.out"

    def config(self) -> str:
        w = self.workdir
        if self.smpp_port is None:
            smsc = f"""group = smsc
smsc = fake
smsc-id = fake
port = {self.fake_port}
connect-allow-ip = 127.0.0.1
"""
        else:
            smsc = f"""group = smsc
smsc = smpp
smsc-id = sim
host = 127.0.0.1
port = {self.smpp_port}
transceiver-mode = true
smsc-username = kannel
smsc-password = pw
system-type = ""
enquire-link-interval = 30
msg-id-type = 0x01
"""
        return f"""group = core
admin-port = {self.admin_port}
admin-password = admin
admin-allow-ip = 127.0.0.1
smsbox-port = {self.smsbox_port}
box-allow-ip = 127.0.0.1
log-file = "{w}/bearerbox.log"
log-level = 1
dlr-storage = internal

{smsc}
group = smsbox
bearerbox-host = 127.0.0.1
sendsms-port = {self.sendsms_port}
global-sender = 10690000
log-file = "{w}/smsbox.log"
log-level = 1
mo-recode = true

group = sendsms-user
username = {USERNAME}
password = {PASSWORD}
concatenation = true
max-messages = 10

group = sms-service
keyword = default
catch-all = true
max-messages = 0
get-url = "http://127.0.0.1:{self.callback_port}/sms/mo?from=%p&to=%P&text=%a"
"""

    async def start(self) -> None:
        try:
            await self._start()
        except BaseException:
            await self.stop()  # never leave a half-started Kannel behind
            raise

    async def _start(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        conf = self.workdir / "kannel.conf"
        conf.write_text(self.config())
        self._spawn([BEARERBOX, "-v", "1", str(conf)], "bearerbox.err")
        await wait_port(self.smsbox_port, what="bearerbox smsbox-port")
        if self.smpp_port is None:
            await wait_port(self.fake_port, what="bearerbox fake smsc port")
            self.fakesmsc = self.start_fakesmsc([])
        self._spawn([SMSBOX, "-v", "1", str(conf)], "smsbox.err")
        await wait_port(self.sendsms_port, what="smsbox sendsms-port")

    def _spawn(self, args: list[str], err: str) -> None:
        with (self.workdir / err).open("wb") as f:
            self.procs.append(subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=f))

    def start_fakesmsc(self, mo: list[str], count: int = 0) -> subprocess.Popen[bytes]:
        """fakesmsc as the far end: prints what it receives; sends ``count`` of ``mo``."""
        args = [FAKESMSC, "-H", "127.0.0.1", "-r", str(self.fake_port), "-i", "0.1",
                "-m", str(count), *(mo or ["100 200 text nop"])]
        with self.fakesmsc_log.open("ab") as out:
            proc = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT)
        self.procs.append(proc)
        return proc

    async def send_mo(self, line: str) -> None:
        """A message from a handset. Kannel's fake SMSC serves one fakesmsc at a time, so the
        listening one makes way for one that sends ``line`` (and then listens on)."""
        if self.fakesmsc is not None and self.fakesmsc.poll() is None:
            self.fakesmsc.terminate()
            await asyncio.get_running_loop().run_in_executor(None, self.fakesmsc.wait, 10)
        self.fakesmsc = self.start_fakesmsc([line], count=1)

    def received(self) -> list[tuple[str, str, str, str]]:
        """(sender, receiver, type, data) of every message fakesmsc printed as received.
        fakesmsc prints ``... Got message N: <sender receiver type [udh] data>``."""
        out = []
        if not self.fakesmsc_log.exists():
            return out
        for line in self.fakesmsc_log.read_text(errors="replace").splitlines():
            if "Got message" not in line or ": <" not in line:
                continue
            body = line.split(": <", 1)[1].rstrip(">")
            parts = body.split(" ", 3)
            if len(parts) == 4:
                out.append((parts[0], parts[1], parts[2], parts[3]))
        return out

    async def stop(self) -> None:
        for proc in reversed(self.procs):
            if proc.poll() is None:
                proc.terminate()
        for proc in self.procs:
            try:
                await asyncio.get_running_loop().run_in_executor(None, proc.wait, 10)
            except subprocess.TimeoutExpired:
                proc.kill()

    def logs(self) -> str:
        return "".join(p.read_text(errors="replace")[-3000:]
                       for p in sorted(self.workdir.glob("*.log")))


def unquote(data: str) -> bytes:
    return urllib.parse.unquote_to_bytes(data.replace("+", " "))


def have_kannel() -> bool:
    return kannel_installed() and shutil.which("true") is not None
