"""Media under load (issue 3): N concurrent SIPp ``uac_pcap`` calls held for ``--hold`` s.

For the engine and, as the baseline, pyVoIP 1.6.8 answering the same calls on the same machine,
this reports the answering side's outbound RTP as a caller receives it: packets/s per stream and
the inter-packet gap p50/p99/max, read from a kernel-timestamped ``dumpcap`` capture on ``lo``
(filtered on the answerer's RTP source ports), never from the answerer's own log. Also: RFC 2833
digits SIPp sent vs digits the IVR detected, digits the engine sent back vs those in the capture,
the answerer's CPU (CPU-ms per call-second from /proc via psutil: SIPp and dumpcap share the
cores, so this is the figure that does not depend on the load generator) and peak RSS.
A run passes when the gap p99 is <= 25 ms and no digit was missed; the largest passing N is
printed per system.

Needs Debian ``sip-tester`` and ``tshark`` (for ``dumpcap``; both in scripts/apt-packages.txt),
root (packet capture, and to give the answerer back normal priority), and for the baseline
``pip install pyVoIP==1.6.8`` (not a project dependency; skipped when missing).
Diagnostics for the engine process: ``BENCH_GC_FREEZE=1`` (``gc.freeze()`` after start-up) and
``BENCH_STALLS=1`` (loop stalls over 40 ms with their CPU share), shown with ``-v``.

The callers' media ports: SIPp's ``uac_pcap`` offers a port per call (``[auto_media_port]``)
that it never opens, since it plays audio through raw sockets. A real phone listens on the port
it offers; with nobody there, every RTP packet the answerer sends comes back as an ICMP port
unreachable, generated and delivered (past each of SIPp's raw sockets) inside the answerer's own
``sendto``: 5.4 -> 17.7 us of its CPU per packet on this box. ``--caller-ports listen`` (the
default since issue 18) binds those ports for the run, unread with a small buffer, as a phone
would; ``closed`` measures the way issue 3's figures were taken.

The callers' audio (``--caller``, issue 18 stop 28): ``uac_pcap`` plays each call's 7 s of
A-law through a raw socket of its own (~350 at once at 50 calls/s), and the kernel offers every
UDP packet delivered on the box to each raw UDP socket, inside the sender's ``sendto``: ~5 us per
packet of the answerer's CPU that no real phone costs it. ``--caller rtpstream`` (the default)
plays the same audio with SIPp's ``rtp_stream`` action from SIPp's ordinary media socket
(``-mp``: in SIPp 3.6.1 every call of one SIPp shares it, each call with its own SSRC), as
20 ms packets (``rtp_stream`` knows no 30 ms PCMA; the pcap has 30 ms ones: 50 instead of 33
packets/s of the caller's audio for 7 s, more receive work than ``pcap``). ``rtp_stream``
cannot send RFC 2833, so each call's digit still comes from ``dtmf_2833_1.pcap`` (10 packets,
0.14 s, from the same source port, so the digit is checked both ways on every call): a raw
socket lives only while a digit plays (~7 at once instead of ~350). ``--caller pcap`` is the
earlier harness.

    python -m tests.bench.bench_media [--n 50,200,500,1000] [--pyvoip-n 50,200] [--hold 30]
        [--procs auto|1|2] [--cps 100] [--caller rtpstream|pcap]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import resource
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import psutil

from engine.rtp.pcap import read_udp_payloads
from tests.bench.media_capture import (
    MediaFigures,
    figures,
    read_streams,
    steady_gap_p99_ms,
    timeline,
)
from tests.netutil import free_port
from tests.sipp import SIPP_DATA, SippResult, dump_builtin, run_sipp

MAX_P99_GAP_MS = 25.0
RTP_BASE = 20000  # answerer RTP ports: below the kernel's ephemeral range (32768+)
RTP_BLOCK = 3000  # per answerer process
SIPP_MEDIA_BASE = 10000  # SIPp -mp ports, per SIPp instance a block of SIPP_MEDIA_BLOCK
SIPP_MEDIA_BLOCK = 5000
SIPP_OWN_MEDIA_PORTS = 4  # -mp itself and the ports above it that SIPp binds (audio, video)
SIPP_STREAM_MEDIA_BASE = 9900  # rtp_stream callers' -mp, 10 apart per SIPp instance
PCAP_PLAY_MS = 8000  # g711a.pcap is ~7.5 s; uac_pcap pauses 8 s before its digit


@dataclass
class Run:
    system: str
    n: int
    procs: int
    sipp_ok: int
    sipp_failed: int
    retrans: int
    digits_sent: int
    digits_rx: int
    digits_tx: int
    media: MediaFigures
    cpu_ms_per_call_s: float
    cpu_pct: float
    rss_mb: float
    load: float
    sipp_cpu_pct: float
    setup_ms: float
    steady_p99_ms: float
    tick_late_p99_ms: float
    dropped: str
    answerer_stats: list[dict[str, object]]
    timeline: list[tuple[float, int, float, float]]

    @property
    def passed(self) -> bool:
        return (self.media.gap_p99_ms <= MAX_P99_GAP_MS and self.digits_rx >= self.digits_sent
                and self.sipp_failed == 0 and self.media.streams >= self.n)


def scenario(dest: Path, hold_s: float) -> Path:
    """uac_pcap with absolute pcap paths, held ``hold_s`` in total (digit 1 at ~8 s)."""
    path = dump_builtin("uac_pcap", dest)
    xml = path.read_text()
    tail_ms = max(1000, int(hold_s * 1000) - PCAP_PLAY_MS)
    if '<pause milliseconds="1000"/>' not in xml:
        raise RuntimeError("uac_pcap changed: no 1000 ms pause after the digit")
    path.write_text(xml.replace('<pause milliseconds="1000"/>',
                                f'<pause milliseconds="{tail_ms}"/>'))
    return path


def rtpstream_scenario(dest: Path, hold_s: float) -> Path:
    """``scenario`` with the call's audio played by ``rtp_stream`` from SIPp's media socket
    (module docstring): the SDP offers ``[media_port]`` (the ``-mp`` socket that sends it),
    the same 7 s of A-law as ``g711a.pcap`` (its payloads, as a raw file), then the same
    RFC 2833 digit from ``dtmf_2833_1.pcap``, sent from that port too."""
    path = scenario(dest, hold_s)
    xml = path.read_text()
    audio = dest.parent / "g711a.alaw"
    packets = read_udp_payloads(SIPP_DATA / "g711a.pcap")
    audio.write_bytes(b"".join(rtp[12:] for _, _, _, rtp in packets))
    pcap_exec = f'<exec play_pcap_audio="{SIPP_DATA}/g711a.pcap"/>'
    if "m=audio [auto_media_port]" not in xml or pcap_exec not in xml:
        raise RuntimeError("uac_pcap changed: no auto media port or g711a.pcap play")
    xml = xml.replace("m=audio [auto_media_port]", "m=audio [media_port]")
    path.write_text(xml.replace(pcap_exec, f'<exec rtp_stream="{audio},1,8"/>'))
    return path


READY_LINES: dict[int, str] = {}  # pid -> what the answerer printed when ready


def _start(cmd: list[str], env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True,
                            env={**os.environ, **env} if env else None)
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if "ready" not in line:
        proc.kill()
        raise RuntimeError(f"{cmd[2]} did not start: {line!r}")
    READY_LINES[proc.pid] = line.strip()
    return proc


def _finish(proc: subprocess.Popen[str]) -> dict[str, float]:
    proc.terminate()
    out, _ = proc.communicate(timeout=30)
    lines = [ln for ln in out.splitlines() if ln.startswith("{")]
    return json.loads(lines[-1]) if lines else {}


class Sampler(threading.Thread):
    """Peak RSS of the answerer processes, sampled once a second."""

    def __init__(self, pids: list[int]) -> None:
        super().__init__(daemon=True)
        self.procs = [psutil.Process(p) for p in pids]
        self.peak_mb = 0.0
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.wait(1.0):
            try:
                rss = sum(p.memory_info().rss for p in self.procs) / 2**20
            except psutil.Error:
                return
            self.peak_mb = max(self.peak_mb, rss)


def _cpu(pids: list[int]) -> float:
    total = 0.0
    for p in pids:
        t = psutil.Process(p).cpu_times()
        total += t.user + t.system
    return total


def caller_port_sinks(procs: int) -> list[socket.socket]:
    """Bind the ports SIPp offers its calls (see the module docstring): delivered, not read."""
    socks = []
    for k in range(procs):
        base = SIPP_MEDIA_BASE + k * SIPP_MEDIA_BLOCK
        for port in range(base + SIPP_OWN_MEDIA_PORTS, base + SIPP_MEDIA_BLOCK):
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 2048)
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                s.close()
                continue
            socks.append(s)
    return socks


def one_run(system: str, n: int, *, procs: int, hold_s: float, cps: int, work: Path,
            env: dict[str, str] | None = None, caller_ports: str = "listen",
            caller: str = "pcap",
            watchers: Callable[[list[str]], Callable[[], object]] | None = None) -> Run:
    """One load run. ``env`` goes to the answerers; ``watchers`` (given their ready lines)
    starts whatever else must run during the calls and returns its stop function; ``caller``
    is ``pcap`` or ``rtpstream`` (module docstring)."""
    if caller == "rtpstream":
        xml = rtpstream_scenario(work / "uac_rtpstream.xml", hold_s)
        media_ports = [SIPP_STREAM_MEDIA_BASE + 10 * k for k in range(procs)]
    else:
        xml = scenario(work / "uac_pcap.xml", hold_s)
        media_ports = [SIPP_MEDIA_BASE + k * SIPP_MEDIA_BLOCK for k in range(procs)]
    sip_ports = [free_port() for _ in range(procs)]
    sipp_ports = [free_port() for _ in range(procs)]
    rtp_lo, rtp_hi = RTP_BASE, RTP_BASE + procs * RTP_BLOCK - 1
    answerers = []
    for k in range(procs):
        lo = RTP_BASE + k * RTP_BLOCK
        if system == "engine":
            cmd = [sys.executable, "-m", "tests.bench.media_engine", str(sip_ports[k]), str(lo),
                   str(lo + RTP_BLOCK - 2), str(work)]
        else:
            cmd = [sys.executable, "-m", "tests.bench.pyvoip_ivr", str(sip_ports[k]),
                   str(sipp_ports[k]), str(lo), str(lo + RTP_BLOCK - 2)]
        answerers.append(_start(cmd, env))
    pids = [p.pid for p in answerers]
    stop_watchers = watchers([READY_LINES[p] for p in pids]) if watchers else None
    for pid in pids:  # the answerer keeps normal priority; SIPp/dumpcap inherit ours
        try:
            os.setpriority(os.PRIO_PROCESS, pid, 0)
        except PermissionError:  # not root: everything runs at the same nice, say so
            print("   (not root: the answerer runs at the load generator's nice)", flush=True)
    pcap = work / f"{system}-{n}.pcap"
    cap = subprocess.Popen(["dumpcap", "-q", "-i", "lo", "-P", "-s", "96", "-B", "64",
                            "-f", f"udp src portrange {rtp_lo}-{rtp_hi} and dst portrange "
                            f"{SIPP_STREAM_MEDIA_BASE}-"
                            f"{SIPP_MEDIA_BASE + procs * SIPP_MEDIA_BLOCK - 1}",
                            "-w", str(pcap)],
                           stderr=subprocess.PIPE, text=True)
    sinks = caller_port_sinks(procs) if caller_ports == "listen" and caller == "pcap" else []
    time.sleep(1.5)  # let dumpcap open the interface
    sampler = Sampler(pids)
    sampler.start()
    cpu0, t0 = _cpu(pids), time.monotonic()
    shares = [n // procs + (1 if k < n % procs else 0) for k in range(procs)]

    def place_calls(k: int) -> SippResult:
        d = work / f"sipp{k}"
        d.mkdir(exist_ok=True)
        rate = max(1, cps // procs)
        return run_sipp(f"127.0.0.1:{sip_ports[k]}", xml, local_port=sipp_ports[k], workdir=d,
                        extra=["-m", str(shares[k]), "-l", str(shares[k]), "-r", str(rate),
                               "-mp", str(media_ports[k]),
                               "-timeout", str(int(hold_s + n / cps + 90))],
                        timeout=hold_s + n / cps + 120)

    ru0 = resource.getrusage(resource.RUSAGE_CHILDREN)  # SIPp is the only child reaped here
    with ThreadPoolExecutor(procs) as pool:
        results = list(pool.map(place_calls, range(procs)))
    cpu1, t1 = _cpu(pids), time.monotonic()
    for k, res in enumerate(results):
        if res.successful != shares[k]:
            print(f"   SIPp {k}: {res.successful}/{shares[k]} calls, rc {res.returncode}: "
                  f"{(res.errors or res.stdout)[-600:]!r}", flush=True)
    ru1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    sipp_cpu = ru1.ru_utime + ru1.ru_stime - ru0.ru_utime - ru0.ru_stime
    load = os.getloadavg()[0]
    sampler.stop.set()
    if stop_watchers is not None:
        stop_watchers()
    stats = [_finish(p) for p in answerers]
    for sink in sinks:
        sink.close()
    cap.terminate()
    _, err = cap.communicate(timeout=30)
    dropped = " ".join(ln.strip() for ln in err.splitlines() if "dropped" in ln)
    streams = read_streams(pcap)
    media = figures(streams)
    pcap.unlink()
    ok = sum(r.successful for r in results)
    cpu = cpu1 - cpu0
    return Run(
        system=system, n=n, procs=procs, sipp_ok=ok, sipp_failed=sum(r.failed for r in results),
        retrans=sum(r.retransmissions for r in results), digits_sent=ok,
        digits_rx=int(sum(s.get("digits_rx", 0) for s in stats)),
        digits_tx=int(sum(s.get("digits_tx", 0) for s in stats)), media=media,
        cpu_ms_per_call_s=cpu * 1000 / media.call_seconds if media.call_seconds else float("nan"),
        cpu_pct=100 * cpu / (t1 - t0), rss_mb=sampler.peak_mb, load=load,
        sipp_cpu_pct=100 * sipp_cpu / (t1 - t0),
        setup_ms=max(r.response_time_ms(1) for r in results),
        steady_p99_ms=steady_gap_p99_ms(streams, n),
        tick_late_p99_ms=max(float(s.get("tick_late_p99_ms", -1)) for s in stats),
        dropped=dropped, answerer_stats=stats, timeline=timeline(streams))


def show(r: Run) -> None:
    m = r.media
    dtmf_out = f"{m.dtmf_events}/{r.digits_tx}" if r.system == "engine" else "n/a"
    print(f"{r.system:>7} {r.n:>5} {r.procs:>2} {r.sipp_ok:>5}/{r.sipp_failed:<4} {r.retrans:>5} "
          f"{m.streams:>5} {m.pps_mean:>6.1f} {m.pps_min:>6.1f} {m.gap_p50_ms:>6.1f} "
          f"{m.gap_p99_ms:>7.1f} {r.steady_p99_ms:>6.1f} {m.gap_max_ms:>7.0f} "
          f"{r.digits_rx:>5}/{r.digits_sent:<5} "
          f"{dtmf_out:>9} {r.cpu_ms_per_call_s:>7.2f} {r.cpu_pct:>5.0f}% {r.rss_mb:>6.0f} "
          f"{r.load:>5.2f} {r.sipp_cpu_pct:>4.0f}% {r.tick_late_p99_ms:>5.1f} "
          f"{r.setup_ms:>6.1f} {'PASS' if r.passed else 'FAIL'}  {r.dropped}", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", default="50,200,500,1000", help="engine series")
    ap.add_argument("--pyvoip-n", default="50,200", help="pyVoIP series ('' to skip)")
    ap.add_argument("--hold", type=float, default=30.0,
                    help="seconds each call lasts (at least ~9: the digit comes at 8 s)")
    ap.add_argument("--procs", default="auto", help="engine processes (auto: 1 below 400 calls)")
    ap.add_argument("--cps", type=int, default=100, help="total call rate while ramping up")
    ap.add_argument("-v", "--verbose", action="store_true",
                    help="answerer counters (GC, pacer) and a 5 s gap timeline per run")
    ap.add_argument("--caller-ports", choices=("listen", "closed"), default="listen",
                    help="pcap caller: whether the offered RTP ports are bound (module docstring)")
    ap.add_argument("--caller", choices=("rtpstream", "pcap"), default="rtpstream",
                    help="how SIPp plays the callers' audio (module docstring)")
    ap.add_argument("--nice-load", type=int, default=10,
                    help="nice of SIPp and dumpcap (0: compete with the answerer as equals)")
    args = ap.parse_args()
    os.setpriority(os.PRIO_PROCESS, 0, args.nice_load)  # lowering it again per answerer: root
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, 65536)), hard))
    plan = [("engine", int(x)) for x in args.n.split(",") if x]
    if importlib.util.find_spec("pyVoIP") is not None:
        plan += [("pyvoip", int(x)) for x in args.pyvoip_n.split(",") if x]
    else:
        print("pyVoIP not installed: baseline skipped (pip install pyVoIP==1.6.8)")
    print(f"hold {args.hold:.0f} s, ramp {args.cps} calls/s, load generator at nice "
          f"{args.nice_load}, callers' audio {args.caller}, callers' RTP ports "
          f"{args.caller_ports}; gaps from a dumpcap "
          f"capture on lo; "
          f"pass = gap p99 <= {MAX_P99_GAP_MS:.0f} ms and no missed digit")
    print(f"{'system':>7} {'N':>5} {'P':>2} {'ok/fail':>10} {'retx':>5} {'strms':>5} "
          f"{'pps':>6} {'ppsmin':>6} {'p50ms':>6} {'p99ms':>7} {'steady':>6} {'maxms':>7} "
          f"{'dtmf in':>11} "
          f"{'dtmf out':>9} {'ms/c-s':>7} {'cpu':>6} {'rssMB':>6} {'load1':>5} {'sipp':>5} "
          f"{'tick99':>5} {'setup':>6}")
    best: dict[str, int] = {}
    for system, n in plan:
        procs = (1 if n < 400 else 2) if args.procs == "auto" or system == "pyvoip" \
            else int(args.procs)
        with tempfile.TemporaryDirectory(prefix="bench-media-") as tmp:
            r = one_run(system, n, procs=procs, hold_s=args.hold, cps=args.cps, work=Path(tmp),
                        caller_ports=args.caller_ports, caller=args.caller)
        show(r)
        if args.verbose:
            for st in r.answerer_stats:
                print("   answerer:", json.dumps(st))
            for t, live, p99, mx in r.timeline:
                print(f"   t={t:>4.0f}s streams~{live:>5} gap p99 {p99:6.1f} ms max {mx:6.0f} ms")
        if r.passed:
            best[system] = max(best.get(system, 0), n)
    for system in dict.fromkeys(s for s, _ in plan):
        print(f"{system}: largest N with gap p99 <= {MAX_P99_GAP_MS:.0f} ms and no missed digit: "
              f"{best.get(system, 0)}")


if __name__ == "__main__":
    main()
