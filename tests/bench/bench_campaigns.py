"""Campaign dial rate, and answering-machine detection accuracy and decision time.

**Dial rate**: ``ivr run`` (a separate process, as deployed) dials a campaign of ``--contacts``
numbers at ``--rate`` calls/s through one trunk to a SIPp UAS that behaves by the number's last
digit (tests/campaign_sipp.py, silent answers: 1 busy, 2 480, 3 503, 4 rings out, others
answer and the flow hangs up at once). Reported: the achieved dial rate (attempts over the span
of their start times), calls at once, INVITE->answer p50/p99 from the engine's call records,
the engine's CPU per call (in all, and from the first dial on: start-up loads models and
renders prompts), and whether every contact got the disposition its answerer implies.

**AMD**: the labelled set of real and synthesized answers (tests/amd_corpus.py) through the
detector as a call feeds it: the confusion matrix, decision time per class, CPU per frame.

    python -m tests.bench.bench_campaigns [--contacts 1000] [--rate 50] [--no-amd]
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sqlite3
import subprocess
import tempfile
import time
from collections import Counter
from pathlib import Path

from tests.campaign_sipp import engine_env, ivr, max_overlap, scenario, start_engine
from tests.netutil import free_port
from tests.sipp import _command

EXPECTED = {"1": "busy", "2": "no_answer", "3": "failed", "4": "no_answer"}
HANGUP_FLOW = {"format": 1, "id": "bench_hangup", "name": "Bench: hang up at once",
               "nodes": [{"id": "start", "type": "start"},
                         {"id": "bye", "type": "hangup"}],
               "edges": [{"from": "start", "port": "next", "to": "bye"}]}


def percentile(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    values = sorted(values)
    return values[min(len(values) - 1, max(0, round(p / 100 * (len(values) - 1))))]


def cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def dial_rate(contacts: int, rate: float, concurrent: int) -> dict[str, object]:
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        uas_dir = work / "uas"
        uas_dir.mkdir()
        uas_port = free_port()
        env = engine_env(work, uas_port, IVR_COMPLIANCE__WINDOW_START="00:00",
                         IVR_COMPLIANCE__WINDOW_END="23:59:59.999")
        (work / "flow.json").write_text(json.dumps(HANGUP_FLOW))
        numbers = [f"+86138{i:08d}" for i in range(contacts)]
        (work / "contacts.csv").write_text("number\n" + "\n".join(numbers) + "\n")
        spec = {"id": "bench", "name": "bench", "flow": {"file": str(work / "flow.json")},
                "ring_timeout_s": 2, "schedule": {"window_start": "00:00",
                                                  "window_end": "23:59"},
                "pacing": {"calls_per_s": rate, "max_concurrent": concurrent},
                "retry": {"max_attempts": 1}}
        (work / "spec.json").write_text(json.dumps(spec))
        r = ivr(env, "campaign", "create", str(work / "spec.json"), "--contacts",
                str(work / "contacts.csv"), "--start")
        assert r.returncode == 0, r.stderr
        sipp = subprocess.Popen(_command(None, scenario(uas_dir, audio=False), uas_port,
                                         ["-max_socket", "5000"]),
                                cwd=uas_dir, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
        engine = start_engine(env, work / "engine.log")
        db = sqlite3.connect(f"{work}/ivr.sqlite", timeout=30)
        try:
            t0 = time.monotonic()
            at_first_dial: float | None = None  # start-up (imports, models, prompts) before
            while time.monotonic() - t0 < contacts / rate * 4 + 120:
                if at_first_dial is None and db.execute(
                        "SELECT 1 FROM campaign_attempts LIMIT 1").fetchone():
                    at_first_dial = cpu_s(engine.pid)
                state = db.execute("SELECT state FROM campaigns WHERE id='bench'").fetchone()
                if state and state[0] == "finished":
                    break
                time.sleep(0.05 if at_first_dial is None else 0.5)
            used = cpu_s(engine.pid)
            engine.send_signal(signal.SIGTERM)
            engine.wait(60)
        finally:
            if engine.poll() is None:
                engine.kill()
            sipp.terminate()
            sipp.wait(10)
        attempts = db.execute("SELECT number, disposition, started_at, ended_at "
                              "FROM campaign_attempts").fetchall()
        calls = db.execute("SELECT invite_at, answer_at FROM calls WHERE direction='outbound' "
                           "AND answer_at IS NOT NULL").fetchall()
    starts = sorted(a[2] for a in attempts)
    span = (starts[-1] - starts[0]) if len(starts) > 1 else 0.0
    wrong = [(n, d) for n, d, _, _ in attempts if d != EXPECTED.get(n[-1], "answered")]
    setup_ms = [(b - a) * 1000 for a, b in calls]
    return {
        "contacts": contacts, "target_rate": rate, "attempts": len(attempts),
        "achieved_rate": round((len(starts) - 1) / span, 1) if span else None,
        "span_s": round(span, 1), "max_at_once": max_overlap([(a[2], a[3] or a[2])
                                                              for a in attempts]),
        "dispositions": dict(Counter(a[1] for a in attempts)), "wrong": len(wrong),
        "invite_to_answer_ms_p50_p99": (round(percentile(setup_ms, 50), 1),
                                        round(percentile(setup_ms, 99), 1)),
        "engine_cpu_ms_per_call": round(used / max(len(attempts), 1) * 1000, 2),
        "engine_startup_cpu_s": round(at_first_dial or 0.0, 2),
        "engine_cpu_ms_per_call_dialling": round(
            (used - (at_first_dial or 0.0)) / max(len(attempts), 1) * 1000, 2),
    }


def amd() -> None:
    from asr.vad import make_vad
    from tests.amd_corpus import build, evaluate

    items = build()
    ev = evaluate(items, lambda: make_vad("webrtc:2"))
    print(f"AMD: {ev.total} answers, accuracy {ev.accuracy:.1%}")
    print(ev.table())
    for label, times in sorted(ev.decision_ms.items()):
        print(f"  decision {label}: p50 {percentile(times, 50):.0f} ms, "
              f"p90 {percentile(times, 90):.0f} ms")
    print(f"  beeps missed {ev.beeps_missed}; beep end error p50 "
          f"{percentile([abs(e) for e in ev.beep_errors_ms], 50):.0f} ms; "
          f"CPU {ev.cpu_us_per_frame:.1f} us per 20 ms frame")
    for name, truth, got in ev.wrong:
        print(f"  wrong: {name}: {truth} -> {got}")


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--contacts", type=int, default=1000)
    p.add_argument("--rate", type=str, default="50", help="comma-separated calls/s")
    p.add_argument("--concurrent", type=int, default=200)
    p.add_argument("--no-amd", action="store_true")
    p.add_argument("--amd-only", action="store_true")
    a = p.parse_args()
    for rate in ([] if a.amd_only else (float(r) for r in a.rate.split(","))):
        print(json.dumps(dial_rate(a.contacts, rate, a.concurrent), ensure_ascii=False),
              flush=True)
    if not a.no_amd:
        amd()


if __name__ == "__main__":
    main()
