"""A real Asterisk for the AMI backend's tests.

Built once per machine by ``scripts/asterisk.sh`` (from the shared source folder, no download,
cached outside the work tree by the source tarball's hash; ``scripts/bootstrap.sh`` runs it, and
so does :func:`asterisk_prefix` when it has not run). Each test session starts its own
instance in a scratch folder on free loopback ports (AMI, SIP, RTP) and stops it at the end.

The configuration is what an operator would write plus what tests need:

* ``manager.conf``: the engine's user with the rights docs/asterisk.md asks for, and a
  ``tester`` user with all rights for the tests' own look-ups (flood generator, status);
* ``extensions.conf``: the inbound snippet exactly as ``engine.ami.dialplan`` ships it (so the
  tests prove the documented snippet), a transfer context that dials the test's SIPp agent
  (``${GLOBAL(AGENT_PORT)}``) with the flow's target in an ``X-IVR-Target`` header, and a
  ``flood`` context that sets a variable in a loop;
* ``pjsip.conf``: a UDP transport and one endpoint for SIPp, matched by 127.0.0.1. It sends
  RTP to the address in SIPp's SDP (``rtp_symmetric=no``), which lets a test's RTP sink stand
  where SIPp says it listens and hear what the caller hears.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from engine.ami.dialplan import dialplan_snippet
from tests.netutil import free_port, free_port_block

ROOT = Path(__file__).resolve().parents[1]
BUILD_SCRIPT = ROOT / "scripts" / "asterisk.sh"
ENGINE_USER, ENGINE_SECRET = "ivr", "ivr-test-secret"
TESTER_USER, TESTER_SECRET = "tester", "tester-secret"
START_TIMEOUT_S = 60.0


class AsteriskUnavailable(RuntimeError):
    """Asterisk could not be built or started here; the message says why."""


def asterisk_prefix(build: bool = True) -> Path:
    """The built Asterisk, building it first when ``build`` (about 3 minutes, once)."""
    args = ["bash", str(BUILD_SCRIPT)] + ([] if build else ["--prefix"])
    out = subprocess.run(args, capture_output=True, text=True, check=False,
                         timeout=3600)
    if out.returncode != 0:
        raise AsteriskUnavailable(f"scripts/asterisk.sh failed ({out.returncode}): "
                                  f"{out.stderr[-2000:]}")
    return Path(out.stdout.strip().splitlines()[-1])


EXTENSIONS_TESTS = """
[ivr-transfer]
exten => _[a-z0-9].,1,Set(AGENT=sip:${{EXTEN}}@127.0.0.1:${{GLOBAL(AGENT_PORT)}})
 same => n,Dial(PJSIP/sipp/${{AGENT}},10,b(ivr-target-header^s^1(${{IVR_TRANSFER_TARGET}})))
 same => n,Hangup()

[ivr-target-header]
exten => s,1,Set(PJSIP_HEADER(add,X-IVR-Target)=${{ARG1}})
 same => n,Return()

[flood]
exten => s,1,Set(i=0)
 same => n,While($[${{i}} < ${{FLOOD_N}}])
 same => n,Set(${{FLOOD_VAR}}=${{i}})
 same => n,Set(i=$[${{i}} + 1])
 same => n,EndWhile()
 same => n,Hangup()

[answer-and-wait]
exten => s,1,Answer()
 same => n,Wait(3600)
"""

PJSIP = """
[global]
type=global
user_agent=Asterisk-test

[transport-udp]
type=transport
protocol=udp
bind=127.0.0.1:{sip_port}

[sipp]
type=endpoint
context=ivr-inbound
disallow=all
allow=ulaw
allow=alaw
direct_media=no
rtp_symmetric=no
force_rport=no
rewrite_contact=no
dtmf_mode=rfc4733
send_pai=no
aors=sipp

[sipp]
type=aor
max_contacts=1

[sipp-identify]
type=identify
endpoint=sipp
match=127.0.0.1
"""

MANAGER = """
[general]
enabled = yes
port = {ami_port}
bindaddr = 127.0.0.1
displayconnects = no

[{engine_user}]
secret = {engine_secret}
deny = 0.0.0.0/0.0.0.0
permit = 127.0.0.1/255.255.255.255
read = call,dialplan,system
write = call,originate,system
writetimeout = 1000

[{tester_user}]
secret = {tester_secret}
deny = 0.0.0.0/0.0.0.0
permit = 127.0.0.1/255.255.255.255
read = all
write = all
"""

ASTERISK_CONF = """
[directories]
astcachedir => {work}/cache
astetcdir => {work}/etc
astmoddir => {prefix}/lib/asterisk/modules
astvarlibdir => {prefix}/var/lib/asterisk
astdbdir => {work}/db
astkeydir => {work}/keys
astdatadir => {prefix}/var/lib/asterisk
astagidir => {prefix}/var/lib/asterisk/agi-bin
astspooldir => {work}/spool
astrundir => {work}/run
astlogdir => {work}/log
astsbindir => {prefix}/sbin

[options]
verbose = 0
debug = 0
documentation_language = en_US
hideconnect = yes
"""

# Modules with listeners or start-up costs a test never needs (on top of build.sh's list).
NOLOAD = ["chan_iax2.so", "chan_mgcp.so", "chan_skinny.so", "chan_unistim.so", "pbx_dundi.so",
          "res_http_media_cache.so", "res_pjsip_phoneprov_provider.so", "res_phoneprov.so",
          "chan_console.so", "chan_alsa.so", "chan_oss.so", "res_smdi.so", "app_voicemail.so",
          "res_config_ldap.so", "res_calendar.so", "cdr_custom.so", "cdr_csv.so",
          "cel_custom.so", "res_stasis_test.so", "chan_audiosocket.so",
          "res_pjsip_outbound_publish.so", "res_hep.so", "res_hep_pjsip.so", "res_hep_rtcp.so",
          "res_statsd.so", "res_xmpp.so", "res_ari.so"]


@dataclass
class Asterisk:
    """One running Asterisk (see the module docstring)."""

    prefix: Path
    work: Path
    audiosocket: str  # host:port the engine under test listens on for AudioSocket
    # kept: the worker's Asterisk lives the whole session (and binds RTP ports per call)
    ami_port: int = field(default_factory=lambda: free_port(socket.SOCK_STREAM, keep=True))
    sip_port: int = field(default_factory=lambda: free_port(keep=True))
    rtp_start: int = field(default_factory=lambda: free_port_block(400, keep=True))
    proc: subprocess.Popen[bytes] | None = None
    starts: int = 0

    @property
    def config(self) -> Path:
        return self.work / "etc" / "asterisk.conf"

    def write_config(self) -> None:
        etc = self.work / "etc"
        etc.mkdir(parents=True, exist_ok=True)
        samples = self.prefix / "etc" / "asterisk"
        for name in ("indications.conf", "logger.conf", "udptl.conf", "features.conf",
                     "ccss.conf", "musiconhold.conf"):
            if (samples / name).exists():
                shutil.copy(samples / name, etc / name)
        for sub in ("cache", "db", "keys", "spool", "run", "log"):
            (self.work / sub).mkdir(exist_ok=True)
        (etc / "asterisk.conf").write_text(ASTERISK_CONF.format(work=self.work,
                                                                prefix=self.prefix))
        modules = "[modules]\nautoload = yes\n" + "".join(f"noload = {m}\n" for m in NOLOAD)
        (etc / "modules.conf").write_text(modules)
        (etc / "manager.conf").write_text(MANAGER.format(
            ami_port=self.ami_port, engine_user=ENGINE_USER, engine_secret=ENGINE_SECRET,
            tester_user=TESTER_USER, tester_secret=TESTER_SECRET))
        (etc / "pjsip.conf").write_text(PJSIP.format(sip_port=self.sip_port))
        (etc / "rtp.conf").write_text(f"[general]\nrtpstart={self.rtp_start}\n"
                                      f"rtpend={self.rtp_start + 398}\nstrictrtp=no\n")
        # no verbose lines: logging every dialplan step would throttle the flood tests' loop
        (etc / "logger.conf").write_text("[general]\n[logfiles]\nmessages.log => notice,"
                                         "warning,error\n")
        inbound = dialplan_snippet(audiosocket=self.audiosocket)
        inbound = inbound[:inbound.index("; transfers from a flow")]  # tests dial their agent
        (etc / "extensions.conf").write_text(
            "[general]\nstatic=yes\nwriteprotect=yes\n\n[globals]\nAGENT_PORT=5090\n\n"
            + inbound + EXTENSIONS_TESTS.format())

    def start(self) -> None:
        self.write_config()
        log = open(self.work / "log" / "console.log", "ab")  # noqa: SIM115 - the child owns it
        self.proc = subprocess.Popen(
            [str(self.prefix / "sbin" / "asterisk"), "-C", str(self.config), "-f", "-n"],
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            start_new_session=True)
        log.close()
        self.starts += 1
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AsteriskUnavailable(f"asterisk exited with {self.proc.returncode}: "
                                          f"{self.log()[-2000:]}")
            out = self.cli("core waitfullybooted", timeout_s=5, check=False)
            if "fully booted" in out.lower() and self._ami_answers():
                return
            time.sleep(0.2)
        self.kill()
        raise AsteriskUnavailable(f"asterisk did not boot in {START_TIMEOUT_S:.0f} s: "
                                  f"{self.log()[-2000:]}")

    def _ami_answers(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.ami_port), timeout=1) as s:
                return s.recv(64).startswith(b"Asterisk Call Manager/")
        except OSError:
            return False

    def cli(self, command: str, timeout_s: float = 10, check: bool = True) -> str:
        out = subprocess.run([str(self.prefix / "sbin" / "asterisk"), "-C", str(self.config),
                              "-rx", command], capture_output=True, text=True,
                             timeout=timeout_s, check=False)
        if check and out.returncode != 0:
            raise AsteriskUnavailable(f"asterisk -rx {command!r}: {out.stderr or out.stdout}")
        return out.stdout

    def stop(self, timeout_s: float = 20) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.cli("core stop now", timeout_s=timeout_s, check=False)
        try:
            self.proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            self.kill()

    def kill(self) -> None:
        """SIGKILL: Asterisk dies as in a crash (no Shutdown event, sockets reset)."""
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)

    def log(self) -> str:
        parts = []
        for name in ("console.log", "messages.log"):
            p = self.work / "log" / name
            if p.exists():
                parts.append(p.read_text(errors="replace"))
        return "\n".join(parts)

    def engine_env(self) -> dict[str, str]:
        """The ``IVR_ASTERISK__*`` settings of an engine that uses this Asterisk."""
        return {
            "IVR_ASTERISK__ENABLED": "true",
            "IVR_ASTERISK__AMI_PORT": str(self.ami_port),
            "IVR_ASTERISK__USERNAME": ENGINE_USER,
            "IVR_ASTERISK__SECRET": ENGINE_SECRET,
            "IVR_ASTERISK__AUDIOSOCKET_LISTEN": self.audiosocket,
            "IVR_ASTERISK__DIAL_TEMPLATE": "PJSIP/sipp/sip:{number}",
            "IVR_ASTERISK__RECONNECT_MAX_S": "1",
        }


def start_asterisk() -> Asterisk:
    prefix = asterisk_prefix()
    work = Path(tempfile.mkdtemp(prefix="ivr-ast-"))
    port = free_port(socket.SOCK_STREAM, keep=True)  # every engine of the session listens here
    ast = Asterisk(prefix=prefix, work=work, audiosocket=f"127.0.0.1:{port}")
    ast.start()
    return ast
