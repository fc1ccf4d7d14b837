"""The Asterisk backend's cost and turn latency vs the engine's own SIP/RTP (issue 19).

N concurrent SIPp callers (``-l N``), each holding ``--hold`` s and pressing a key every 2 s,
call either the engine's SIP port directly or Asterisk's PJSIP, whose dialplan hands them to the
same engine over AudioSocket (the shipped snippet). The engine answers each key at once with a
300 ms tone (tests/bench/asterisk_engine.py). Measured:

* turn latency: from the caller's first RFC 4733 end packet of a key to the first non-silent
  audio packet of the answer arriving at the caller, both read from a kernel-timestamped
  ``dumpcap`` capture on ``lo`` (what the caller experiences, not the engine's own log);
* CPU per call-second of the engine process, and of Asterisk, from /proc (psutil), over the
  time the calls ran.

Needs the Asterisk of scripts/asterisk.sh, Debian sip-tester and tshark (dumpcap), root. Run
it niced (``nice -n 10``): as in bench_media, the systems under test (the engine, Asterisk) are
given back normal priority, SIPp and dumpcap keep the nice.

    nice -n 10 python -m tests.bench.bench_asterisk [--n 10,100] [--hold 20] [--runs 1]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import psutil

from audio.tones import silence
from engine.rtp.pcap import read_udp_payloads
from tests.asterisk import Asterisk, start_asterisk
from tests.netutil import free_port, free_port_block
from tests.rtp_pcap import caller_pcap
from tests.sipp import run_sipp

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "tests" / "fixtures" / "sipp" / "uac_asterisk.xml.tmpl"
KEY_EVERY_S = 2.0
FIRST_KEY_S = 3.0
SILENT_ULAW = frozenset({0xFF, 0x7F, 0xFE, 0x7E})


@dataclass
class Result:
    backend: str
    n: int
    calls_ok: int
    keys: int
    answered_keys: int
    lat_p50_ms: float
    lat_p95_ms: float
    lat_max_ms: float
    engine_cpu_ms_per_call_s: float
    asterisk_cpu_ms_per_call_s: float
    load: float


def scenario(work: Path, hold_s: float, media_port: int) -> Path:
    keys = int((hold_s - FIRST_KEY_S - 1) // KEY_EVERY_S)
    pcap = caller_pcap(work / "caller.pcap", silence(hold_s),
                       tuple((FIRST_KEY_S + i * KEY_EVERY_S, str(i % 10)) for i in range(keys)))
    text = TEMPLATE.read_text()
    for key, value in {"pcap": str(pcap), "hold_ms": str(int(hold_s * 1000)),
                       # SIPp's keyword, so it plays the pcap from its media port (a literal
                       # port leaves the source port 0, which no answerer can send back to)
                       "sink_port": "[media_port]", "caller": "13800138000",
                       "caller_name": "bench"}.items():
        text = text.replace("{" + key + "}", value)
    path = work / "uac_bench.xml"
    path.write_text(text)
    return path


def latencies(pcap: Path, answerer: range) -> tuple[int, list[float]]:
    """(keys the callers sent, key-end -> answer-audio latencies in ms) from a capture.
    ``answerer``: the answering side's RTP ports (the engine's, or Asterisk's); each call is
    one of them. SIPp plays its pcap from a port of its own, and the engine latches onto it
    (symmetric RTP), so the caller's side is known only as "not the answerer"."""
    key_ends: dict[tuple[int, int], float] = {}  # (answerer port, RTP ts) -> first end packet
    answers: dict[int, list[float]] = {}  # answerer port -> times of non-silent audio out
    for t, sport, dport, payload in read_udp_payloads(pcap):
        if len(payload) < 16 or payload[0] >> 6 != 2:
            continue
        pt = payload[1] & 0x7F
        if dport in answerer and pt == 101 and payload[13] & 0x80:
            ts = int.from_bytes(payload[4:8], "big")
            key_ends.setdefault((dport, ts), t)
        elif sport in answerer and dport not in answerer and pt == 0:
            body = payload[12:]
            if sum(1 for b in body if b not in SILENT_ULAW) > len(body) // 2:
                answers.setdefault(sport, []).append(t)
    out: list[float] = []
    for (port, _), t_key in key_ends.items():
        times = np.array(answers.get(port, []))
        later = times[(times > t_key) & (times < t_key + 2.0)]
        if len(later):
            out.append(float(later.min() - t_key) * 1000)
    return len(key_ends), out


def cpu_s(pid: int) -> float:
    t = psutil.Process(pid).cpu_times()
    return t.user + t.system


@dataclass
class Setup:
    ast: Asterisk
    engine_pid: int
    sip_port: int
    engine_rtp: range
    work: Path


def one_run(backend: str, n: int, hold_s: float, setup: Setup) -> Result:
    ast, engine_pid, sip_port, work = setup.ast, setup.engine_pid, setup.sip_port, setup.work
    media_port = free_port_block(2)
    sc = scenario(work, hold_s, media_port)
    cap_file = work / f"{backend}-{n}.pcap"
    answerer = (setup.engine_rtp if backend == "sip"
                else range(ast.rtp_start, ast.rtp_start + 400))
    cap = subprocess.Popen(["dumpcap", "-q", "-i", "lo", "-P", "-s", "128", "-B", "64",
                            "-f", f"udp portrange {answerer.start}-{answerer.stop - 1}",
                            "-w", str(cap_file)],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(3.0)  # let dumpcap open the interface (slow on a busy machine)
    target = f"127.0.0.1:{sip_port}" if backend == "sip" else f"127.0.0.1:{ast.sip_port}"
    assert ast.proc is not None
    e0, a0 = cpu_s(engine_pid), cpu_s(ast.proc.pid)
    res = run_sipp(target, sc, local_port=free_port(), workdir=work,
                   extra=["-m", str(n), "-l", str(n), "-r", "20", "-s", "4000",
                          "-mp", str(media_port), "-timeout", str(int(hold_s + 60))],
                   timeout=hold_s + 120)
    e1, a1 = cpu_s(engine_pid), cpu_s(ast.proc.pid)
    time.sleep(0.5)
    cap.terminate()
    cap.wait(10)
    keys, lat = latencies(cap_file, answerer)
    call_s = n * hold_s  # each call is answered at once and held hold_s
    lat_arr = np.array(lat) if lat else np.array([float("nan")])
    return Result(backend, n, res.successful, keys, len(lat),
                  float(np.percentile(lat_arr, 50)), float(np.percentile(lat_arr, 95)),
                  float(lat_arr.max()), (e1 - e0) * 1000 / call_s,
                  (a1 - a0) * 1000 / call_s if backend == "asterisk" else 0.0,
                  os.getloadavg()[0])


def normal_priority(pid: int) -> None:
    """The system under test runs at nice 0 (every thread: Asterisk's channels inherit it)."""
    for t in psutil.Process(pid).threads():
        try:
            os.setpriority(os.PRIO_PROCESS, t.id, 0)
        except (PermissionError, ProcessLookupError):
            pass


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", default="10,100")
    ap.add_argument("--hold", type=float, default=20.0)
    ap.add_argument("--runs", type=int, default=1)
    args = ap.parse_args()
    if shutil.which("dumpcap") is None or shutil.which("sipp") is None:
        sys.exit("needs dumpcap (tshark) and sipp (sip-tester)")
    work = Path(tempfile.mkdtemp(prefix="ivr-bench-ast-"))
    ast = start_asterisk()
    sip_port, rtp = free_port(), free_port_block(600)
    env = {"IVR_SIP__LISTEN": f"127.0.0.1:{sip_port}",
           "IVR_STORAGE__URL": f"sqlite:///{work}/ivr.sqlite",
           "IVR_STORAGE__RECORDINGS_DIR": str(work / "rec"),
           "IVR_RTP__PORT_MIN": str(rtp), "IVR_RTP__PORT_MAX": str(rtp + 598),
           "IVR_RTP__RECORD_CALLS": "false", "IVR_METRICS__LISTEN": "127.0.0.1:0",
           "IVR_SIP__DRAIN_S": "1", **ast.engine_env()}
    engine = subprocess.Popen([sys.executable, "-m", "tests.bench.asterisk_engine",
                               json.dumps(env)], cwd=ROOT, stdout=subprocess.PIPE, text=True,
                              env={**os.environ, "PYTHONPATH": str(ROOT)})
    results: list[Result] = []
    try:
        assert engine.stdout is not None
        line = engine.stdout.readline().strip()
        if line != "ready":
            sys.exit(f"engine did not start: {line}")
        assert ast.proc is not None
        normal_priority(engine.pid)
        normal_priority(ast.proc.pid)
        for n in [int(x) for x in args.n.split(",")] * args.runs:
            for backend in ("sip", "asterisk"):
                r = one_run(backend, n, args.hold,
                            Setup(ast, engine.pid, sip_port, range(rtp, rtp + 600), work))
                results.append(r)
                print(json.dumps(r.__dict__), flush=True)
    finally:
        engine.terminate()
        out, _ = engine.communicate(timeout=30)
        print("engine:", out.strip().splitlines()[-1] if out.strip() else "-")
        ast.stop()
    print(f"\n{'backend':9} {'N':>4} {'ok':>4} {'keys':>5} {'answered':>8} {'p50 ms':>7} "
          f"{'p95 ms':>7} {'max ms':>7} {'engine CPU-ms/call-s':>21} {'Asterisk':>9} {'load':>5}")
    for r in results:
        print(f"{r.backend:9} {r.n:4d} {r.calls_ok:4d} {r.keys:5d} {r.answered_keys:8d} "
              f"{r.lat_p50_ms:7.1f} {r.lat_p95_ms:7.1f} {r.lat_max_ms:7.1f} "
              f"{r.engine_cpu_ms_per_call_s:21.2f} {r.asterisk_cpu_ms_per_call_s:9.2f} "
              f"{r.load:5.1f}")


if __name__ == "__main__":
    main()
