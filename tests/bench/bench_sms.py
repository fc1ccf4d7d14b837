"""SMS benchmarks: messages per second through the SMPP path, and hang-up to submit_sm.

1. ``client``: our SMPP client alone (submit_sm -> submit_sm_resp) against the smpp34 SMSC
   simulator running in its own process, per window size.
2. ``service``: the whole sender (request checks, durable outbox on SQLite, dispatcher, SMPP,
   receipts back into the outbox), single-part and 3-part Chinese messages.
3. ``hangup``: real calls (the engine originates to a SIPp callee that answers 486 Busy), an
   ``[sms]`` rule on ``busy``; time from the call's end (``call.ended``) to the SMSC accepting
   the submit_sm.

Run: ``python -m tests.bench.bench_sms`` (about a minute on 2 cores).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

from compliance.service import ComplianceService
from core.bus import BusEvent, EventBus
from core.clock import SystemClock
from notify.content import ContentPolicy
from notify.gateway import SmppGateway, wait_bound
from notify.outbox import Outbox
from notify.service import NotifySettings, SmsRequest, SmsService
from notify.smpp.client import SmppClient, SmppSettings
from notify.smpp.pdu import SubmitSm
from storage import open_database
from tests.integration.sms_stack import WORDS
from tests.netutil import free_port, wait_until
from tests.smsc import SimSmsc

ROOT = Path(__file__).resolve().parents[2]


def start_smsc(port: int, receipts: bool) -> subprocess.Popen[str]:
    args = [sys.executable, "-m", "tests.smsc", str(port)]
    if not receipts:
        args.append("--no-receipts")
    proc = subprocess.Popen(args, cwd=ROOT, stdout=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
    return proc


def cpu_s() -> float:
    t = psutil.Process().cpu_times()
    return t.user + t.system


async def _submit_all(client: SmppClient, n: int, in_flight: int) -> None:
    sem = asyncio.Semaphore(in_flight)
    body = "您好，这是一条测试短信".encode("utf-16-be")

    async def one() -> None:
        async with sem:
            resp = await client.submit(SubmitSm(destination_addr="8613800138000",
                                                data_coding=8, short_message=body))
            assert resp.command_status == 0

    await asyncio.gather(*(one() for _ in range(n)))


async def bench_client(n: int, windows: list[int]) -> None:
    print(f"\n-- SMPP client alone: {n} submit_sm (single part), SMSC in its own process")
    print(f"{'window':>6} {'msg/s':>8} {'CPU ms/msg':>11}")
    for window in windows:
        port = free_port()
        smsc = start_smsc(port, receipts=False)
        client = SmppClient(SmppSettings("127.0.0.1", port, "bench", "pw", window=window),
                            SystemClock())
        client.start()
        await client.wait_bound(5)
        c0, t0 = cpu_s(), time.perf_counter()
        await _submit_all(client, n, window * 2)
        wall, cpu = time.perf_counter() - t0, cpu_s() - c0
        print(f"{window:>6} {n / wall:>8.0f} {cpu / n * 1000:>11.3f}")
        await client.stop()
        smsc.terminate()
        smsc.wait(10)


async def bench_service(n: int, parts: int) -> None:
    """The engine's sender with the SMSC in its own process, so the CPU figure is ours."""
    text = ("您好，您的快递已到达小区驿站，请凭取件码8848领取。" * 10)[: 67 * parts if parts > 1
                                                                   else 60]
    port = free_port()
    smsc = start_smsc(port, receipts=True)
    clock = SystemClock()
    bus = EventBus()
    delivered = 0

    def count(ev: BusEvent) -> None:
        nonlocal delivered
        delivered += ev.topic == "sms.delivered"

    bus.listen("sms.", count)
    with tempfile.TemporaryDirectory() as tmp:
        db = open_database(f"sqlite:///{tmp}/sms.sqlite")
        gateway = SmppGateway(SmppSettings("127.0.0.1", port, "bench", "pw", window=50), clock)
        policy = ContentPolicy(words=lambda tenant: WORDS, allowed_domains=("acme.cn",))
        service = SmsService(
            Outbox(db), gateway, clock, bus=bus, policy=policy,
            settings=NotifySettings(concurrency=50, tenant_rate_per_s=1e9, tenant_burst=10**9),
            compliance=ComplianceService(default_window=None))
        await service.start()
        await wait_bound(gateway, 5)
        c0, t0 = cpu_s(), time.perf_counter()
        for start in range(0, n, 20):  # calls ending 20 at a time, as in a busy campaign
            await asyncio.gather(*(service.send(SmsRequest(
                to=f"1380013{i % 10000:04d}", text=text))
                for i in range(start, min(n, start + 20))))
        t_enq = time.perf_counter() - t0
        await wait_until(lambda: gateway.client.in_flight == 0 and service.outbox.counts().get(
            "queued", 0) == 0, 600, "all submitted")
        t_sub = time.perf_counter() - t0
        await wait_until(lambda: delivered >= n, 600, "all delivered")
        wall, cpu = time.perf_counter() - t0, cpu_s() - c0
        await service.stop()
    smsc.terminate()
    assert smsc.stdout is not None
    accepted = int(smsc.stdout.read().split()[-1])
    smsc.wait(10)
    assert accepted == n * parts, (accepted, n * parts)
    print(f"{n:>6} x {parts} part(s): recorded {n / t_enq:>5.0f} msg/s; all submitted in "
          f"{t_sub:.1f} s ({n * parts / t_sub:>5.0f} PDU/s, {n / t_sub:>5.0f} msg/s); "
          f"all delivered {n / wall:>5.0f} msg/s; our CPU {cpu / n * 1000:.2f} ms/msg")


async def bench_hangup(calls: int) -> None:
    from core.call import Call
    from tests.integration.engine_harness import running_engine
    from tests.sipp import SippServer

    fixtures = ROOT / "tests" / "fixtures" / "sipp"
    sim = SimSmsc(free_port())
    await sim.start()
    rules = [{"name": "missed", "template": "missed", "on": ["busy"], "quiet_hours": ""}]
    templates = [{"id": "missed", "text": "您好，刚才的来电未能接通，稍后再联系您。"}]
    with tempfile.TemporaryDirectory() as tmp_s:
        tmp = Path(tmp_s)
        scenario = tmp / "uas_reject.xml"
        scenario.write_text((fixtures / "uas_reject.xml.tmpl").read_text()
                            .replace("STATUS", "486").replace("REASON", "Busy Here"))
        port = free_port()

        async def never(call: Call) -> None:
            raise AssertionError("not answered")

        env = {
            "IVR_STORAGE__URL": f"sqlite:///{tmp}/ivr.sqlite",
            "IVR_COMPLIANCE__WINDOW_START": "00:00",
            "IVR_COMPLIANCE__WINDOW_END": "23:59:59.999",
            "IVR_SMS__GATEWAY": "smpp", "IVR_SMS__SMPP_PORT": str(sim.port),
            "IVR_SMS__SMPP_SYSTEM_ID": "ivr", "IVR_SMS__RULES": json.dumps(rules),
            "IVR_SMS__TEMPLATES": json.dumps(templates, ensure_ascii=False),
        }
        ends: dict[str, float] = {}
        async with running_engine(tmp, lambda c: never, **env) as engine, SippServer(
                scenario, local_port=port, workdir=tmp, extra=["-m", str(calls)]):
            assert engine.controller is not None
            engine.bus.listen("call.ended", lambda ev: ends.__setitem__(
                str(ev.call_id), float(ev.data["at"])))
            for i in range(calls):
                await engine.controller.originate(f"sip:1380013{i:04d}@127.0.0.1:{port}",
                                                  never)
                await wait_until(lambda i=i: len(sim.accepted) > i, 10, "the SMS")
        await sim.stop()
    ended = sorted(ends.values())
    lat = sorted((a.wall - e) * 1000 for a, e in zip(sim.accepted, ended, strict=True))
    print(f"\n-- hang-up (call.ended) to submit_sm accepted, {calls} busy calls in turn")
    print(f"p50 {statistics.median(lat):.1f} ms  p95 {lat[int(len(lat) * 0.95) - 1]:.1f} ms  "
          f"max {lat[-1]:.1f} ms")


async def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=5000, help="messages for the client bench")
    ap.add_argument("--service-n", type=int, default=2000)
    ap.add_argument("--calls", type=int, default=20)
    args = ap.parse_args()
    await bench_client(args.n, [1, 10, 50])
    print("\n-- the whole sender: SmsService + SQLite outbox + SMPP + receipts (window 50)")
    await bench_service(args.service_n, 1)
    await bench_service(args.service_n // 2, 3)
    await bench_hangup(args.calls)


if __name__ == "__main__":
    asyncio.run(main())
