"""Dashboard statistics over 1M call records (issue 14).

Fills a SQLite database with ``--rows`` call records (20 tenants, 30 days; 70 % answered, each
answered call with a flow result and a trace of a dozen entries: two caller turns, two listens,
node enters and leaves, like a real menu-and-question call), kept in ``var/bench/`` and reused.
Then times :meth:`console.services.dashboard.DashboardOps.calls` (the SQL aggregates plus the
bounded trace scan, what ``GET /api/stats/calls`` runs in its worker thread) for the views the
dashboard asks for:

* ``tenant_24h``: one tenant, the last 24 hours by hour (~1,700 calls)
* ``tenant_30d``: one tenant, 30 days by day (~50,000 calls)
* ``all_24h``: every tenant (staff, ``tenant=*``), 24 hours by hour (~33,000 calls)
* ``all_30d``: every tenant, 30 days by day (all rows)

Reports p50 and max over ``--repeat`` runs per view.

    python -m tests.bench.bench_dashboard [--rows 1000000] [--repeat 5]
"""

from __future__ import annotations

import argparse
import random
import statistics
import time
from pathlib import Path
from typing import Any

from console.services.dashboard import DashboardOps, DashboardRequest
from engine.cdr_stats import CallStatistics
from storage.db import open_database
from storage.tenancy import Tenants
from tests.bench.bench_console_search import insert_calls

ROOT = Path(__file__).resolve().parents[2]
TENANTS = [f"tenant{i:02d}" for i in range(20)]
DAY_S = 86_400
T0 = 1_760_000_000.0
STATUSES = ["hangup"] * 6 + ["transferred", "caller_hangup", "caller_hangup", "error"]


def trace(rng: random.Random, at: float) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = [{"at": at, "kind": "answer"}]
    for node in ("menu", "ask"):
        total = rng.lognormvariate(6.2, 0.35)
        out += [{"at": at + 1, "kind": "node.enter", "node_id": node, "type": "menu"},
                {"at": at + 2, "kind": "play.start", "prompt": "tts:欢迎致电", "ms": 2400},
                {"at": at + 4, "kind": "listen", "status": rng.choice(
                    ["ok"] * 8 + ["nomatch", "no_input"]), "text": "查询余额", "confidence": 0.9},
                {"at": at + 5, "kind": "latency.turn", "node_id": node, "turn_kind": "grammar",
                 "budget_ms": 800, "total_ms": total, "asr_ms": total * 0.6,
                 "decision_ms": 1.0, "playout_ms": total * 0.4, "over_budget": total > 800},
                {"at": at + 6, "kind": "node.leave", "node_id": node, "outcome": "next"}]
    return out


def fill(url: str, rows: int) -> None:
    rng = random.Random(14)

    def row(i: int) -> dict[str, object]:
        at = T0 + i * (30 * DAY_S / rows)
        answered = rng.random() < 0.7
        return {
            "id": f"{i:08d}-0000-4000-8000-{rng.randrange(16**12):012x}",
            "tenant": TENANTS[i % len(TENANTS)], "sip_call_id": f"{i}@bench",
            "direction": "inbound" if i % 3 else "outbound",
            "from_number": f"+86138{rng.randrange(10**8):08d}", "to_number": "4001",
            "invite_at": at, "answer_at": at + 3 if answered else None,
            "end_at": at + 60, "disposition": "answered" if answered else rng.choice(
                ["no_answer", "busy", "failed"]),
            "hangup_cause": "", "hangup_side": "", "sip_status": None, "digits": "",
            "recording_path": None, "codec": "PCMA", "flow_id": f"flow{i % 7}",
            "flow_version": 1, "media": {},
            "trace": trace(rng, at) if answered else [],
            "flow_result": {"status": rng.choice(STATUSES), "last_node": rng.choice(
                ["bye", "agent", "ask"]), "steps": 6} if answered else {}}

    insert_calls(url, (row(i) for i in range(rows)), batch_size=10_000)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    path = ROOT / "var" / "bench" / f"dashboard-{args.rows}.sqlite"
    path.parent.mkdir(parents=True, exist_ok=True)
    url = f"sqlite:///{path}"
    if not path.exists():
        print(f"filling {path} with {args.rows} rows")
        fill(url, args.rows)
    end = T0 + 30 * DAY_S
    ops = DashboardOps(CallStatistics(open_database(url)), lambda: None, lambda: end)
    views = {
        "tenant_24h": (DashboardRequest(since=end - DAY_S, until=end), Tenants.one("tenant03")),
        "tenant_30d": (DashboardRequest(since=T0, until=end, bucket="day"),
                       Tenants.one("tenant03")),
        "all_24h": (DashboardRequest(since=end - DAY_S, until=end), Tenants.every()),
        "all_30d": (DashboardRequest(since=T0, until=end, bucket="day"), Tenants.every()),
    }
    size_mb = path.stat().st_size / 1e6
    print(f"{args.rows} rows, SQLite {size_mb:.0f} MB; {args.repeat} runs per view")
    print(f"{'view':<12} {'calls':>8} {'turns':>6} {'p50 ms':>8} {'max ms':>8}")
    for name, (req, tenants) in views.items():
        times, got = [], None
        for _ in range(args.repeat):
            t = time.perf_counter()
            got = ops.calls(req, tenants)
            times.append((time.perf_counter() - t) * 1000)
        assert got is not None
        print(f"{name:<12} {got['totals']['calls']:>8} {got['latency']['turns']:>6} "
              f"{statistics.median(times):>8.0f} {max(times):>8.0f}")


if __name__ == "__main__":
    main()
