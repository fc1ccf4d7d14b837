"""ComplianceService.check: lists, test mode, VIP, opt-out, caps and calling windows."""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from compliance.caps import CapRule, InMemoryCapCounter, bucket
from compliance.lists import InMemoryListStore, ListEntry, ListKind, ListReason, Scope
from compliance.service import CampaignRules, ComplianceService
from compliance.windows import CallingWindow

SH = ZoneInfo("Asia/Shanghai")
MON_10 = datetime(2026, 11, 30, 10, 0, tzinfo=SH)  # a Monday, 10:00 in Beijing
N = "13800138000"


def service(**kw: object) -> ComplianceService:
    return ComplianceService(InMemoryListStore(), InMemoryCapCounter(), **kw)  # type: ignore[arg-type]


async def test_clean_number_is_allowed() -> None:
    d = await service().check(N, "marketing", "acme", "c1", MON_10)
    assert d.allowed and d.reasons == [] and d.number == "+8613800138000"


async def test_invalid_number_denied_with_reason() -> None:
    d = await service().check("12345", "marketing", "acme", None, MON_10)
    assert not d.allowed and d.reasons[0].code == "invalid_number"


async def test_blacklist_in_any_scope_denies_and_lists_every_reason() -> None:
    svc = service()
    await svc.lists.add([
        ListEntry(ListKind.BLACK, "+8613800138000", reason=ListReason.REGULATOR),
        ListEntry(ListKind.BLACK, "86138", is_prefix=True, scope=Scope("acme", "c1")),
    ])
    d = await svc.check("+86 138 0013 8000", "notification", "acme", "c1", MON_10)
    assert not d.allowed
    assert [r.code for r in d.reasons] == ["blacklisted", "blacklisted"]
    other = await svc.check("13812345678", "notification", "acme", "c2", MON_10)
    assert other.allowed  # the prefix is scoped to campaign c1


async def test_test_mode_dials_only_whitelisted() -> None:
    svc = service()
    svc.set_campaign("acme", "trial", CampaignRules(test_mode=True))
    assert (await svc.check(N, "survey", "acme", "trial", MON_10)).reasons[0].code == \
        "not_whitelisted"
    await svc.lists.add([ListEntry(ListKind.WHITE, "+8613800138000", scope=Scope("acme"),
                                   reason=ListReason.TEST)])
    assert (await svc.check(N, "survey", "acme", "trial", MON_10)).allowed


async def test_blacklist_beats_whitelist() -> None:
    svc = service()
    svc.set_campaign("acme", "trial", CampaignRules(test_mode=True))
    await svc.lists.add([ListEntry(ListKind.WHITE, "+8613800138000", reason=ListReason.TEST),
                         ListEntry(ListKind.BLACK, "+8613800138000")])
    d = await svc.check(N, "survey", "acme", "trial", MON_10)
    assert [r.code for r in d.reasons] == ["blacklisted"]


async def test_vip_whitelist_for_inbound() -> None:
    svc = service()
    await svc.lists.add([ListEntry(ListKind.WHITE, "+8613800138000", scope=Scope("acme"),
                                   reason=ListReason.VIP)])
    assert await svc.is_vip("138 0013 8000", "acme")
    assert not await svc.is_vip("138 0013 8000", "other")
    assert not await svc.is_vip("garbage", "acme")
    assert (await svc.check(N, "notification", "acme", None, MON_10)).vip


async def test_opt_out_blacklists_immediately() -> None:
    svc = service()
    assert (await svc.check(N, "marketing", "acme", "c1", MON_10)).allowed
    entry = await svc.opt_out(N, "acme", "c1", source="call:42")
    assert entry.reason is ListReason.OPT_OUT and entry.scope == Scope("acme")
    d = await svc.check(N, "marketing", "acme", "c2", MON_10)
    assert not d.allowed and d.reasons[0].entry == entry
    assert (await svc.check(N, "marketing", "other", "c9", MON_10)).allowed


async def test_caps_per_day_and_week_across_campaigns() -> None:
    svc = service(cap_rules=[CapRule("marketing", 1, "day"), CapRule("marketing", 3, "week")])
    assert (await svc.check(N, "marketing", "acme", "c1", MON_10, count=True)).allowed
    again = await svc.check(N, "marketing", "acme", "c2", MON_10 + timedelta(hours=2),
                            count=True)
    assert [r.code for r in again.reasons] == ["frequency_cap"] and "per day" in \
        again.reasons[0].message
    assert (await svc.check(N, "notification", "acme", "c2", MON_10, count=True)).allowed
    assert (await svc.check(N, "marketing", "other", "c1", MON_10, count=True)).allowed
    for day in (1, 2):
        assert (await svc.check(N, "marketing", "acme", "c1", MON_10 + timedelta(days=day),
                                count=True)).allowed
    week = await svc.check(N, "marketing", "acme", "c1", MON_10 + timedelta(days=3))
    assert "per week" in week.reasons[0].message
    next_week = await svc.check(N, "marketing", "acme", "c1", MON_10 + timedelta(days=7))
    assert next_week.allowed


async def test_global_cap_counts_every_tenant() -> None:
    svc = service(cap_rules=[CapRule("*", 2, "day", "global")])
    assert (await svc.check(N, "survey", "a", None, MON_10, count=True)).allowed
    assert (await svc.check(N, "marketing", "b", None, MON_10, count=True)).allowed
    assert not (await svc.check(N, "survey", "c", None, MON_10, count=True)).allowed


async def test_check_without_count_does_not_consume() -> None:
    svc = service(cap_rules=[CapRule("marketing", 1, "day")])
    for _ in range(3):
        assert (await svc.check(N, "marketing", "acme", None, MON_10)).allowed


async def test_concurrent_reserves_never_exceed_the_cap() -> None:
    svc = service(cap_rules=[CapRule("marketing", 2, "day")])
    results = await asyncio.gather(*[svc.check(N, "marketing", "acme", None, MON_10,
                                               count=True) for _ in range(10)])
    assert sum(d.allowed for d in results) == 2


async def test_denied_attempt_is_not_counted() -> None:
    svc = service(cap_rules=[CapRule("marketing", 1, "day")])
    await svc.lists.add([ListEntry(ListKind.BLACK, "+8613800138000", scope=Scope("x"))])
    assert not (await svc.check(N, "marketing", "x", None, MON_10, count=True)).allowed
    assert (await svc.check(N, "marketing", "acme", None, MON_10, count=True)).allowed


async def test_window_uses_callee_local_time_and_defers() -> None:
    svc = service()
    svc.set_campaign("acme", "c1", CampaignRules(window=CallingWindow.daily("09:00", "20:00")))
    utc_late = datetime(2026, 11, 30, 13, 0, tzinfo=UTC)  # 21:00 in Beijing
    d = await svc.check(N, "marketing", "acme", "c1", utc_late)
    assert not d.allowed and d.deferred
    assert d.reasons[0].code == "outside_window"
    assert d.retry_at == datetime(2026, 12, 1, 9, 0, tzinfo=SH)
    us = await svc.check("+1 650 253 0000", "marketing", "acme", "c1",
                         datetime(2026, 11, 30, 13, 0, tzinfo=UTC))  # 05:00 in California
    assert us.retry_at == datetime(2026, 11, 30, 9, 0, tzinfo=ZoneInfo("America/Los_Angeles"))
    ok = await svc.check(N, "marketing", "acme", "c1", datetime(2026, 11, 30, 3, tzinfo=UTC))
    assert ok.allowed


async def test_deferral_is_not_offered_when_also_blacklisted() -> None:
    svc = service(default_window=CallingWindow.daily("09:00", "20:00"))
    await svc.lists.add([ListEntry(ListKind.BLACK, "+8613800138000")])
    d = await svc.check(N, "marketing", "acme", None, MON_10.replace(hour=22))
    assert {r.code for r in d.reasons} == {"blacklisted", "outside_window"}
    assert not d.deferred


def test_window_weekdays_holidays_and_makeup_workdays() -> None:
    w = CallingWindow.daily("09:00", "18:00", weekdays=range(5), holidays=[date(2026, 10, 1)],
                            workdays=[date(2026, 10, 10)])
    assert w.is_open(datetime(2026, 9, 30, 9, 0, tzinfo=SH))
    assert not w.is_open(datetime(2026, 9, 30, 18, 0, tzinfo=SH))  # end is exclusive
    assert not w.is_open(datetime(2026, 10, 1, 10, 0, tzinfo=SH))  # holiday (Thursday)
    assert not w.is_open(datetime(2026, 10, 3, 10, 0, tzinfo=SH))  # Saturday
    assert w.is_open(datetime(2026, 10, 10, 10, 0, tzinfo=SH))  # make-up Saturday
    assert w.next_open(datetime(2026, 9, 30, 19, 0, tzinfo=SH)) == datetime(
        2026, 10, 2, 9, 0, tzinfo=SH)
    closed = CallingWindow({}, frozenset())
    assert closed.next_open(MON_10) is None


def test_window_validation_names_field() -> None:
    with pytest.raises(ValueError, match="hours"):
        CallingWindow.daily("20:00", "09:00")
    with pytest.raises(ValueError, match="hours"):
        CallingWindow.daily("9am", "10:00")
    with pytest.raises(ValueError, match="weekdays"):
        CallingWindow.daily(weekdays=[7])


def test_buckets() -> None:
    assert bucket("day", MON_10)[0] == "2026-11-30"
    assert bucket("week", MON_10) == ("2026-W49", datetime(2026, 12, 7, tzinfo=SH))
    assert bucket("month", datetime(2026, 12, 5, tzinfo=SH)) == (
        "2026-12", datetime(2027, 1, 1, tzinfo=SH))


def test_cap_rule_validation() -> None:
    with pytest.raises(ValueError, match="limit"):
        CapRule("marketing", -1)
    with pytest.raises(ValueError, match="period"):
        CapRule("marketing", 1, "year")  # type: ignore[arg-type]


async def test_naive_time_rejected() -> None:
    with pytest.raises(ValueError, match="at"):
        await service().check(N, "marketing", "acme", None, datetime(2026, 1, 1))


async def test_inbound_screening_applies_only_the_lists() -> None:
    """A caller is screened by the blacklist only: anonymous/SIP-user callers and calls at
    night are allowed (windows and caps govern dialling out), a blacklisted caller is not."""
    from datetime import UTC, datetime

    from compliance.caps import InMemoryCapCounter
    from compliance.lists import InMemoryListStore, ListEntry, ListKind, ListReason, Scope
    from compliance.service import ComplianceService
    from compliance.windows import CallingWindow

    lists = InMemoryListStore()
    await lists.add([ListEntry(ListKind.BLACK, "+8613800138000", False, Scope(),
                               ListReason.COMPLAINT, "test")])
    svc = ComplianceService(lists, InMemoryCapCounter(), region="CN",
                            default_window=CallingWindow.daily("09:00", "18:00"))
    night = datetime(2026, 11, 29, 17, 0, tzinfo=UTC)  # 01:00 in Shanghai
    assert (await svc.check("sipp", "inbound", "t", None, night)).allowed
    assert (await svc.check("13900139000", "inbound", "t", None, night)).allowed
    assert not (await svc.check("13900139000", "marketing", "t", None, night)).allowed
    blocked = await svc.check("138 0013 8000", "inbound", "t", None, night)
    assert not blocked.allowed and blocked.reasons[0].code == "blacklisted"


async def test_release_gives_a_reservation_back_once_and_never_below_zero() -> None:
    svc = service(cap_rules=[CapRule("marketing", 1, "day")])
    first = await svc.check(N, "marketing", "acme", None, MON_10, count=True)
    assert first.allowed and first.reserved
    await svc.release(first)
    await svc.release(first)  # a second give-back is a no-op
    second = await svc.check(N, "marketing", "acme", None, MON_10, count=True)
    assert second.allowed
    assert not (await svc.check(N, "marketing", "acme", None, MON_10, count=True)).allowed
    unallowed = await svc.check(N, "marketing", "acme", None, MON_10, count=True)
    await svc.release(unallowed)  # nothing was reserved: nothing is given back
    assert not (await svc.check(N, "marketing", "acme", None, MON_10)).allowed
