"""Run baresip (Debian 1.0.0) as a real softphone in tests: no terminal, a WAV as microphone.

baresip's ``stdio`` console needs a tty, so the ``cons`` module (a UDP console) takes commands
instead: one datagram per command (``/hangup``) or per DTMF key (``1``, sent as RFC 4733 events).
The ``aufile`` source plays the WAV (8 kHz mono s16) as the microphone; audio from the far end
goes to ``aubridge,null`` (nowhere). The process quits after ``quit_after_s`` (its ``-t``), which
bounds every test even when a call never ends.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
from pathlib import Path

from tests.netutil import PeerNotBound, free_port, free_port_block, free_sip_port, wait_bound

MODULE_PATH = Path("/usr/lib/baresip/modules")
KEYCODE_REL = b"\x04"  # baresip's "key released" code (include/baresip.h)


def baresip_binary() -> str:
    path = shutil.which("baresip")
    if path is None:
        raise RuntimeError("baresip is not installed (Debian package baresip-core)")
    return path


def write_config(confdir: Path, *, wav: Path, sip_port: int, cons_port: int, rtp_min: int,
                 rtp_max: int, codecs: str = "PCMU,PCMA", auto_answer: bool = False) -> None:
    """A minimal config + accounts: loopback only, the WAV as microphone, a UDP console."""
    confdir.mkdir(parents=True, exist_ok=True)
    (confdir / "config").write_text(f"""\
poll_method epoll
sip_listen 127.0.0.1:{sip_port}
audio_player aubridge,null
audio_source aufile,{wav}
audio_alert aubridge,null
rtp_ports {rtp_min}-{rtp_max}
module_path {MODULE_PATH}
module g711.so
module aufile.so
module aubridge.so
module cons.so
module_tmp uuid.so
module_tmp account.so
module_app menu.so
cons_listen 127.0.0.1:{cons_port}
""")
    answer = ";answermode=auto" if auto_answer else ""
    (confdir / "accounts").write_text(
        f"<sip:caller@127.0.0.1>;regint=0;audio_codecs={codecs}{answer}\n")
    (confdir / "contacts").write_text("")


class Baresip:
    """``async with Baresip(dir, wav, dial="sip:...") as phone: await phone.wait()``.

    Without ``dial`` it waits for calls (``auto_answer`` picks them up) at ``sip_port``.
    """

    def __init__(self, confdir: Path, wav: Path, *, dial: str | None = None,
                 quit_after_s: int = 20, auto_answer: bool = False) -> None:
        self.confdir = confdir
        self.wav = wav
        self.dial = dial
        self.quit_after_s = quit_after_s
        self.sip_port = free_sip_port()
        self.cons_port = free_port()
        rtp = free_port_block(20)
        write_config(confdir, wav=wav, sip_port=self.sip_port, cons_port=self.cons_port,
                     rtp_min=rtp, rtp_max=rtp + 19, auto_answer=auto_answer)
        self.log_path = confdir / "baresip.log"
        self.proc: asyncio.subprocess.Process | None = None

    async def __aenter__(self) -> Baresip:
        cmd = [baresip_binary(), "-f", str(self.confdir), "-t", str(self.quit_after_s)]
        if self.dial:
            cmd += ["-e", f"/dial {self.dial}"]
        with self.log_path.open("wb") as log:
            self.proc = await asyncio.create_subprocess_exec(
                *cmd, stdin=asyncio.subprocess.DEVNULL, stdout=log, stderr=log,
                env={**os.environ, "HOME": str(self.confdir)})
        try:  # ready once it holds its SIP port; one that cannot fails here with its log
            await wait_bound(self.proc, self.sip_port)
        except PeerNotBound as e:
            raise AssertionError(f"baresip: {e}:\n{self.log()[-2000:]}") from None
        return self

    def check_alive(self) -> None:
        """Raise with baresip's log when it has exited (e.g. a port it could not bind), so a
        test waiting for its packets fails at once with the reason instead of timing out."""
        if self.proc is not None and self.proc.returncode is not None:
            raise AssertionError(f"baresip exited ({self.proc.returncode}):\n{self.log()[-2000:]}")

    async def __aexit__(self, *exc: object) -> None:
        if self.proc is not None and self.proc.returncode is None:
            self.proc.terminate()
            try:
                await asyncio.wait_for(self.proc.wait(), 5)
            except TimeoutError:
                self.proc.kill()
                await self.proc.wait()

    def send(self, command: str) -> None:
        """One console command (``/hangup``) or DTMF keys (``123#``), one datagram each key."""
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            if command.startswith("/"):
                s.sendto(command.encode() + b"\n", ("127.0.0.1", self.cons_port))
            else:
                for key in command:
                    s.sendto(key.encode(), ("127.0.0.1", self.cons_port))

    def release(self) -> None:
        """Release the key held down: the console has no key-up of its own, so baresip sends a
        digit's RFC 4733 end packets only on this (KEYCODE_REL, 0x04) or the next key."""
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.sendto(KEYCODE_REL, ("127.0.0.1", self.cons_port))

    async def wait(self, timeout_s: float | None = None) -> int:
        """Until baresip exits (its ``-t`` bounds this); returns its exit code."""
        assert self.proc is not None
        return await asyncio.wait_for(self.proc.wait(), timeout_s or self.quit_after_s + 5)

    async def quit(self) -> int:
        """Ask baresip to exit now (``/quit``) instead of running until its ``-t``."""
        self.send("/quit")
        return await self.wait(5)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")
