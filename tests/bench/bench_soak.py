"""Soak: the hostile mix of issue 11 against a running engine while SIPp places normal calls.

    python -m tests.bench.bench_soak [--minutes 10] [--cps 2] [--concurrent 30]

The engine is the media benchmark's answerer (``tests/bench/media_engine.py``: a prompt, then
digits acknowledged with RFC 4733), in its own process with the default limits. For the whole
run, SIPp's ``uac_pcap`` places normal calls (7 s of speech, then digit 1), and this process
throws, from 127.0.0.2-127.0.0.9:

* mutated and malformed INVITEs over UDP (bad SDP of every kind the issue lists, non-UTF-8
  headers, ``Contact: *``, text/plain bodies, 60 KB headers), ~20/s;
* RTP and RFC 4733 packets sprayed at random ports of the engine's RTP range, ~500/s;
* slowloris: 200 TCP connections trickling an endless header, reopened when closed;
* connection churn: bursts of TCP connections past the per-source cap.

It reports normal calls failed (goal 0), call records lost (records missing for answered calls,
and dead-lettered ones: goal 0), the engine's open files and RSS at start and end (goal: flat),
its CPU, and the defence counters from /metrics.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import re
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import psutil

from tests.netutil import free_port, free_port_block
from tests.sipp import dump_builtin, run_sipp

RTP_RANGE = 400
SDP_VARIANTS = [
    "m=audio 40000 RTP/AVP 0 101\r\na=rtpmap:0 PCMU\r\n",
    "m=audio 40000 RTP/AVP 0 101\r\na=rtpmap:101\r\n",
    "m=audio 40000 RTP/AVP 101\r\na=rtpmap:101 telephone-event/abc\r\n",
    "m=audio 4\u00b2 RTP/AVP 0\r\n",
    "m=audio 40000 RTP/AVP 18\r\na=rtpmap:18 G729/8000\r\n",
    "m=audio 99999999 RTP/AVP 0\r\n",
]


def hostile_invite(n: int, target: tuple[str, int], src: tuple[str, int]) -> bytes:
    kind = n % 8
    c_line = "" if kind == 1 else "c=IN IP4 127.0.0.2\r\n"
    sdp = ("v=0\r\no=- 1 1 IN IP4 127.0.0.2\r\ns=-\r\n" + c_line + "t=0 0\r\n"
           + SDP_VARIANTS[n % len(SDP_VARIANTS)])
    call_id = f"soak-{n}@evil" if kind != 2 else f"\udcff\udcfe-{n}@evil"
    contact = "*" if kind == 3 else f"<sip:evil@{src[0]}:{src[1]}>"
    ctype = "text/plain" if kind == 4 else "application/sdp"
    pad = f"X-Pad: {'a' * 60000}\r\n" if kind == 5 else ""
    head = (f"INVITE sip:100@{target[0]}:{target[1]} SIP/2.0\r\n"
            f"Via: SIP/2.0/UDP {src[0]}:{src[1]};rport;branch=z9hG4bK-soak{n}\r\n"
            f"From: <sip:evil@{src[0]}>;tag=s{n}\r\nTo: <sip:100@{target[0]}>\r\n"
            f"Call-ID: {call_id}\r\nCSeq: 1 INVITE\r\nMax-Forwards: 70\r\nContact: {contact}\r\n"
            f"{pad}Content-Type: {ctype}\r\nContent-Length: {len(sdp)}\r\n\r\n")
    data = head.encode("utf-8", "surrogateescape") + sdp.encode()
    if kind == 6:  # a random byte flipped somewhere
        i = random.randrange(len(data))
        data = data[:i] + bytes([random.randrange(256)]) + data[i + 1:]
    return data[:65000]


async def udp_attacks(target: tuple[str, int], rtp: int, stop: asyncio.Event,
                      counts: dict[str, int]) -> None:
    socks = []
    for i in range(2, 10):
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.bind((f"127.0.0.{i}", 0))
        s.setblocking(False)
        socks.append(s)
    n = 0
    rtp_pkt = bytes([0x80, 0x00]) + os.urandom(10) + b"\xff" * 160
    dtmf_pkt = bytes([0x80, 0xE5]) + os.urandom(10) + bytes([1, 0x8A, 0, 160])
    try:
        while not stop.is_set():
            for _ in range(2):
                s = random.choice(socks)
                try:
                    s.sendto(hostile_invite(n, target, s.getsockname()), target)
                    counts["invites"] += 1
                except OSError:
                    pass
                n += 1
            for _ in range(50):
                port = rtp + 2 * random.randrange(RTP_RANGE // 2)
                try:
                    random.choice(socks).sendto(random.choice([rtp_pkt, dtmf_pkt]),
                                                ("127.0.0.1", port))
                    counts["rtp"] += 1
                except OSError:
                    pass
            for s in socks:  # swallow the engine's answers
                try:
                    while True:
                        s.recv(70000)
                except (BlockingIOError, OSError):
                    pass
            await asyncio.sleep(0.1)
    finally:
        for s in socks:
            s.close()


async def slowloris(target: tuple[str, int], stop: asyncio.Event, counts: dict[str, int],
                    n: int = 200) -> None:
    async def one(i: int) -> None:
        while not stop.is_set():
            try:
                _, w = await asyncio.open_connection(target[0], target[1],
                                                     local_addr=(f"127.0.0.{2 + i % 8}", 0))
            except OSError:
                await asyncio.sleep(1)
                continue
            counts["slowloris_conns"] += 1
            try:
                w.write(b"INVITE sip:x@y SIP/2.0\r\nVia: SIP/2.0/TCP x;branch=z9hG4bK1\r\n")
                while not stop.is_set() and not w.is_closing():
                    w.write(b"X-Slow: " + b"a" * 300 + b"\r\n")
                    await w.drain()
                    await asyncio.sleep(2)
            except (ConnectionError, OSError):
                pass
            finally:
                w.close()

    await asyncio.gather(*(one(i) for i in range(n)))


async def churn(target: tuple[str, int], stop: asyncio.Event, counts: dict[str, int]) -> None:
    while not stop.is_set():
        conns = []
        for _ in range(100):
            try:
                conns.append(await asyncio.open_connection(target[0], target[1],
                                                           local_addr=("127.0.0.9", 0)))
                counts["churn_conns"] += 1
            except OSError:
                pass
        await asyncio.sleep(1)
        for _, w in conns:
            w.close()
        await asyncio.sleep(1)


def metrics(url: str) -> dict[str, float]:
    text = urllib.request.urlopen(url, timeout=5).read().decode()
    out = {}
    for line in text.splitlines():
        m = re.match(r"^(ivr_[a-z_]+)(\{[^}]*\})? ([0-9.e+-]+)$", line)
        if m:
            out[m.group(1) + (m.group(2) or "")] = float(m.group(3))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--minutes", type=float, default=10.0)
    ap.add_argument("--cps", type=float, default=2.0)
    ap.add_argument("--concurrent", type=int, default=30)
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="ivr-soak-"))
    sip_port, rtp, metrics_port = free_port(), free_port_block(RTP_RANGE), free_port()
    env = {**os.environ, "IVR_METRICS__LISTEN": f"127.0.0.1:{metrics_port}"}
    engine = subprocess.Popen(
        [sys.executable, "-m", "tests.bench.media_engine", str(sip_port), str(rtp),
         str(rtp + RTP_RANGE - 1), str(work)], stdout=subprocess.PIPE, text=True, env=env)
    assert engine.stdout is not None
    assert engine.stdout.readline().strip() == "ready"
    proc = psutil.Process(engine.pid)
    target = ("127.0.0.1", sip_port)
    start = {"fds": proc.num_fds(), "rss_mb": proc.memory_info().rss / 2**20,
             "cpu_s": sum(proc.cpu_times()[:2])}
    seconds = args.minutes * 60
    calls = int(seconds * args.cps)
    scenario = dump_builtin("uac_pcap", work / "uac_pcap.xml")
    counts = {"invites": 0, "rtp": 0, "slowloris_conns": 0, "churn_conns": 0}
    samples: list[tuple[float, int, float]] = []

    async def attack_and_call() -> object:
        stop = asyncio.Event()
        attacks = [asyncio.ensure_future(c) for c in (udp_attacks(target, rtp, stop, counts),
                                                      slowloris(target, stop, counts),
                                                      churn(target, stop, counts))]
        loop = asyncio.get_running_loop()
        normal = loop.run_in_executor(None, lambda: run_sipp(
            f"127.0.0.1:{sip_port}", scenario, local_port=free_port(), workdir=work,
            extra=["-m", str(calls), "-l", str(args.concurrent), "-r", str(args.cps),
                   "-mp", str(free_port_block(4 * args.concurrent + 4)), "-timeout",
                   str(int(seconds + 120))], timeout=seconds + 180))
        t0 = time.monotonic()
        while not normal.done():
            samples.append((round(time.monotonic() - t0), proc.num_fds(),
                            proc.memory_info().rss / 2**20))
            await asyncio.wait({normal}, timeout=10)
        stop.set()
        await asyncio.gather(*attacks, return_exceptions=True)
        return await normal

    t0 = time.monotonic()
    res = asyncio.run(attack_and_call())
    elapsed = time.monotonic() - t0
    time.sleep(3)  # the last records are written
    after = metrics(f"http://127.0.0.1:{metrics_port}/metrics")
    end = {"fds": proc.num_fds(), "rss_mb": proc.memory_info().rss / 2**20,
           "cpu_s": sum(proc.cpu_times()[:2])}
    engine.terminate()
    engine.wait(30)
    db = sqlite3.connect(next(work.glob("ivr-*.sqlite")))
    rows = dict(db.execute("select disposition, count(*) from calls group by disposition"))
    answered_rows = rows.get("answered", 0)
    print(json.dumps({"minutes": round(elapsed / 60, 1), "normal_calls": calls,
                      "normal_ok": res.successful, "normal_failed": res.failed,  # type: ignore[attr-defined]
                      "sipp_retransmissions": res.retransmissions,  # type: ignore[attr-defined]
                      "records_by_disposition": rows,
                      "records_lost": max(0, res.successful - answered_rows)  # type: ignore[attr-defined]
                      + int(after.get("ivr_cdr_dead_lettered_total", 0)),
                      "fds_start_end": [start["fds"], end["fds"]],
                      "rss_mb_start_end": [round(start["rss_mb"]), round(end["rss_mb"])],
                      "engine_cpu_pct": round(100 * (end["cpu_s"] - start["cpu_s"]) / elapsed, 1),
                      "attack": counts,
                      "defence": {k: v for k, v in after.items() if k.startswith(
                          ("ivr_sip_", "ivr_rtp_", "ivr_cdr_"))},
                      "fds_rss_samples": samples[:: max(1, len(samples) // 12)]}, indent=1))


if __name__ == "__main__":
    main()
