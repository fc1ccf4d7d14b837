"""Hang-up SMS rules: which call outcomes match, quiet hours in the recipient's time, and the
facts gathered from a call's real bus events."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from core.bus import EventBus
from notify.rules import (
    CallFacts,
    FactsCollector,
    RuleError,
    SmsRule,
    after_quiet_hours,
    matching,
    parse_quiet_hours,
)

SH = ZoneInfo("Asia/Shanghai")


def facts(**kw: object) -> CallFacts:
    base = dict(call_id="c1", direction="outbound", caller="ivr", callee="13800138000",
                tenant="acme", disposition="answered")
    base.update(kw)
    return CallFacts(**base)  # type: ignore[arg-type]


RULES = [
    SmsRule("missed", "t1", on=("no_answer", "busy")),
    SmsRule("confirmed", "t2", when="confirmed == true"),
    SmsRule("left_in_menu", "t3", flow_status="caller_hangup", last_node="menu"),
    SmsRule("other_tenant", "t4", on=("any",), tenant="beta"),
]


@pytest.mark.parametrize(("kw", "names"), [
    ({"disposition": "no_answer"}, ["missed"]),
    ({"disposition": "busy"}, ["missed"]),
    ({"disposition": "failed"}, []),
    ({"variables": {"confirmed": True}}, ["confirmed"]),
    ({"variables": {"confirmed": False}}, []),
    ({}, []),  # the variable was never set: no match, no error
    ({"flow_status": "caller_hangup", "last_node": "menu"}, ["left_in_menu"]),
    ({"flow_status": "caller_hangup", "last_node": "bye"}, []),
    ({"tenant": "beta", "disposition": "failed"}, ["other_tenant"]),
])
def test_rules_match_call_outcomes(kw: dict[str, object], names: list[str]) -> None:
    assert [r.name for r in matching(RULES, facts(**kw))] == names


def test_customer_is_the_callee_outbound_and_the_caller_inbound() -> None:
    assert facts().customer == "13800138000"
    assert facts(direction="inbound", caller="13900139000").customer == "13900139000"


@pytest.mark.parametrize(("at", "expected"), [
    ("2026-11-30T22:30", "2026-12-01T08:00"),
    ("2026-11-30T07:59", "2026-11-30T08:00"),
    ("2026-11-30T08:00", "2026-11-30T08:00"),
    ("2026-11-30T20:59", "2026-11-30T20:59"),
])
def test_quiet_hours_across_midnight(at: str, expected: str) -> None:
    got = after_quiet_hours(datetime.fromisoformat(at).replace(tzinfo=SH),
                            parse_quiet_hours("21:00-08:00"))
    assert got == datetime.fromisoformat(expected).replace(tzinfo=SH)


def test_quiet_hours_within_a_day() -> None:
    got = after_quiet_hours(datetime(2026, 11, 30, 12, 30, tzinfo=SH),
                            parse_quiet_hours("12:00-13:30"))
    assert got == datetime(2026, 11, 30, 13, 30, tzinfo=SH)


@pytest.mark.parametrize(("kw", "field"), [
    ({"on": ("hung",)}, "on"), ({"delay_s": -1}, "delay_s"),
    ({"quiet_hours": "late"}, "quiet_hours"), ({"to": "boss"}, "to"),
    ({"when": "a =="}, "when"),
])
def test_bad_rules_name_the_field(kw: dict[str, object], field: str) -> None:
    with pytest.raises(RuleError, match=field):
        SmsRule("r", "t", **kw)  # type: ignore[arg-type]


def test_facts_come_from_the_bus_events_of_one_call() -> None:
    bus = EventBus()
    ended: list[CallFacts] = []
    collector = FactsCollector(ended.append)
    for prefix in ("call.", "flow."):
        bus.listen(prefix, collector)
    bus.publish("call.invite", "c9", direction="inbound", caller="13900139000",
                callee="4001", tenant="acme")
    bus.publish("flow.start", "c9", tenant="acme", flow_id="main")
    bus.publish("flow.end", "c9", status="returned", last_node="sub_end", variables={})
    bus.publish("flow.end", "c9", status="caller_hangup", last_node="menu",
                variables={"confirmed": True}, tenant="acme")
    bus.publish("call.ended", "other", disposition="answered")  # no invite seen: ignored
    bus.publish("call.ended", "c9", disposition="answered", cause="normal", side="caller",
                at=5.0)
    (f,) = ended
    assert (f.tenant, f.flow_status, f.last_node, f.disposition, f.side) == (
        "acme", "caller_hangup", "menu", "answered", "caller")
    assert f.scope()["confirmed"] is True and f.customer == "13900139000"
    assert collector.calls == {}


@pytest.mark.parametrize(("party", "number"), [
    ("sip:13800138000@127.0.0.1:5091", "13800138000"), ("tel:+8613800138000", "+8613800138000"),
    ("sips:13800138000@example.com;user=phone", "13800138000"), ("13800138000", "13800138000"),
])
def test_numbers_from_sip_parties(party: str, number: str) -> None:
    from notify.rules import number_of

    assert number_of(party) == number
