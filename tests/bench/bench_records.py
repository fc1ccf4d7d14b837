"""Call-record writes: CPU and wall time per write of ``CallRecords.save_many``.

A call is written three times (at INVITE, at answer, at its end: issue 18's durability), in
batches of 50 as the CDR writer drains its queue; the end snapshot carries a 40-entry trace.

    python -m tests.bench.bench_records [--url sqlite:///...|postgresql+psycopg://...] [-n 2000]
"""

from __future__ import annotations

import argparse
import tempfile
import time

from engine.cdr import CallRecord, CallRecords
from storage import open_database
from storage.tenancy import EVERY_TENANT

BATCH = 50


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--url", default="")
    ap.add_argument("-n", type=int, default=2000)
    args = ap.parse_args()
    url = args.url or f"sqlite:///{tempfile.mkdtemp()}/records.sqlite"
    records = CallRecords(open_database(url))
    calls = [CallRecord(sip_call_id=f"{i}@bench", direction="inbound",
                        from_number="13800138000", to_number="4001",
                        disposition="in_progress", invite_at=1.0) for i in range(args.n)]
    trace = [{"kind": "node.enter", "t": 0.1 * k, "data": {"node": f"n{k}"}} for k in range(40)]
    cpu0, wall0 = time.process_time(), time.perf_counter()
    for lo in range(0, args.n, BATCH):
        batch = calls[lo:lo + BATCH]
        records.save_many(batch)
        for r in batch:
            r.answer_at, r.disposition = 2.0, "answered"
        records.save_many(batch)
        for r in batch:
            r.end_at, r.trace = 9.0, trace
        records.save_many(batch)
    cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
    got = records.get(calls[-1].id, tenants=EVERY_TENANT)
    assert got is not None and got.end_at == 9.0 and len(got.trace) == 40
    writes = 3 * args.n
    print(f"{url.split(':')[0]}: {writes} writes in batches of {BATCH}: "
          f"{1000 * cpu / writes:.3f} ms CPU and {1000 * wall / writes:.3f} ms wall per write")


if __name__ == "__main__":
    main()
