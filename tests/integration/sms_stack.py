"""The SMS service wired as the engine wires it (outbox on SQLite, SMPP gateway, compliance,
word filter, bus) against the smpp34 SMSC simulator, for the integration tests and the bench."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from compliance.caps import CapRule
from compliance.service import ComplianceService
from compliance.words import Term, WordFilter
from core.bus import BusEvent, EventBus
from core.clock import SystemClock
from notify.content import ContentPolicy, TemplateStore
from notify.gateway import SmppGateway, wait_bound
from notify.outbox import Outbox
from notify.service import NotifySettings, SmsService
from notify.smpp.client import SmppSettings
from storage import open_database
from tests.netutil import free_port
from tests.smsc import SimSmsc, SmscScript

WORDS = WordFilter([Term("发票", "fraud"), Term("赌博", "fraud")])


@dataclass
class Stack:
    service: SmsService
    sim: SimSmsc
    outbox: Outbox
    bus: EventBus
    compliance: ComplianceService
    events: list[BusEvent] = field(default_factory=list)
    latest: dict[str, str] = field(default_factory=dict)
    finished: int = 0  # messages that reached delivered

    def record(self, ev: BusEvent) -> None:
        self.events.append(ev)
        if "id" in ev.data:  # sms.opt_out names a number, not a message
            self.latest[ev.data["id"]] = ev.topic.removeprefix("sms.")
            self.finished += ev.topic == "sms.delivered"

    def statuses(self) -> dict[str, str]:
        """message id -> its latest status as published on the bus."""
        return self.latest


@asynccontextmanager
async def sms_stack(tmp_path: Path, script: SmscScript | None = None, *, window: int = 10,
                    cap_rules: list[CapRule] | None = None, start_sim: bool = True,
                    **settings: Any) -> AsyncIterator[Stack]:
    clock = SystemClock()
    port = free_port()
    sim = SimSmsc(port, script or SmscScript())
    if start_sim:
        await sim.start()
    db = open_database(f"sqlite:///{tmp_path}/sms.sqlite")
    bus = EventBus()
    compliance = ComplianceService(cap_rules=cap_rules or [], default_window=None)
    policy = ContentPolicy(words=lambda tenant: WORDS, allowed_domains=("acme.cn",))
    gateway = SmppGateway(SmppSettings("127.0.0.1", port, "ivr", "secret", window=window,
                                       reconnect_min_s=0.05, reconnect_max_s=0.5,
                                       response_timeout_s=5.0), clock,
                           bind_timeout_s=float(settings.pop("bind_timeout_s", 5.0)))
    base = dict(retry_base_s=0.05, retry_max_s=0.5, throttle_base_s=0.05,
                throttle_max_s=1.0, poll_s=0.2)
    base.update(settings)
    service = SmsService(Outbox(db), gateway, clock, settings=NotifySettings(**base),
                         compliance=compliance, policy=policy,
                         templates=TemplateStore(db, policy), bus=bus)
    stack = Stack(service, sim, service.outbox, bus, compliance)
    bus.listen("sms.", stack.record)
    await service.start()
    if start_sim:
        await wait_bound(gateway, 5.0)
    try:
        yield stack
    finally:
        await service.stop()
        await sim.stop()
