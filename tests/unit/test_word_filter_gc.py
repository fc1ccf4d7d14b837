"""A compiled word filter is taken out of the garbage collector's full scans (app wiring).

A 100k-term filter is ~1M tracked objects and a full collection over them stops the event
loop for ~350 ms on this box; the engine's start-up ``gc.freeze()`` does not cover filters
compiled on first use or after a word change. Runs in a fresh interpreter: freezing the test
worker's heap would change every other test's garbage collection."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

PROBE = r"""
import gc, json, sys
from app.compliance_setup import word_registry
from app.config import Settings
from compliance.words import Term

settings = Settings.model_validate({"storage": {"url": "sqlite:///" + sys.argv[1]}})
reg = word_registry(settings)
reg._store.store.add_terms([Term(f"词{i:04d}", "custom") for i in range(2000)])

def in_generations(obj):
    return any(o is obj for o in gc.get_objects())

out = {}
before = gc.get_freeze_count()
wf = reg.filter_for("acme")
out["grew"] = gc.get_freeze_count() - before
out["first_in_generations"] = in_generations(wf)
out["first_blocks"] = wf.scan("这里有词0042").blocked
reg._store.store.add_terms([Term("诈骗", "fraud")])
wf2 = reg.filter_for("acme")
out["recompiled"] = wf2 is not wf
out["second_in_generations"] = in_generations(wf2)
out["second_blocks"] = wf2.scan("这是诈骗").blocked
print(json.dumps(out))
"""


def test_each_compiled_filter_is_frozen(tmp_path: Path) -> None:
    run = subprocess.run([sys.executable, "-c", PROBE, str(tmp_path / "ivr.sqlite")],
                         cwd=ROOT, capture_output=True, text=True, timeout=120, check=False)
    assert run.returncode == 0, run.stderr[-2000:]
    out = json.loads(run.stdout.strip().splitlines()[-1])
    assert out["first_blocks"] and out["second_blocks"]
    assert out["recompiled"]
    # ~10 tracked objects per term went to the permanent generation with the first filter
    assert out["grew"] >= 2000
    assert not out["first_in_generations"] and not out["second_in_generations"]
