"""Console live events during load (issue 13): the media benchmark's calls (SIPp ``uac_pcap``,
held ``--hold`` s) with and without ``--viewers`` Server-Sent Events viewers watching every
call event through the console.

Runs, on the same engine process setup (``tests.bench.media_engine``):

1. ``baseline``: no console;
2. ``viewers``: the console on the engine's bus and N viewers (``tests.bench.sse_viewers``, a
   separate process) receiving every event of every call;
3. ``viewers+nodes``: the same, with ``--node-events`` synthetic ``flow.node`` events per call
   per second on top (the benchmark's IVR runs no flow), to load the fan-out.

Media is measured as in ``bench_media``: the engine's RTP as the callers receive it, from a
kernel-timestamped capture (gap p50/p99/max), plus the pacer's own tick lateness and the
engine's CPU. The viewers report what they received and any close reason (``slow_consumer``).

    python -m tests.bench.bench_console_fanout [--n 200] [--viewers 100] [--hold 30]
        [--node-events 5]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

from tests.bench.bench_media import Run, one_run, show
from tests.netutil import free_port


def start_viewers(n: int, out: dict[str, object]) -> Callable[[list[str]], Callable[[], object]]:
    def start(ready: list[str]) -> Callable[[], object]:
        fields = dict(f.split("=", 1) for f in ready[0].split()[1:])
        proc = subprocess.Popen([sys.executable, "-m", "tests.bench.sse_viewers",
                                 fields["console"], fields["token"], str(n)],
                                stdout=subprocess.PIPE, text=True)
        assert proc.stdout is not None
        if "ready" not in proc.stdout.readline():
            proc.kill()
            raise RuntimeError("viewers did not connect")

        def stop() -> object:
            proc.terminate()
            text, _ = proc.communicate(timeout=30)
            out.update(json.loads([ln for ln in text.splitlines() if ln.startswith("{")][-1]))
            return out

        return stop

    return start


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=200, help="concurrent calls")
    ap.add_argument("--viewers", type=int, default=100)
    ap.add_argument("--hold", type=float, default=30.0)
    ap.add_argument("--cps", type=int, default=50)
    ap.add_argument("--node-events", type=float, default=5.0,
                    help="extra flow.node events per call per second in the last run")
    args = ap.parse_args()
    os.setpriority(os.PRIO_PROCESS, 0, 10)  # SIPp, dumpcap, viewers below the engine
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, 65536)), hard))
    results: list[tuple[str, Run, dict[str, object]]] = []
    plan: list[tuple[str, dict[str, str], bool]] = [
        ("baseline", {}, False),
        ("viewers", {"BENCH_CONSOLE_PORT": str(free_port())}, True),
        ("viewers+nodes", {"BENCH_CONSOLE_PORT": str(free_port()),
                           "BENCH_EVENTS_PER_S": str(args.node_events)}, True),
    ]
    print(f"{args.n} calls held {args.hold:.0f} s, {args.viewers} viewers; gaps from a "
          "dumpcap capture on lo")
    for name, env, watch in plan:
        viewers: dict[str, object] = {}
        with tempfile.TemporaryDirectory(prefix="ivr-fanout-") as tmp:
            run = one_run("engine", args.n, procs=1, hold_s=args.hold, cps=args.cps,
                          work=Path(tmp), env=env,
                          watchers=start_viewers(args.viewers, viewers) if watch else None)
        print(f"-- {name}")
        show(run)
        results.append((name, run, viewers))
    print()
    print(f"{'run':14} {'gap p50':>8} {'gap p99':>8} {'gap max':>8} {'tick p99':>9} "
          f"{'CPU ms/call-s':>13} {'hub events':>10} {'longest slice':>13} "
          f"{'events/viewer':>14} {'dropped':>8}")
    for name, run, v in results:
        per_viewer = f"{v.get('events_min', '-')}-{v.get('events_max', '-')}" if v else "-"
        stats = run.answerer_stats[0] if run.answerer_stats else {}
        closed = v.get("closed", []) if v else []
        dropped = sum(1 for r in closed if r == "slow_consumer") if v else "-"  # type: ignore[union-attr]
        print(f"{name:14} {run.media.gap_p50_ms:>8.1f} {run.media.gap_p99_ms:>8.1f} "
              f"{run.media.gap_max_ms:>8.0f} {run.tick_late_p99_ms:>9.1f} "
              f"{run.cpu_ms_per_call_s:>13.2f} {stats.get('hub_events', '-')!s:>10} "
              f"{stats.get('hub_longest_slice_ms', '-')!s:>10} ms {per_viewer:>14} "
              f"{dropped!s:>8}")
    print(f"(load average at the end: {os.getloadavg()[0]:.1f})")


if __name__ == "__main__":
    main()
