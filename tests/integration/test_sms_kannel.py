"""Kannel (Debian's bearerbox + smsbox) as the real gateway: its fake SMSC with ``fakesmsc``
as the far end, and Kannel as an SMPP client of the smpp34 SMSC simulator (which shows the
simulator speaks SMPP to a client that is not ours). Receipts come back to our dlr-url, replies
to our sms-service URL."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path

import pytest

from compliance.lists import ListKind, Scope
from compliance.service import ComplianceService
from core.bus import BusEvent, EventBus
from core.clock import SystemClock
from notify.callbacks import CallbackServer
from notify.content import ContentPolicy
from notify.encoding import parse_concat_udh
from notify.kannel import KannelGateway
from notify.outbox import Outbox
from notify.service import NotifySettings, SmsRequest, SmsService
from storage import open_database
from tests.kannel import PASSWORD, USERNAME, Kannel, kannel_installed, listen_port, unquote
from tests.netutil import free_port, wait_until
from tests.smsc import SimSmsc, SmscScript

pytestmark = [pytest.mark.kannel, pytest.mark.xdist_group("kannel"),
              pytest.mark.skipif(not kannel_installed(), reason="kannel is not installed")]

LONG = ("【Acme】您好！您预约的维修服务已确认：11月30日下午3点，"
        "工程师王师傅（138-0013-8000）将上门。"
        "如需改期请回复1，取消请回复2，退订回TD。感谢您选择我们，祝您生活愉快😀") * 2


@asynccontextmanager
async def kannel_stack(tmp_path: Path, smpp_port: int | None = None
                       ) -> AsyncIterator[tuple[SmsService, Kannel, list[BusEvent]]]:
    cb_port = listen_port()
    kannel = Kannel(tmp_path / "kannel", cb_port, smpp_port=smpp_port)
    await kannel.start()
    gateway = KannelGateway(kannel.sendsms_url, USERNAME, PASSWORD,
                            callback_base=f"http://127.0.0.1:{cb_port}")
    callbacks = CallbackServer(gateway)
    await callbacks.start("127.0.0.1", cb_port)
    bus = EventBus()
    events: list[BusEvent] = []
    bus.listen("sms.", events.append)
    service = SmsService(
        Outbox(open_database(f"sqlite:///{tmp_path}/sms.sqlite")), gateway, SystemClock(),
        settings=NotifySettings(poll_s=0.2, retry_base_s=0.2),
        compliance=ComplianceService(default_window=None), policy=ContentPolicy(), bus=bus)
    await service.start()
    try:
        yield service, kannel, events
    finally:
        await service.stop()
        await callbacks.stop()
        await kannel.stop()


def status_of(events: list[BusEvent], message_id: str) -> str:
    topics = [e.topic for e in events if e.data.get("id") == message_id]
    return topics[-1].removeprefix("sms.") if topics else ""


def reassemble(received: list[tuple[str, str, str, str]]) -> list[tuple[str, str]]:
    """fakesmsc prints ``udh <udh> data <ucs2>`` (URL-encoded) per part."""
    out, partial = [], {}
    for _, receiver, kind, data in received:
        if kind != "udh":
            out.append((receiver, unquote(data.split(" ", 1)[-1]).decode("utf-16-be")))
            continue
        udh, _, payload = data.partition(" data ")
        ref, _ = parse_concat_udh(unquote(udh))
        assert ref is not None
        got = partial.setdefault((receiver, ref[0]), {})
        got[ref[2]] = unquote(payload)
        if len(got) == ref[1]:
            text = b"".join(got[i] for i in sorted(got)).decode("utf-16-be")
            out.append((receiver, text))
    return out


async def test_long_chinese_message_through_kannel_arrives_intact(tmp_path: Path) -> None:
    async with kannel_stack(tmp_path) as (service, kannel, events):
        rec = await service.send(SmsRequest(to="13800138000", text=LONG))
        assert rec.parts == 3
        await wait_until(lambda: status_of(events, rec.id) == "delivered", 15,
                         "the receipt through the dlr-url")
        await wait_until(lambda: len(kannel.received()) == 3, 5, "three parts at fakesmsc")
        assert reassemble(kannel.received()) == [("+8613800138000", LONG)]
        final = await service.get(rec.id)
        assert final is not None and final.parts_delivered == 3


async def test_opt_out_reply_from_the_far_end(tmp_path: Path) -> None:
    async with kannel_stack(tmp_path) as (service, kannel, events):
        rec = await service.send(SmsRequest(to="13800138000", text="会员活动通知", tenant="acme"))
        await wait_until(lambda: status_of(events, rec.id) == "delivered", 15, "delivered")
        # the handset answers 退订 (UCS-2, URL-encoded as fakesmsc wants it)
        await kannel.send_mo("+8613800138000 10690000 ucs2 %90%00%8B%A2")
        await wait_until(lambda: any(e.topic == "sms.opt_out" for e in events), 15,
                         "the reply through the sms-service get-url")
        assert service.compliance is not None
        entries = await service.compliance.lists.match(
            ListKind.BLACK, "+8613800138000", Scope("acme").chain(), datetime.now(UTC))
        assert [e.source for e in entries] == ["sms reply"]


async def test_kannel_as_an_smpp_client_of_the_simulator(tmp_path: Path) -> None:
    """Kannel binds to the smpp34 SMSC, submits our long message (split by Kannel) and
    relays the SMSC's receipts back to us: the simulator speaks real SMPP."""
    # receipts half a second after the submit, as from a handset: Kannel records a part's
    # submit only once it has read the SMSC's answer, and drops a receipt that overtakes that
    # ("DLR ... not found" in a CI run, the message then never delivered)
    sim = SimSmsc(free_port(), SmscScript(receipt_delay_s=0.5))
    await sim.start()
    try:
        async with kannel_stack(tmp_path, smpp_port=sim.port) as (service, kannel, events):
            await wait_until(lambda: sim.binds >= 1, 15, "Kannel's bind to the simulator")
            rec = await service.send(SmsRequest(to="13800138000", text=LONG))
            try:  # three parts, three receipts, each a Kannel DLR lookup and an HTTP call:
                # seconds on a loaded 2-core box (20 s was once not enough)
                await wait_until(lambda: status_of(events, rec.id) == "delivered", 45,
                                 "the SMSC's receipt through Kannel")
            except AssertionError as e:
                raise AssertionError(
                    f"{e}; accepted {len(sim.accepted)}, sessions {len(sim.sessions)}, "
                    f"events {[ev.topic for ev in events]}\n{kannel.logs()[-3000:]}") from None
            # Kannel asks a receipt for one part of a split message only (the first, seen
            # here), so "delivered" can come back before the last part reaches the SMSC
            await wait_until(lambda: len(sim.accepted) >= 3, 15, "all three parts at the SMSC")
            assert sim.messages() == [("+8613800138000", LONG)] or sim.messages() == [
                ("8613800138000", LONG)]
            assert len(sim.accepted) == 3
    finally:
        await sim.stop()
