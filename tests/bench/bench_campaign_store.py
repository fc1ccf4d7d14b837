"""The campaign store's per-contact database work: CPU per contact for what the dialler does
to every contact it dials (due query in batches, claim, finish with the outcome).

    python -m tests.bench.bench_campaign_store [-n 2000] [--url sqlite:///...]
"""

from __future__ import annotations

import argparse
import tempfile
import time

from campaigns.contacts import Contact
from campaigns.store import CampaignStore
from storage import open_database
from tests.campaign_fakes import spec

HOPPER = 50


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("-n", type=int, default=2000)
    ap.add_argument("--url", default="")
    args = ap.parse_args()
    url = args.url or f"sqlite:///{tempfile.mkdtemp()}/campaigns.sqlite"
    store = CampaignStore(open_database(url))
    contacts = [Contact(f"+86138{i:08d}", f"138{i:08d}", i + 2,
                        {"name": f"客户{i}", "amount": str(i)}) for i in range(args.n)]
    c = store.create(spec(), contacts, flow_id="f", flow_version=1, now=1.0)
    store.set_state(c.id, "running", 1.0)
    cpu0, wall0 = time.process_time(), time.perf_counter()
    done = 0
    while True:
        due = store.due_contacts(c.id, 10.0, HOPPER)
        if not due:
            break
        for d in due:
            claim = store.claim(c.id, d.id, node="bench", caller_id="", trunk="t", now=2.0)
            assert claim is not None
            store.finish_attempt(claim.attempt_id, outcome={"disposition": "answered",
                                                            "duration_s": 3.0},
                                 disposition="answered", state="done", next_at=None,
                                 reason="", now=3.0, result={"confirmed": "1"})
            done += 1
    cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
    assert done == args.n and store.contact_counts(c.id).get("done") == args.n
    print(f"{url.split(':')[0]}: {done} contacts due -> claimed -> finished: "
          f"{1000 * cpu / done:.2f} ms CPU and {1000 * wall / done:.2f} ms wall per contact")


if __name__ == "__main__":
    main()
