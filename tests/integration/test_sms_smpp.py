"""The SMS sender against a real SMPP peer (the smpp34 SMSC simulator; Kannel binds to the same
simulator in test_sms_kannel.py): long Chinese messages, receipts, throttling, a dropped
connection mid-window, replies that opt out, content and caps that stop a message."""

from __future__ import annotations

from pathlib import Path

import smpp34

from compliance.caps import CapRule
from compliance.lists import ListKind, Scope
from notify.content import SmsTemplate
from notify.service import SmsRequest
from tests.integration.sms_stack import sms_stack
from tests.netutil import wait_until
from tests.smsc import ESM_UDHI, SmscScript

LONG = ("【Acme银行】尊敬的客户，您尾号8848的账户于11月30日14:05完成一笔转账，金额¥12,345.67元。"
        "如非本人操作，请立即致电95588冻结账户😀。回复TD退订。") * 2


async def test_long_chinese_message_arrives_reassembled_and_intact(tmp_path: Path) -> None:
    async with sms_stack(tmp_path) as st:
        rec = await st.service.send(SmsRequest(to="13800138000", text=LONG, tenant="acme"))
        assert rec.status == "queued" and rec.coding == "ucs2" and rec.parts == 3
        await wait_until(lambda: st.statuses().get(rec.id) == "delivered", 10, "delivered")
        assert st.sim.messages() == [("8613800138000", LONG)]
        parts = st.sim.accepted
        assert len(parts) == 3 and all(p.esm_class & ESM_UDHI for p in parts)
        assert {p.data_coding for p in parts} == {8} and all(len(p.short_message) <= 140
                                                             for p in parts)
        assert len({p.short_message[3] for p in parts}) == 1  # one concatenation reference
        final = await st.service.get(rec.id)
        assert final is not None and final.parts_delivered == 3 and final.submitted_at


async def test_receipts_update_the_status(tmp_path: Path) -> None:
    async with sms_stack(tmp_path, SmscScript(receipt_stat="UNDELIV")) as st:
        rec = await st.service.send(SmsRequest(to="13800138000", text="Your code is 4321"))
        await wait_until(lambda: st.statuses().get(rec.id) == "failed", 10, "failed receipt")
        final = await st.service.get(rec.id)
        assert final is not None and final.coding == "gsm7" and "UNDELIV" in final.reason
        topics = [e.topic for e in st.events if e.data.get("id") == rec.id]
        # sms.submitted is skipped when the receipt overtakes the mark (it stands, final)
        assert topics in (["sms.queued", "sms.submitted", "sms.failed"],
                          ["sms.queued", "sms.failed"])


async def test_throttled_gateway_slows_the_sender_without_losing(tmp_path: Path) -> None:
    async with sms_stack(tmp_path, SmscScript(max_per_s=25), concurrency=20) as st:
        ids = [(await st.service.send(SmsRequest(to=f"1380013{i:04d}", text=f"消息{i}"))).id
               for i in range(80)]
        await wait_until(lambda: all(st.statuses().get(i) == "delivered" for i in ids), 30,
                         "all delivered")
        texts = sorted(t for _, t in st.sim.messages())
        assert texts == sorted(f"消息{i}" for i in range(80)) and not st.sim.duplicates()
        assert st.sim.throttled > 0
        # Backing off: a sender that retried at once would be refused hundreds of times.
        assert st.sim.throttled < 80, st.sim.throttled


async def test_connection_dropped_mid_window_loses_and_duplicates_nothing(
        tmp_path: Path) -> None:
    """The SMSC accepts 15, then leaves the next submits unanswered; with 5 of them in the
    window the connection is cut (RST through the relay). The unanswered ones were never
    accepted and must be sent again after the re-bind; the accepted ones must not.

    The cut comes once the client has every answer the SMSC sent (its 15 messages are
    recorded as submitted): an answer lost on the wire is indistinguishable from none, and
    SMPP then leaves a duplicate possible whatever the client does (docs/sms.md)."""
    script = SmscScript(hold_after=15)
    async with sms_stack(tmp_path, script, window=10, concurrency=20) as st:
        ids = [(await st.service.send(SmsRequest(to="13800138000", text=f"第{i}条"))).id
               for i in range(40)]

        def answered_and_held() -> bool:
            done = sum(1 for i in ids if st.statuses().get(i) in ("submitted", "delivered"))
            return st.sim.held >= 5 and done >= 15

        await wait_until(answered_and_held, 10, "15 answered, 5 in the window")
        st.sim.drop()
        await wait_until(lambda: all(st.statuses().get(i) == "delivered" for i in ids), 30,
                         "all delivered")
        assert st.sim.dropped == 1 and st.sim.binds == 2
        assert st.sim.submits_seen > 40  # the held ones came again
        assert sorted(t for _, t in st.sim.messages()) == sorted(f"第{i}条" for i in range(40))
        assert not st.sim.duplicates()
        assert st.service.gateway.client.binds == 2  # type: ignore[attr-defined]


async def test_a_gateway_down_at_first_gets_the_messages_once_it_is_up(tmp_path: Path) -> None:
    async with sms_stack(tmp_path, start_sim=False, bind_timeout_s=0.2) as st:
        rec = await st.service.send(SmsRequest(to="13800138000", text="等待网关"))
        await wait_until(lambda: (st.outbox.get(rec.id) or rec).attempts >= 2, 10,
                         "a retry while the SMSC is down")
        await st.sim.start()
        await wait_until(lambda: st.statuses().get(rec.id) == "delivered", 15, "delivered")
        assert st.sim.messages() == [("8613800138000", "等待网关")]


async def test_opt_out_reply_blacklists_the_number(tmp_path: Path) -> None:
    async with sms_stack(tmp_path) as st:
        first = await st.service.send(SmsRequest(to="13800138000", text="活动通知",
                                                 tenant="acme"))
        await wait_until(lambda: st.statuses().get(first.id) == "delivered", 10, "delivered")
        (esme,) = st.sim.sessions.values()
        resp = await esme.deliver_sm("10690000", "退订".encode("utf-16-be"),
                                     source_addr="8613800138000", source_addr_ton=1,
                                     data_coding=8)
        assert resp.is_success
        await wait_until(lambda: any(e.topic == "sms.opt_out" for e in st.events), 5,
                         "opt-out")
        entries = await st.compliance.lists.match(
            ListKind.BLACK, "+8613800138000", Scope("acme").chain(), first_at())
        assert entries and entries[0].source == "sms reply"
        second = await st.service.send(SmsRequest(to="13800138000", text="再次通知",
                                                  tenant="acme"))
        await wait_until(lambda: st.statuses().get(second.id) == "refused", 10, "refused")
        final = await st.service.get(second.id)
        assert final is not None and "blacklisted" in final.reason
        assert [t for _, t in st.sim.messages()] == ["活动通知"]


def first_at():  # type: ignore[no-untyped-def]
    from datetime import UTC, datetime

    return datetime.now(UTC)


async def test_blocked_word_in_a_variable_stops_the_message(tmp_path: Path) -> None:
    async with sms_stack(tmp_path) as st:
        assert st.service.templates is not None
        st.service.templates.save(SmsTemplate("acme", "hello", "{{ name }}您好，感谢来电"), 1.0)
        rec = await st.service.send(SmsRequest(
            to="13800138000", template_id="hello", variables={"name": "代开发票"},
            tenant="acme"))
        assert rec.status == "refused"
        assert "发票" in rec.reason and "variable name" in rec.reason
        ok = await st.service.send(SmsRequest(
            to="13800138000", template_id="hello", variables={"name": "张先生"},
            tenant="acme"))
        await wait_until(lambda: st.statuses().get(ok.id) == "delivered", 10, "delivered")
        assert [t for _, t in st.sim.messages()] == ["张先生您好，感谢来电"]


async def test_per_number_caps_are_the_compliance_caps(tmp_path: Path) -> None:
    async with sms_stack(tmp_path, cap_rules=[CapRule("sms", 2, "day")]) as st:
        ids = [(await st.service.send(SmsRequest(to="13800138000", text=f"n{i}"))).id
               for i in range(3)]
        await wait_until(lambda: len([i for i in ids if st.statuses().get(i) in
                                      ("delivered", "refused")]) == 3, 10, "all decided")
        assert sorted(st.statuses()[i] for i in ids) == ["delivered", "delivered", "refused"]
        refused = [r for r in st.outbox.recent(status="refused")]
        assert "frequency_cap" in refused[0].reason
        assert len(st.sim.messages()) == 2


async def test_the_same_idempotency_key_sends_once(tmp_path: Path) -> None:
    async with sms_stack(tmp_path) as st:
        a = await st.service.send(SmsRequest(to="13800138000", text="一次", idempotency_key="k"))
        b = await st.service.send(SmsRequest(to="13800138000", text="两次", idempotency_key="k"))
        assert a.id == b.id
        await wait_until(lambda: st.statuses().get(a.id) == "delivered", 10, "delivered")
        assert [t for _, t in st.sim.messages()] == ["一次"]


async def test_smpp34_client_talks_to_the_simulator_like_our_client() -> None:
    """The simulator is no echo of our codec: smpp34's own client gets the same answers."""
    from tests.netutil import free_port
    from tests.smsc import SimSmsc

    sim = SimSmsc(free_port())
    await sim.start()
    try:
        client = smpp34.Client("127.0.0.1", sim.port, "other", "pw", bind_type="TRX")
        session = await client.connect()
        resp = await session.submit_sm("8613800138000", "你好".encode("utf-16-be"),
                                       data_coding=8)
        assert resp.is_success and resp.message_id
        await session.unbind()
    finally:
        await sim.stop()
    assert sim.messages() == [("8613800138000", "你好")]


async def test_delay_and_quiet_hours_move_the_due_time(tmp_path: Path) -> None:
    from datetime import datetime
    from zoneinfo import ZoneInfo

    async with sms_stack(tmp_path) as st:
        later = await st.service.send(SmsRequest(to="13800138000", text="稍后", delay_s=3600))
        assert later.due_at - later.created_at == 3600
        now_sh = datetime.now(ZoneInfo("Asia/Shanghai"))
        start = now_sh.replace(minute=0, second=0, microsecond=0)
        span = f"{start:%H:%M}-{(start.hour + 2) % 24:02d}:00"  # quiet now, for two hours
        quiet = await st.service.send(SmsRequest(to="13800138000", text="安静时段",
                                                 quiet_hours=span))
        end = datetime.fromtimestamp(quiet.due_at, ZoneInfo("Asia/Shanghai"))
        assert end.minute == 0 and end.hour == (start.hour + 2) % 24
        assert quiet.due_at > quiet.created_at  # claim_due honours due_at (unit-tested)
