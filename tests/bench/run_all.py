"""``make bench``: every benchmark in turn, each in its own process, figures on stdout.

Benchmarks are not tests: they print figures (rates, latency percentiles, CPU per call-second,
memory) for docs/benchmarks.md and take minutes. ``--quick`` runs the short variants (codecs,
RTP, flows, compliance, speaker, call set-up at two rates, ASR at 1 and 10 callers, media at 50
calls) in about ten minutes; without it the full series run (an hour or more on 2 cores).
Run one alone with ``python -m tests.bench.bench_<area> --help``.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time

QUICK: list[list[str]] = [
    ["bench_sip_codec"],
    ["bench_rtp"],
    ["bench_flows"],
    ["bench_compliance"],
    ["bench_sms", "--n", "2000", "--service-n", "500", "--calls", "10"],
    ["bench_speaker"],
    ["bench_sip_setup", "--rates", "100,300", "--seconds", "5"],
    ["bench_asr", "--quick"],
    ["bench_media", "--n", "50", "--pyvoip-n", "", "--hold", "10"],
    ["bench_console_search", "--rows", "100000", "--requests", "500"],
    ["bench_console_fanout", "--n", "50", "--viewers", "20", "--hold", "10"],
]
FULL: list[list[str]] = [
    ["bench_sip_codec"],
    ["bench_rtp"],
    ["bench_flows"],
    ["bench_compliance"],
    ["bench_sms"],
    ["bench_speaker"],
    ["bench_sip_setup"],
    ["bench_asr"],
    ["bench_media"],
    ["bench_console_search"],
    ["bench_console_fanout"],
]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="the short variants only")
    ap.add_argument("--only", default="", help="comma-separated bench names to run")
    args = ap.parse_args()
    plan = QUICK if args.quick else FULL
    if args.only:
        wanted = set(args.only.split(","))
        plan = [p for p in plan if p[0] in wanted]
    failed = []
    for name, *extra in plan:
        print(f"\n===== {name} {' '.join(extra)}", flush=True)
        t0 = time.monotonic()
        rc = subprocess.call([sys.executable, "-m", f"tests.bench.{name}", *extra])
        print(f"===== {name}: exit {rc} after {time.monotonic() - t0:.0f} s", flush=True)
        if rc:
            failed.append(name)
    if failed:
        print(f"\nfailed: {', '.join(failed)}")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
