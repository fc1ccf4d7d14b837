"""Call set-up rate: SIPp ``uac`` (signalling only) against the engine's UA at rising rates.

For each rate, SIPp places ``rate * seconds`` calls; we report successful/failed calls,
retransmissions, INVITE->200 latency p50/p99 (from SIPp's own per-call ``-trace_rtt`` file,
not the engine's log) and the engine's CPU seconds per 1000 calls. The highest rate with zero
failed calls and zero retransmissions is the sustained rate.

    python -m tests.bench.bench_sip_setup [--rates 100,200,...] [--seconds 10]
"""

from __future__ import annotations

import argparse
import csv
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tests.netutil import free_port
from tests.sipp import run_sipp


def percentile(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    values = sorted(values)
    k = min(len(values) - 1, max(0, round(p / 100 * (len(values) - 1))))
    return values[k]


def rtts_of(work: Path) -> list[float]:
    """INVITE->200 times (ms) from SIPp's per-call ``-trace_rtt`` files in ``work``."""
    out: list[float] = []
    for f in work.glob("*_rtt.csv"):
        with f.open() as fh:
            for row in csv.DictReader(fh, delimiter=";"):
                try:
                    out.append(float(row["response_time_ms"]))
                except (KeyError, ValueError):
                    pass
    return out


def one_rate(rate: int, seconds: int) -> dict[str, float]:
    port = free_port()
    engine = subprocess.Popen([sys.executable, "-m", "tests.bench.sip_answerer", str(port)],
                              stdout=subprocess.PIPE, text=True)
    assert engine.stdout is not None
    engine.stdout.readline()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        total = rate * seconds
        t0 = time.perf_counter()
        res = run_sipp(f"127.0.0.1:{port}", "uac", local_port=free_port(), workdir=work,
                       extra=["-m", str(total), "-r", str(rate), "-l", str(rate * 2),
                              "-trace_rtt", "-rtt_freq", "1", "-timeout", str(seconds * 4 + 30),
                              "-d", "0"],
                       timeout=seconds * 6 + 60)
        wall = time.perf_counter() - t0
        rtts = rtts_of(work)
    engine.terminate()
    out, _ = engine.communicate(timeout=10)
    fields = dict(kv.split("=") for kv in out.split() if "=" in kv)
    cpu = float(fields.get("cpu_s", "nan"))
    return {"rate": rate, "calls": total, "ok": res.successful, "failed": res.failed,
            "retrans": res.retransmissions, "p50_ms": percentile(rtts, 50),
            "p99_ms": percentile(rtts, 99), "mean_ms": res.response_time_ms(1),
            "engine_cpu_ms_per_call": cpu * 1000 / max(1, res.successful), "wall_s": wall}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rates", default="100,200,300,400,500,600,800")
    ap.add_argument("--seconds", type=int, default=10)
    args = ap.parse_args()
    print("INVITE->200 p50/p99 from SIPp's per-call rtt file (1 ms resolution); mean from its"
          " cumulative counter (µs resolution)")
    print(f"{'cps':>5} {'calls':>6} {'ok':>6} {'fail':>5} {'retx':>5} {'p50ms':>7} {'p99ms':>7}"
          f" {'mean ms':>8} {'cpu ms/call':>11}")
    best = 0
    for rate in [int(r) for r in args.rates.split(",")]:
        r = one_rate(rate, args.seconds)
        print(f"{r['rate']:>5} {r['calls']:>6} {r['ok']:>6} {r['failed']:>5} {r['retrans']:>5} "
              f"{r['p50_ms']:>7.0f} {r['p99_ms']:>7.0f} {r['mean_ms']:>8.3f} "
              f"{r['engine_cpu_ms_per_call']:>11.3f}",
              flush=True)
        if r["failed"] == 0 and r["ok"] == r["calls"] and r["retrans"] == 0:
            best = rate
    print(f"highest sustained rate with zero failures and zero retransmissions: {best} cps")


if __name__ == "__main__":
    main()
