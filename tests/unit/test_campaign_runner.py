"""The dialler loop on a fake clock with a scripted far end: retries on schedule, compliance at
dial time (blacklist, window deferral, test mode, caps), pacing, and a restart that never
dials an interrupted attempt again. (The far end is a fake here because these are timing rules
over hours of simulated time; tests/integration/test_campaign_sipp.py dials SIPp for real.)"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from campaigns.model import AttemptRow
from compliance.caps import CapRule
from compliance.lists import ListEntry, ListKind, ListReason, Scope
from flows.simulator import SimInput
from tests.campaign_fakes import MONDAY_10AM, Answer, Rig, spec

N1, N2, N3 = "+8613800138001", "+8613800138002", "+8613800138003"


def attempts(rig: Rig) -> list[AttemptRow]:
    return list(rig.store.attempts("spring"))


async def test_answered_contacts_run_the_flow_with_their_variables(tmp_path: Path) -> None:
    rig = Rig(tmp_path, script=lambda n, k: Answer(inputs=[SimInput("dtmf", "1")]))
    rig.create([N1, N2])
    await rig.runner.start()
    try:
        await rig.run_until(lambda: rig.state() == "finished")
    finally:
        await rig.runner.stop()
    rows = {a.number: a for a in attempts(rig)}
    assert set(rows) == {N1, N2}
    assert all(a.disposition == "answered" and a.flow_status == "hangup" for a in rows.values())
    contacts = {c.number: c for c in rig.store.contacts("spring")}
    assert contacts[N1].result["confirmed"] is True
    assert contacts[N1].state == "done" and contacts[N1].attempts == 1
    assert rig.dialler.placed[0].target == f"sip:{N1}@127.0.0.1:5099"


async def test_retries_happen_on_schedule_with_backoff(tmp_path: Path) -> None:
    """busy, busy, answered: retry.on.busy 300 s doubling -> attempts at 0, 300, 900 s."""
    script = {1: Answer("busy", status=486), 2: Answer("busy", status=486), 3: Answer()}
    rig = Rig(tmp_path, script=lambda n, k: script[k], poll_s=60)
    rig.create([N1], spec(retry={"max_attempts": 5,
                                 "on": {"busy": {"delay_s": 300, "backoff": 2}}}))
    await rig.runner.start()
    try:
        await rig.run_until(lambda: rig.state() == "finished", limit_s=2000)
    finally:
        await rig.runner.stop()
    starts = [p.wall - MONDAY_10AM for p in rig.dialler.placed]
    assert len(starts) == 3
    # each attempt is dialled when due: the ring (1 s) is in the attempt, the delay after it
    assert starts[1] - starts[0] == pytest.approx(300 + 1, abs=0.01)
    assert starts[2] - starts[1] == pytest.approx(600 + 1, abs=0.01)
    contact = next(rig.store.contacts("spring"))
    assert contact.history == ["busy", "busy", "answered"] and contact.state == "done"


async def test_no_retry_without_a_rule_and_max_attempts_stops_retries(tmp_path: Path) -> None:
    rig = Rig(tmp_path, script=lambda n, k: Answer("no_answer") if n == N1 else
              Answer("failed", cause="not_found", status=404))
    rig.create([N1, N2], spec(retry={"max_attempts": 2, "on": {"no_answer": {"delay_s": 60}}}))
    await rig.runner.start()
    try:
        await rig.run_until(lambda: rig.state() == "finished", limit_s=600)
    finally:
        await rig.runner.stop()
    assert rig.dialler.count(N1) == 2  # max_attempts
    assert rig.dialler.count(N2) == 1  # 404: failed, not a network error, no rule
    contacts = {c.number: c for c in rig.store.contacts("spring")}
    assert contacts[N2].last_disposition == "failed"
    assert "max_attempts 2" in contacts[N1].reason


async def test_blacklisted_and_not_whitelisted_numbers_are_never_dialled(tmp_path: Path) -> None:
    rig = Rig(tmp_path)
    await rig.compliance.lists.add([
        ListEntry(ListKind.BLACK, N1, False, Scope("acme"), ListReason.COMPLAINT, "test"),
        ListEntry(ListKind.WHITE, N3, False, Scope("acme"), ListReason.TEST, "test")])
    rig.create([N1, N2, N3], spec(test_mode=True))
    await rig.runner.start()
    try:
        await rig.run_until(lambda: rig.state() == "finished")
    finally:
        await rig.runner.stop()
    assert [p.target.split("@")[0] for p in rig.dialler.placed] == [f"sip:{N3}"]
    contacts = {c.number: c for c in rig.store.contacts("spring")}
    assert contacts[N1].state == "skipped" and "blacklisted" in contacts[N1].reason_code
    assert contacts[N2].state == "skipped" and contacts[N2].reason_code == "not_whitelisted"
    assert "test mode" in contacts[N2].reason
    skipped = [e for e in _drain(rig) if e.topic == "campaign.skipped"]
    assert {e.data["number"] for e in skipped} == {N1, N2}


async def test_outside_the_window_is_deferred_not_dropped(tmp_path: Path) -> None:
    """Created at 21:00 Shanghai time: nobody is called until 09:00 the next morning."""
    evening = datetime(2026, 3, 2, 13, 0, tzinfo=UTC).timestamp()  # 21:00 +08:00
    rig = Rig(tmp_path, wall=evening, poll_s=600)
    rig.create([N1])
    await rig.runner.start()
    try:
        await rig.run_until(lambda: next(rig.store.contacts("spring")).reason_code != "")
        contact = next(rig.store.contacts("spring"))
        assert contact.state == "pending" and contact.reason_code == "outside_window"
        assert contact.next_at == datetime(2026, 3, 3, 1, 0, tzinfo=UTC).timestamp()
        assert rig.dialler.placed == []
        await rig.run_until(lambda: rig.state() == "finished", limit_s=13 * 3600)
    finally:
        await rig.runner.stop()
    (placed,) = rig.dialler.placed
    assert placed.wall >= datetime(2026, 3, 3, 1, 0, tzinfo=UTC).timestamp()
    assert placed.wall - evening < 12 * 3600 + 120


async def test_capped_numbers_are_not_dialled_and_caps_are_reserved(tmp_path: Path) -> None:
    """One marketing call per day per number: a second campaign cannot call it today."""
    rig = Rig(tmp_path, cap_rules=[CapRule("marketing", 1, "day")])
    rig.create([N1], spec(purpose="marketing"))
    rig.create([N1, N2], spec(id="autumn", name="Autumn", purpose="marketing"))
    await rig.runner.start()
    try:
        await rig.run_until(lambda: rig.state() == "finished" and
                            rig.state("autumn") == "finished")
    finally:
        await rig.runner.stop()
    assert rig.dialler.count(N1) == 1 and rig.dialler.count(N2) == 1
    autumn = {c.number: c for c in rig.store.contacts("autumn")}
    spring = {c.number: c for c in rig.store.contacts("spring")}
    skipped = autumn[N1] if autumn[N1].state == "skipped" else spring[N1]
    assert skipped.reason_code == "frequency_cap"


async def test_pacing_spaces_calls_and_caps_concurrency(tmp_path: Path) -> None:
    rig = Rig(tmp_path, script=lambda n, k: Answer("no_answer", ring_s=3.0))
    numbers = [f"+86138001{i:05d}" for i in range(20)]
    rig.create(numbers, spec(pacing={"calls_per_s": 5, "max_concurrent": 4}, retry={
        "max_attempts": 1, "on": {}}))
    await rig.runner.start()
    try:
        await rig.run_until(lambda: rig.state() == "finished", limit_s=120)
    finally:
        await rig.runner.stop()
    starts = [p.now for p in rig.dialler.placed]
    assert len(starts) == 20
    gaps = [b - a for a, b in zip(starts, starts[1:], strict=False)]
    assert min(gaps) >= 0.2 - 1e-6  # 5 calls/s at most
    assert rig.dialler.max_in_flight == 4


async def test_restart_never_dials_an_interrupted_attempt_again(tmp_path: Path) -> None:
    """A runner that died mid-call (its attempt still 'dialing') is replaced by a new one on
    the same node: the attempt becomes interrupted, the contact is not dialled again, the rest
    of the campaign goes on."""
    rig = Rig(tmp_path, script=lambda n, k: Answer(ring_s=1000.0))  # the call never ends
    rig.create([N1], spec(pacing={"calls_per_s": 10, "max_concurrent": 1}))
    await rig.runner.start()
    await rig.run_until(lambda: len(rig.dialler.placed) == 1)
    # the first runner is abandoned mid-call (the process would be killed): a new one starts
    rig.store.add_contacts("spring", [], now=rig.clock.wall())
    second = Rig(tmp_path, node="node-a")
    second.store.add_contacts("spring", _contacts([N2]), now=second.clock.wall())
    orphans = await second.runner.start()
    try:
        await second.run_until(lambda: second.state() == "finished")
    finally:
        await second.runner.stop()
        await rig.runner.stop(grace_s=0)
    assert orphans == 1
    assert second.dialler.count(N1) == 0 and second.dialler.count(N2) == 1
    rows = {a.number: a for a in second.store.attempts("spring")}
    assert rows[N1].state == "interrupted" and rows[N1].cause == "node_lost"
    contact = next(c for c in second.store.contacts("spring") if c.number == N1)
    assert contact.state == "done" and contact.last_disposition == "interrupted"


def _contacts(numbers: list[str]) -> list:
    from campaigns.contacts import Contact

    return [Contact(n, n, 99, {"name": "x", "amount": "1"}) for n in numbers]


def _drain(rig: Rig) -> list:
    out = []
    while not rig.events.queue.empty():
        out.append(rig.events.queue.get_nowait())
    return out


async def test_the_flows_prompts_render_before_the_first_dial(tmp_path: Path) -> None:
    """The engine's TTS cache is warmed with the campaign flow's static prompts before anyone
    is dialled (on a loaded box the first callees otherwise hit the synthesis timeout)."""
    rig = Rig(tmp_path)
    warmed: list[tuple[str, int]] = []

    async def prewarm(flow: object) -> None:
        warmed.append((getattr(flow, "id", ""), len(rig.dialler.placed)))

    rig.runner.prewarm = prewarm
    rig.create([N1])
    await rig.runner.start()
    try:
        await rig.run_until(lambda: rig.state() == "finished")
    finally:
        await rig.runner.stop()
    assert warmed == [("campaign_hello", 0)] and rig.dialler.count(N1) == 1


async def test_a_contact_not_dialled_for_want_of_a_caller_id_keeps_its_cap(
        tmp_path: Path) -> None:
    """The frequency cap is reserved at the compliance check; when the pool's only number is
    then at its daily cap, the contact is deferred and the reservation given back: the callee
    was not called, so tomorrow's (or another campaign's) call must not be refused for it."""
    rig = Rig(tmp_path, cap_rules=[CapRule("marketing", 1, "day")])
    rig.create([N1, N2], spec(purpose="marketing", caller_id={
        "numbers": ["+861058000000"], "daily_cap_per_number": 1}))
    await rig.runner.start()
    try:
        await rig.run_until(lambda: rig.dialler.count(N1) + rig.dialler.count(N2) == 1 and any(
            c.state == "pending" and c.reason_code == "caller_id_exhausted"
            for c in rig.store.contacts("spring")))
    finally:
        await rig.runner.stop()
    deferred = next(c.number for c in rig.store.contacts("spring")
                    if c.reason_code == "caller_id_exhausted")
    now = datetime.fromtimestamp(rig.clock.wall(), UTC)
    assert (await rig.compliance.check(deferred, "marketing", "acme", "other", now)).allowed
    dialled = N2 if deferred == N1 else N1
    capped = await rig.compliance.check(dialled, "marketing", "acme", "other", now)
    assert [r.code for r in capped.reasons] == ["frequency_cap"]  # a real call keeps its count
