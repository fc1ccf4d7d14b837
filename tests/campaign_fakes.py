"""Test doubles for campaign tests that need no network: a dialler that answers on a simulated
call (flows' ``SimulatedCall``) or refuses with a scripted disposition, and a runner built on
a file SQLite database (or the ``db_url`` given: PostgreSQL for several nodes), the real
compliance service and a ``FakeClock``.

Used by unit tests of scheduling (retries, windows, pacing, restart); the SIPp tests in
tests/integration/ use the real engine and a real far end."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from campaigns.contacts import Contact
from campaigns.dialler_lease import DiallerLease
from campaigns.runner import CampaignRunner
from campaigns.shared_pacing import RedisBudgets
from campaigns.spec import CampaignSpec, parse_spec
from campaigns.store import Campaign, CampaignStore
from campaigns.trunks import Trunk
from compliance.caps import CapRule
from compliance.service import ComplianceService
from core.bus import EventBus
from core.call import CallHungUp
from core.clock import FakeClock
from engine.cdr import CallRecord
from flows.services import FlowServices
from flows.simulator import SimInput, SimulatedCall
from flows.validator import compile_flow
from storage import open_database

FIXTURES = Path(__file__).parent / "fixtures" / "campaigns"
# Monday 2026-03-02 10:00 in Shanghai: inside the default 09:00-20:00 window
MONDAY_10AM = datetime(2026, 3, 2, 2, 0, tzinfo=UTC).timestamp()


@dataclass
class Answer:
    """What the far end does on one call."""

    disposition: str = "answered"  # or busy, no_answer, failed, rejected
    cause: str = ""
    status: int | None = None
    ring_s: float = 1.0
    inputs: list[SimInput] = field(default_factory=list)


@dataclass
class Placed:
    now: float
    wall: float
    target: str
    from_user: str
    from_display: str | None
    headers: list[tuple[str, str]]


class FakeDialler:
    def __init__(self, clock: FakeClock, script: Callable[[str, int], Answer] | None = None
                 ) -> None:
        self.clock = clock
        self.script = script or (lambda number, n: Answer())
        self.placed: list[Placed] = []
        self.in_flight = 0
        self.max_in_flight = 0

    def count(self, number: str) -> int:
        return sum(1 for p in self.placed if number in p.target)

    async def originate(self, target: str, app: Any, *, from_user: str,
                        from_display: str | None, headers: Any, ring_timeout_s: float,
                        tenant: str | None) -> CallRecord:
        number = target.removeprefix("sip:").split("@")[0]
        self.placed.append(Placed(self.clock.now(), self.clock.wall(), target, from_user,
                                  from_display, list(headers)))
        nth = self.count(number)
        answer = self.script(number, nth)
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        rec = CallRecord(sip_call_id=f"fake-{len(self.placed)}", direction="outbound",
                         from_number=from_user, to_number=number, tenant=tenant or "default",
                         invite_at=self.clock.wall())
        try:
            await self.clock.sleep(answer.ring_s)
            if answer.disposition != "answered":
                rec.disposition, rec.hangup_cause, rec.sip_status = (
                    answer.disposition, answer.cause or answer.disposition, answer.status)
                rec.end_at = self.clock.wall()
                return rec
            call = SimulatedCall(self.clock, caller=from_user, callee=number,
                                 call_id=rec.id)
            rec.answer_at = self.clock.wall()
            for item in answer.inputs:
                call.feed(item)
            try:
                await app(call)
            except CallHungUp:
                pass
            await call.close()
            rec.disposition = "answered"
            rec.hangup_side = "caller" if call.hangup_reason == "caller" else "engine"
            rec.end_at = self.clock.wall()
            return rec
        finally:
            self.in_flight -= 1


def spec(**overrides: Any) -> CampaignSpec:
    data: dict[str, Any] = {
        "id": "spring", "name": "Spring bills", "tenant": "acme",
        "flow": {"id": "campaign_hello"}, "pacing": {"calls_per_s": 10, "max_concurrent": 5},
        "contacts": {"variables": {"name": ["姓名"], "amount": ["金额"]}},
    }
    data.update(overrides)
    return parse_spec(data)


class Rig:
    """A runner with everything real except the dialler and the clock."""

    def __init__(self, tmp: Path, *, script: Callable[[str, int], Answer] | None = None,
                 cap_rules: list[CapRule] | None = None, wall: float = MONDAY_10AM,
                 node: str = "node-a", db_name: str = "c.sqlite", poll_s: float = 0.5,
                 db_url: str | None = None) -> None:
        self.poll_s = poll_s
        self.clock = FakeClock(wall_start=wall)
        self.db = open_database(db_url or f"sqlite:///{tmp / db_name}")
        self.store = CampaignStore(self.db)
        self.compliance = ComplianceService(cap_rules=cap_rules or [])
        self.bus = EventBus()
        self.events = self.bus.subscribe("campaign.", maxsize=100_000)
        self.dialler = FakeDialler(self.clock, script)
        self.flow = compile_flow(json.loads((FIXTURES / "hello_flow.json").read_text()))
        self.node = node
        self.runner = self.make_runner()
        self.others: list[CampaignRunner] = []  # more nodes on this database (settle waits)

    def make_runner(self, node: str | None = None, shared: RedisBudgets | None = None,
                    lease: DiallerLease | None = None) -> CampaignRunner:
        return CampaignRunner(
            self.store, self.dialler, self.compliance, self.clock, self.bus,
            node=node or self.node, trunks=[Trunk("carrier", "sip:{number}@127.0.0.1:5099")],
            flows=lambda tenant, fid, version: self.flow,
            services=lambda tenant, cid: FlowServices(), poll_s=self.poll_s, shared=shared,
            lease=lease)

    def create(self, numbers: list[str], the_spec: CampaignSpec | None = None,
               state: str = "running") -> Campaign:
        contacts = [Contact(n, n, i + 2, {"name": f"客户{i}", "amount": str(100 + i)})
                    for i, n in enumerate(numbers)]
        c = self.store.create(the_spec or spec(), contacts, flow_id="campaign_hello",
                              flow_version=1, now=self.clock.wall())
        if state != "draft":
            self.store.set_state(c.id, state, self.clock.wall())
        return c

    async def settle(self) -> None:
        """Let the runner finish what it does without the clock moving (database answers,
        tasks it started): until a whole round of loop turns started no database call (three
        rounds were not enough on a loaded box: a claim still in its thread when the clock
        moved made a call start late)."""
        def busy() -> int:
            return self.runner.db_busy + sum(r.db_busy for r in self.others)

        quiet = 0
        while quiet < 3:
            was_busy = busy()
            while busy():  # noqa: ASYNC110 - a worker thread's answer, no event
                await asyncio.sleep(0.0005)
            for _ in range(20):
                await asyncio.sleep(0)
            quiet = quiet + 1 if not was_busy and not busy() else 0

    async def run_until(self, cond: Callable[[], bool], *, step_s: float = 60.0,
                        limit_s: float = 3600.0) -> None:
        """Move the fake clock to its next timer (at most ``step_s`` at a time), each time
        after the runner settled, until ``cond`` holds: timers fire at their exact time."""
        start = self.clock.now()
        while True:
            await self.settle()
            if cond():
                return
            if self.clock.now() - start > limit_s:
                raise AssertionError(f"not reached within {limit_s} s of fake time")
            due = [d for d, _, item in self.clock._due
                   if not (item.done() if isinstance(item, asyncio.Future) else item.cancelled)]
            nxt = min(due) if due else self.clock.now() + step_s
            await self.clock.advance(min(max(nxt - self.clock.now(), 0.0), step_s))

    def state(self, campaign_id: str = "spring") -> str:
        return self.store.get(campaign_id).state
