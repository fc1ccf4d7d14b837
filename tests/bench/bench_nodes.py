"""Aggregate call rate and concurrent calls with 1 vs 2 engine nodes behind Kamailio (issue 18).

Each node is a whole engine process (``tests.bench.media_engine``: SIP, call records, RTP with
the pacer sending a prompt to every caller, digits), listed in the shipped
``deploy/kamailio/kamailio.cfg`` dispatcher; SIPp (``uac_via_proxy.xml``, signalling through
Kamailio, no caller audio) places calls on Kamailio's public port at rising rates, each held
``--hold`` seconds, so the concurrent calls at a rate are about ``rate x hold``. Reported per
rate: calls, failures, SIPp retransmissions, INVITE->200 p50/p99 (SIPp's own per-call rtt
file, so Kamailio's hop is included), the nodes' CPU per call, Kamailio's CPU share, and the
split over the nodes. The highest rate with zero failures and zero retransmissions is the
sustained rate for that node count.

Everything shares this box's cores (SIPp and Kamailio at the engine's priority here, since
Kamailio is part of the system under test), so on 2 cores a second node helps only as far as
one engine process, not Kamailio or SIPp, was the limit; the table says which.

    python -m tests.bench.bench_nodes [--nodes 1,2] [--rates 50,100,...] [--seconds 10]
        [--hold 5] [--max-cps R]
    python -m tests.bench.bench_nodes --burst 1000 [--max-cps R]   # 1,000 calls within 1 s
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
from pathlib import Path

import psutil

from tests.bench.bench_media import RTP_BASE, RTP_BLOCK, _finish, _start
from tests.bench.bench_sip_setup import percentile, rtts_of
from tests.kamailio import Kamailio
from tests.netutil import free_port
from tests.sipp import run_sipp_async

SCENARIO = Path(__file__).resolve().parents[1] / "fixtures" / "sipp" / "uac_via_proxy.xml"


def cpu_s(proc: psutil.Process) -> float:
    t = proc.cpu_times()
    return t.user + t.system + t.children_user + t.children_system


async def one_rate(nodes: int, rate: int, seconds: int, hold_s: float, *,
                   env: dict[str, str] | None = None, total: int | None = None
                   ) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        answerers = []
        addresses = []
        for k in range(nodes):
            port = free_port()
            lo = RTP_BASE + k * RTP_BLOCK  # as bench_media: one block per node
            answerers.append(_start([sys.executable, "-m", "tests.bench.media_engine",
                                     str(port), str(lo), str(lo + RTP_BLOCK - 2), str(work)],
                                    env))
            addresses.append(("127.0.0.1", port))
        node_procs = [psutil.Process(p.pid) for p in answerers]
        try:
            async with Kamailio(addresses, work / "kamailio") as kam:
                assert kam.proc is not None
                kam_procs = [psutil.Process(kam.proc.pid)]
                kam_procs += kam_procs[0].children(recursive=True)
                await asyncio.sleep(3)  # the dispatcher's first OPTIONS probes mark nodes up
                node_cpu0 = [cpu_s(p) for p in node_procs]
                kam_cpu0 = sum(cpu_s(p) for p in kam_procs)
                is_burst = total is not None
                total = total or rate * seconds
                t0 = time.perf_counter()
                res = await run_sipp_async(
                    kam.address, SCENARIO, local_port=free_port(), workdir=work,
                    extra=["-m", str(total), "-r", str(rate), "-l", str(int(rate * hold_s * 3)),
                           "-d", str(int(hold_s * 1000)), "-trace_rtt", "-rtt_freq", "1",
                           "-timeout", str(int(seconds * 3 + hold_s + 30)),
                           # a 503 ends the call (ACKed, counted apart); in rate runs a
                           # 180 that Kamailio's two workers deliver after the 200 must not
                           "-default_behaviors", "all" if is_burst else "pingreply,bye"],
                    limit_s=seconds * 4 + hold_s + 60)
                wall = time.perf_counter() - t0
                node_cpu = [cpu_s(p) - c for p, c in zip(node_procs, node_cpu0, strict=True)]
                kam_cpu = sum(cpu_s(p) for p in kam_procs) - kam_cpu0
        finally:
            counts = [_finish(p).get("calls", 0) for p in answerers]
        rtts = rtts_of(work)
    if "BENCH_SIPP_STATS" in os.environ:
        print({k: v for k, v in res.stats.items() if v not in ("0", "")}, res.errors[-1500:])
    ok = max(1, res.successful)
    return {"nodes": nodes, "rate": rate, "calls": total, "ok": res.successful,
            "failed": res.failed, "retrans": res.retransmissions,
            # a 503 (admission pacing, or no node left) is a response the scenario does not
            # expect: SIPp counts it here, apart from timeouts
            "refused": int(res.stats.get("FailedUnexpectedMessage(C)", "0") or 0),
            "p50": percentile(rtts, 50), "p99": percentile(rtts, 99),
            "node_ms_per_call": sum(node_cpu) * 1000 / ok,
            "kam_pct": 100 * kam_cpu / wall, "node_pct": 100 * sum(node_cpu) / wall,
            "split": "/".join(str(int(c)) for c in counts), "concurrent": rate * hold_s}


async def burst(args: argparse.Namespace, env: dict[str, str] | None) -> None:
    """``--burst N``: N calls offered within one second. Passing means every call ends
    answered or refused at once with 503 (no caller left retransmitting into a full node)."""
    print(f"burst: {args.burst} calls within 1 s, held {args.hold} s, max_cps per node "
          f"{args.max_cps or 'off'}; load1 {psutil.getloadavg()[0]:.1f}")
    print(f"{'nodes':>5} {'calls':>6} {'ok':>6} {'503':>5} {'other':>5} {'retx':>5} {'p50ms':>6}"
          f" {'p99ms':>6} {'ms/call':>8} {'kam%':>5} {'split':>11}")
    for nodes in [int(n) for n in args.nodes.split(",")]:
        r = await one_rate(nodes, args.burst, 1, args.hold, env=env, total=args.burst)
        print(f"{nodes:>5} {r['calls']:>6} {r['ok']:>6} {r['refused']:>5}"
              f" {r['failed'] - r['refused']:>5} {r['retrans']:>5} {r['p50']:>6.0f}"
              f" {r['p99']:>6.0f} {r['node_ms_per_call']:>8.2f} {r['kam_pct']:>4.0f}%"
              f" {r['split']:>11}", flush=True)


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--nodes", default="1,2")
    ap.add_argument("--rates", default="50,100,150,200,300")
    ap.add_argument("--seconds", type=int, default=10)
    ap.add_argument("--hold", type=float, default=5.0)
    ap.add_argument("--burst", type=int, default=0,
                    help="instead of the rates: this many calls within one second")
    ap.add_argument("--max-cps", type=float, default=0,
                    help="each node's sip.max_cps (admission pacing; 0: off)")
    args = ap.parse_args()
    env = {"IVR_SIP__MAX_CPS": str(args.max_cps)} if args.max_cps else None
    if args.burst:
        await burst(args, env)
        return
    print(f"SIPp -> Kamailio -> engine nodes; {args.seconds} s per rate, calls held {args.hold}"
          f" s; load1 {psutil.getloadavg()[0]:.1f}; {psutil.cpu_count()} cpus")
    print(f"{'nodes':>5} {'cps':>5} {'conc':>5} {'ok':>6} {'fail':>5} {'retx':>5} {'p50ms':>6}"
          f" {'p99ms':>6} {'ms/call':>8} {'nodes%':>7} {'kam%':>5} {'split':>11} {'load1':>5}")
    for nodes in [int(n) for n in args.nodes.split(",")]:
        best = 0
        for rate in [int(r) for r in args.rates.split(",")]:
            r = await one_rate(nodes, rate, args.seconds, args.hold, env=env)
            print(f"{nodes:>5} {rate:>5} {r['concurrent']:>5.0f} {r['ok']:>6} {r['failed']:>5}"
                  f" {r['retrans']:>5} {r['p50']:>6.0f} {r['p99']:>6.0f}"
                  f" {r['node_ms_per_call']:>8.2f} {r['node_pct']:>6.0f}% {r['kam_pct']:>4.0f}%"
                  f" {r['split']:>11} {psutil.getloadavg()[0]:>5.1f}", flush=True)
            if r["failed"] == 0 and r["ok"] == r["calls"] and r["retrans"] == 0:
                best = rate
            elif r["failed"] > r["calls"] * 0.05:
                break  # well past the limit: higher rates only take longer to fail
        print(f"{nodes} node(s): highest rate with no failure and no retransmission: {best}"
              " calls/s", flush=True)


if __name__ == "__main__":
    asyncio.run(main())
