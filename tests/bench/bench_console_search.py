"""Console API: call-record search over 1M calls (issue 13).

Fills a SQLite database with ``--rows`` call records (20 tenants, 30 days, realistic numbers,
flows and dispositions; the database is kept in ``var/bench/`` and reused), starts the real
console server on loopback, and sends ``--requests`` authenticated search requests from
``--concurrency`` clients, a mix of what the console's calls page asks:

* ``newest``: a tenant's newest 50 calls
* ``page5``: the fifth page of the same, following cursors
* ``number``: every call from or to one number
* ``flow_disp``: one flow's unanswered calls
* ``day``: one day's calls
* ``staff``: every tenant's newest 50 (``tenant=*``, operator staff)

Reports requests/s and latency p50/p99 per kind and overall (client-side, full HTTP round
trip including authentication and JSON), and the database size.

    python -m tests.bench.bench_console_search [--rows 1000000] [--requests 3000]
        [--concurrency 8]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import statistics
import sys
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import psutil
from sqlalchemy import insert

from console.identity import IdentityError
from engine.cdr import CallRow
from storage.db import open_database
from tests.console_harness import console_settings, running_console

ROOT = Path(__file__).resolve().parents[2]
TENANTS = [f"tenant{i:02d}" for i in range(20)]
DISPOSITIONS = ["answered"] * 7 + ["no_answer", "busy", "failed"]
DAY_S = 86400
T0 = 1_760_000_000.0


def fill(url: str, rows: int) -> None:
    rng = random.Random(13)

    def row(i: int) -> dict[str, object]:
        tenant = TENANTS[i % len(TENANTS)]
        caller = f"+86138{rng.randrange(10**8):08d}"
        return {
            "id": f"{i:08d}-0000-4000-8000-{rng.randrange(16**12):012x}",
            "tenant": tenant, "sip_call_id": f"{i}@bench", "direction": "inbound",
            "from_number": caller, "to_number": f"400{i % 50:02d}",
            "invite_at": T0 + i * (30 * DAY_S / rows), "answer_at": None,
            "end_at": None, "disposition": rng.choice(DISPOSITIONS), "hangup_cause": "",
            "hangup_side": "", "sip_status": None, "digits": "", "recording_path": None,
            "codec": "PCMU", "flow_id": f"flow{i % 7}", "flow_version": 1,
            "trace": [], "media": {}, "flow_result": {}}

    insert_calls(url, (row(i) for i in range(rows)))


def insert_calls(url: str, rows: Iterable[dict[str, object]], batch_size: int = 20_000) -> None:
    """Call rows straight into the table in batches (progress on stdout), then ANALYZE."""
    db = open_database(url)
    batch: list[dict[str, object]] = []
    start = time.monotonic()
    done = 0
    with db.engine.begin() as conn:
        for r in rows:
            batch.append(r)
            done += 1
            if len(batch) == batch_size:
                conn.execute(insert(CallRow), batch)
                batch.clear()
                print(f"\r  {done:>9} rows ({time.monotonic() - start:.0f} s)", end="",
                      flush=True)
        if batch:
            conn.execute(insert(CallRow), batch)
    with db.engine.begin() as conn:
        conn.exec_driver_sql("ANALYZE")
    print()


async def bench(url: str, rows: int, requests: int, concurrency: int, tmp: Path, *,
                size_mb: float) -> None:
    settings = console_settings(tmp, IVR_STORAGE__URL=url)
    async with running_console(tmp, settings=settings) as con:
        try:
            con.add_user("bench-ops", "ops")
        except IdentityError:  # a kept database: the user is there from last time
            pass
        token = con.token("bench-ops")
        rng = random.Random(7)
        with open_database(url).engine.connect() as conn:
            numbers = [r[0] for r in conn.exec_driver_sql(
                "SELECT from_number FROM calls WHERE tenant = 'tenant03' LIMIT 200")]

        def request() -> list[object]:
            kind = rng.choice(["newest", "page5", "number", "flow_disp", "day", "staff"])
            t = rng.choice(TENANTS)
            if kind in ("newest", "page5"):
                return [kind, f"/api/calls?tenant={t}&limit=50", 5 if kind == "page5" else 1]
            if kind == "number":
                return [kind, f"/api/calls?tenant=tenant03&number={rng.choice(numbers)}", 1]
            if kind == "flow_disp":
                return [kind, f"/api/calls?tenant={t}&flow_id=flow{rng.randrange(7)}"
                              "&disposition=no_answer&limit=50", 1]
            if kind == "day":
                since = T0 + rng.randrange(29) * DAY_S
                return [kind, f"/api/calls?tenant={t}&since={since}&until={since + DAY_S}"
                              "&limit=50", 1]
            return [kind, "/api/calls?tenant=*&limit=50", 1]

        job = {"url": con.url, "token": token, "concurrency": concurrency,
               "requests": [["warm", "/api/calls?tenant=tenant00", 1]] * 20}
        await _load(job)  # warm the caches
        job["requests"] = [request() for _ in range(requests)]
        me = psutil.Process()
        cpu0 = sum(me.cpu_times()[:2])
        result = await _load(job)
        cpu = sum(me.cpu_times()[:2]) - cpu0
    times: dict[str, list[float]] = result["times"]
    wall = result["wall_s"]
    http = sum(len(ts) * (5 if kind == "page5" else 1) for kind, ts in times.items())
    print(f"{rows:,} call rows, {len(TENANTS)} tenants, SQLite {size_mb:.0f} MB; {requests} "
          f"searches ({http} HTTP requests) from {concurrency} clients in {wall:.1f} s = "
          f"{requests / wall:.0f} searches/s, {http / wall:.0f} HTTP requests/s; console CPU "
          f"{cpu * 1000 / http:.1f} ms per HTTP request (load average "
          f"{os.getloadavg()[0]:.1f})")
    print(f"{'kind':10} {'n':>5} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8}")
    every: list[float] = []
    for kind, ts in sorted(times.items()):
        every += ts
        print(f"{kind:10} {len(ts):>5} {statistics.median(ts):>8.1f} "
              f"{_p99(ts):>8.1f} {max(ts):>8.1f}")
    print(f"{'all':10} {len(every):>5} {statistics.median(every):>8.1f} {_p99(every):>8.1f} "
          f"{max(every):>8.1f}   (page5 = five requests following cursors)")


async def _load(job: dict[str, object]) -> dict[str, Any]:
    """Run the requests from a separate process (tests.bench.http_load)."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "tests.bench.http_load", stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE)
    out, _ = await proc.communicate(json.dumps(job).encode())
    if proc.returncode:
        raise RuntimeError("http_load failed")
    return dict(json.loads(out))


def _p99(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--requests", type=int, default=3000)
    ap.add_argument("--concurrency", type=int, default=8)
    args = ap.parse_args()
    work = ROOT / "var" / "bench"
    work.mkdir(parents=True, exist_ok=True)
    db_path = work / f"calls-{args.rows}.sqlite"
    url = f"sqlite:///{db_path}"
    if not db_path.exists():
        print(f"filling {db_path} with {args.rows:,} call records (once; kept for next time)")
        try:
            fill(url, args.rows)
        except BaseException:
            db_path.unlink(missing_ok=True)
            raise
    asyncio.run(bench(url, args.rows, args.requests, args.concurrency, work, size_mb=
                      db_path.stat().st_size / 2**20))


if __name__ == "__main__":
    sys.exit(main())
