"""The dialler loop: running campaigns' due contacts -> checks -> pacing -> calls -> retries.

Per contact, in this order (docs/campaigns.md, "What happens to a contact"):

1. a slot in every concurrency limit (campaign, engine, trunk); in a cluster, then the
   contact's lease, so no other node prepares it at the same time (shared_pacing.py);
2. compliance at dial time (``count=True``: lists, test mode, caps reserved atomically);
   outside the calling window the contact is deferred to the window's next opening, anything
   else skips it, with every reason recorded on the contact;
3. a caller ID from the pool (local presence, rotation, daily cap reserved in the database);
4. its turn in every rate (campaign, trunk, caller ID) on the injected clock;
5. the claim: the attempt row is committed in state ``dialing`` *before* the INVITE leaves, so a
   restart never dials it again (``interrupted``), and the claim is conditional so two runners
   cannot both take one contact, nor one whose due list went stale take a retry early;
6. the call (the flow runs on the answer), then the outcome and the retry decision in one
   transaction; progress on the bus.

Database work runs in one worker thread (SQLite likes one writer; the event loop never waits
on it). The runner re-reads campaign states every ``poll_s`` so ``ivr campaign pause`` from
another process takes effect within that time.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypeVar

from campaigns.attempt import AmdRunner, AttemptContext, AttemptOutcome, attempt_app
from campaigns.callerid import CallerIdPool, check_pool
from campaigns.dialler import Dialler
from campaigns.dialler_lease import DiallerLease
from campaigns.pacing import SHARED_DOWN_RETRY_S, Limiter, Pacer
from campaigns.retry import attempt_disposition, decide
from campaigns.shared_pacing import RedisBudgets
from campaigns.spec import CampaignSpec
from campaigns.store import Campaign, CampaignStore, DueContact
from campaigns.trunks import Trunk
from compliance.service import CampaignRules, ComplianceService, Decision
from compliance.windows import CallingWindow
from core.bus import EventBus
from core.clock import Clock
from core.tasks import TaskScope
from engine.cdr import CallRecord
from flows.interpreter import Limits
from flows.services import FlowServices
from flows.validator import CompiledFlow

log = logging.getLogger("ivr.campaigns")
T = TypeVar("T")

HOPPER = 50  # due contacts read per query
PROGRESS_EVERY_S = 2.0
DEFER_NO_CALLER_ID_S = 600.0
MAX_NAP_S = 30.0  # every pool number at its cap or busy: look again later
PREPARE_AHEAD = 16  # contacts checked and claimed concurrently (their database work overlaps)
PREWARM_LIMIT_S = 120.0  # a campaign's prompts rendering before its first dial, at most

FlowLoader = Callable[[str, str, int], CompiledFlow]  # (tenant, flow id, version), blocking
ServicesFactory = Callable[[str, str], FlowServices]  # (tenant, campaign id)
Brander = Callable[[Campaign, str, str], list[tuple[str, str]]]  # (campaign, from, to) -> hdrs


@dataclass(eq=False)
class _Active:
    campaign: Campaign
    flow: CompiledFlow
    services: FlowServices
    pool: CallerIdPool
    trunk: Trunk
    limits: list[Limiter]
    state: str = "running"
    task: asyncio.Task[None] | None = None
    in_flight: int = 0
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    last_progress: float = 0.0


class CampaignRunner:
    def __init__(self, store: CampaignStore, dialler: Dialler, compliance: ComplianceService,
                 clock: Clock, bus: EventBus, *, node: str, trunks: list[Trunk],
                 flows: FlowLoader, services: ServicesFactory, amd: AmdRunner | None = None,
                 brander: Brander | None = None, region: str = "CN",
                 max_concurrent: int | None = None, poll_s: float = 1.0,
                 flow_limits: Limits | None = None,
                 prewarm: Callable[[CompiledFlow], Awaitable[object]] | None = None,
                 shared: RedisBudgets | None = None, lease: DiallerLease | None = None
                 ) -> None:
        if not trunks:
            raise ValueError("campaigns.trunks: at least one trunk is needed to dial")
        self.store = store
        self.dialler = dialler
        self.compliance = compliance
        self.clock = clock
        self.bus = bus
        self.node = node
        self.trunks = {t.name: t for t in trunks}
        self.default_trunk = trunks[0].name
        self.flows = flows
        self.services = services
        self.amd = amd
        self.brander = brander
        self.region = region
        self.poll_s = poll_s
        self.flow_limits = flow_limits
        self.prewarm = prewarm  # renders the flow's static prompts before the first dial
        self.shared = shared  # the cluster's pacing budgets (None: this node paces alone)
        self.pacer = Pacer(clock, shared)
        self.lease = lease  # without shared budgets: dial only while holding it
        self.holds_lease: bool | None = None  # None: not asked yet
        self.engine_limit = self.pacer.limiter("engine", None, max_concurrent)
        self.active: dict[str, _Active] = {}
        self.calls = TaskScope("campaign-calls")
        self._tasks = TaskScope("campaigns")
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="campaign-db")
        self._wake = asyncio.Event()
        self._stopping = False
        self.db_busy = 0  # database calls in flight (tests on a fake clock wait for them)

    # -- life cycle -----------------------------------------------------------------------------

    async def db(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        loop = asyncio.get_running_loop()
        self.db_busy += 1
        try:
            return await loop.run_in_executor(self._executor, lambda: fn(*args, **kwargs))
        finally:
            self.db_busy -= 1

    async def start(self) -> int:
        """Settle what a killed predecessor left dialling, then serve. Returns that count."""
        settled = await self.settle_node(self.node)
        if self.shared is not None:  # slots this node held in its previous life
            await self.forget_shared_slots(self.node)
        self._tasks.spawn(self._supervise(), "supervise")
        return settled

    async def settle_node(self, node: str) -> int:
        """Attempts ``node`` left ``dialing`` when it died (this node at its restart, or a
        dead one, called by a survivor's cluster janitor): ``interrupted``, then whatever the
        campaign's retry policy says for that (by default: not dialled again, since the call
        may have rung). Each is settled once even when several nodes try (conditional)."""
        orphans = await self.db(self.store.orphans, node)
        settled = 0
        for attempt_id, campaign_id in orphans:
            settled += await self._settle_orphan(attempt_id, campaign_id)
        if settled:
            log.warning("%d campaign attempts were in flight when node %s stopped: recorded as "
                        "interrupted", settled, node)
            for act in self.active.values():  # a retry may be due now
                act.wake.set()
        return settled

    async def forget_shared_slots(self, node: str) -> int:
        """Free the cluster pacing slots ``node`` held (it died; or this node restarting)."""
        if self.shared is None:
            return 0
        try:
            return await self.shared.forget_node(node)
        except Exception as e:  # Redis away: the janitor tries again
            log.warning("campaign pacing: slots of %s not freed (%s)", node, e)
            return 0

    async def _settle_orphan(self, attempt_id: int, campaign_id: str) -> bool:
        history = [*await self.db(self.store.history_of, attempt_id), "interrupted"]
        try:
            spec = (await self.db(self.store.get, campaign_id)).spec
            decision = decide(spec.retry, history, self.clock.wall())
        except LookupError:
            decision = None
        return await self.db(self.store.finish_attempt, attempt_id,
                             outcome={"cause": "node_lost", "disposition": "interrupted"},
                             disposition="interrupted", state="interrupted",
                             next_at=decision.at if decision and decision.retry else None,
                             reason="engine stopped during the call" if not decision
                             else decision.why, now=self.clock.wall(), only_if_dialing=True)

    def halt(self) -> None:
        """Claim no more contacts (the engine is stopping); calls in flight go on."""
        self._stopping = True
        self._wake.set()
        for act in self.active.values():
            act.wake.set()

    async def stop(self, grace_s: float = 5.0) -> None:
        """Stop claiming; let calls in flight finish (the engine hangs them up when it stops)
        and record their outcome."""
        self.halt()
        await self._tasks.close(grace_s=1.0)
        await self.calls.wait(grace_s)
        await self.calls.close(grace_s=2.0)
        if self.lease is not None and self.holds_lease:
            try:  # another node may dial at once, not a lease period later
                await self.db(self.lease.release)
            except Exception as e:  # it expires by itself
                log.warning("campaigns: the dialler lease was not given back (%s)", e)
        self._executor.shutdown(wait=True)

    def poke(self) -> None:
        """A campaign's state changed here (the service calls this): look now, not at the
        next poll."""
        self._wake.set()

    # -- supervision ----------------------------------------------------------------------------

    async def _hold_lease(self) -> bool:
        """Whether this node may dial now (always, without a lease); logs changes."""
        if self.lease is None:
            return True
        try:
            held = await self.db(self.lease.take, self.clock.wall())
        except Exception:  # the database is away: dial nothing we could not record anyway
            log.exception("campaigns: the dialler lease could not be checked")
            held = False
        if held and self.lease.taken_from is not None:
            # the previous holder stopped or died: what it left dialling is ours to settle
            # (with Redis the cluster janitor does this; here the lease is the only witness)
            gone, self.lease.taken_from = self.lease.taken_from, None
            await self.settle_node(gone)
        if held != self.holds_lease:
            if held:
                log.info("campaigns: node %s holds the dialler lease and dials", self.node)
            else:
                holder = await self.db(self.lease.holder, self.clock.wall())
                log.info("campaigns: node %s dials (dialler lease; no cluster.redis_url to "
                         "share pacing); node %s waits", holder, self.node)
            self.holds_lease = held
        return held

    async def _supervise(self) -> None:
        while not self._stopping:
            try:
                # another node holding the lease: as if nothing ran here (calls in flight
                # finish, nothing new is claimed)
                running = (await self.db(self.store.list, None, ("running", "paused"))
                           if await self._hold_lease() else [])
            except Exception:  # a database hiccup must not end the dialler
                log.exception("campaigns: reading campaign states failed")
                running = []
            states = {c.id: c.state for c in running}
            for c in running:
                act = self.active.get(c.id)
                if c.state == "running" and (act is None or act.task is None
                                             or act.task.done()):
                    await self._activate(c)
                elif act is not None:
                    act.state = c.state
            poked = self._wake.is_set()
            for cid, act in list(self.active.items()):
                if cid not in states:
                    act.state = "stopped"
                if poked or act.state != "running":
                    act.wake.set()
                if act.task is not None and act.task.done() and act.in_flight == 0:
                    self.active.pop(cid, None)
            self._wake.clear()
            try:
                await self.clock.wait_for(self._wake.wait(), self.poll_s)
            except TimeoutError:
                pass

    async def _activate(self, c: Campaign) -> None:
        try:
            act = await self._prepare(c)
        except Exception as e:
            log.error("campaign %s cannot run: %s", c.id, e)
            self.bus.publish("campaign.error", None, campaign=c.id, tenant=c.tenant,
                             error=str(e)[:300])
            await self.db(self.store.set_state, c.id, "paused", self.clock.wall())
            return
        self.active[c.id] = act
        act.task = self._tasks.spawn(self._run(act), f"campaign-{c.id}")
        self.bus.publish("campaign.state", None, campaign=c.id, tenant=c.tenant,
                         state="running")

    async def _prepare(self, c: Campaign) -> _Active:
        spec = c.spec
        flow = await self.db(self.flows, c.tenant, c.flow_id, c.flow_version)
        numbers, problems = check_pool(spec.caller_id, self.region)
        if problems:
            raise ValueError("; ".join(problems))
        trunk_name = spec.trunk or self.default_trunk
        trunk = self.trunks.get(trunk_name)
        if trunk is None:
            raise ValueError(f"trunk: {trunk_name!r} is not configured")
        self.compliance.set_campaign(c.tenant, c.id, CampaignRules(
            test_mode=spec.test_mode, window=window_of(spec)))
        pool = CallerIdPool(numbers, spec.caller_id)
        pool.used_today = await self.db(self.store.caller_id_counts, numbers, self._day())
        own = spec.pacing.per_trunk.get(trunk.name)
        limits = [
            self.pacer.limiter(f"campaign:{c.id}", spec.pacing.calls_per_s,
                               spec.pacing.max_concurrent),
            self.engine_limit,
            self.pacer.limiter(f"trunk:{trunk.name}", trunk.calls_per_s, trunk.max_concurrent),
        ]
        if own is not None:
            limits.append(self.pacer.limiter(f"campaign:{c.id}:trunk:{trunk.name}",
                                             own.calls_per_s, own.max_concurrent))
        services = await self.db(self.services, c.tenant, c.id)
        if self.prewarm is not None:
            # The first callees would otherwise wait for synthesis (seconds on a busy box,
            # past the TTS timeout on an overloaded one): render before dialling anyone.
            try:
                await self.clock.wait_for(self.prewarm(flow), PREWARM_LIMIT_S)
            except TimeoutError:
                log.warning("campaign %s: prompts still rendering after %.0f s; dialling",
                            c.id, PREWARM_LIMIT_S)
        return _Active(c, flow, services, pool, trunk, limits)

    # -- one campaign ---------------------------------------------------------------------------

    async def _run(self, act: _Active) -> None:
        """Read due contacts and prepare them, up to PREPARE_AHEAD at once (each takes several
        database round trips; one at a time they, not the pacing, would set the dial rate on
        a busy box). The next due list is read while the last contacts of the previous one
        still wait for their turn, so the pace does not stall at every list; a contact still
        in preparation is passed over (``preparing``), so none is prepared twice."""
        c = act.campaign
        spec = c.spec
        room = asyncio.Semaphore(PREPARE_AHEAD)
        preparing: set[int] = set()
        one_done = asyncio.Event()
        scope = TaskScope(f"prepare-{c.id}")

        async def one(contact: DueContact) -> None:
            try:
                await self._contact(act, contact)
                await self._progress(act)
            finally:
                preparing.discard(contact.id)
                room.release()
                one_done.set()

        try:
            while act.state == "running" and not self._stopping:
                act.wake.clear()  # what happens from here on (a call ending) cuts the next nap
                wall = self.clock.wall()
                if spec.schedule.start_at and wall < spec.schedule.start_at.timestamp():
                    await self._nap(act, spec.schedule.start_at.timestamp() - wall)
                    continue
                if spec.schedule.end_at and wall >= spec.schedule.end_at.timestamp():
                    await self.db(self.store.set_state, c.id, "stopped", wall)
                    self.bus.publish("campaign.state", None, campaign=c.id, tenant=c.tenant,
                                     state="stopped", reason="schedule.end_at passed")
                    act.state = "stopped"
                    break
                due = await self.db(self.store.due_contacts, c.id, wall, HOPPER)
                fresh = [d for d in due if d.id not in preparing]
                if not fresh and preparing:  # the list is what is being prepared: wait
                    one_done.clear()
                    await one_done.wait()
                    continue
                if not due:
                    if act.in_flight == 0 and await self.db(self.store.finish_if_done, c.id,
                                                            wall):
                        act.state = "finished"
                        await self._progress(act, force=True)
                        self.bus.publish("campaign.state", None, campaign=c.id,
                                         tenant=c.tenant, state="finished")
                        break
                    nxt = await self.db(self.store.next_due_at, c.id)
                    await self._nap(act, 1e9 if nxt is None else max(0.0, nxt - wall))
                    continue
                for contact in fresh:
                    await room.acquire()
                    if act.state != "running" or self._stopping:
                        room.release()
                        break
                    preparing.add(contact.id)
                    scope.spawn(one(contact), f"prepare-{c.id}-{contact.id}")
            await scope.wait()
        finally:
            await scope.close(grace_s=5.0)
        await self._progress(act, force=True)

    async def _nap(self, act: _Active, seconds: float) -> None:
        """Until the next contact is due, a state change, a call's end, or MAX_NAP_S (contacts
        added by another process)."""
        try:
            await self.clock.wait_for(act.wake.wait(), min(seconds, max(MAX_NAP_S,
                                                                         self.poll_s)))
        except TimeoutError:
            pass

    async def _contact(self, act: _Active, contact: DueContact) -> None:
        c = act.campaign
        await self.pacer.take_slots(act.limits)
        taken = list(act.limits)
        released = False
        lease = f"{c.id}:{contact.id}"
        leased = False
        decision: Decision | None = None
        try:
            if self.shared is not None:
                leased = await self._lease(lease)
                if not leased:  # another node has it in hand
                    return
            at = datetime.fromtimestamp(self.clock.wall(), UTC)
            decision = await self.compliance.check(contact.number, c.spec.purpose, c.tenant,
                                                   c.id, at, count=True)
            if not decision.allowed:
                codes = ",".join(dict.fromkeys(r.code for r in decision.reasons))
                why = "; ".join(r.message for r in decision.reasons)
                if decision.retry_at is not None:
                    await self.db(self.store.defer, contact.id, decision.retry_at.timestamp(),
                                  codes, why, self.clock.wall(), attempts=contact.attempts)
                    self.bus.publish("campaign.deferred", None, campaign=c.id, tenant=c.tenant,
                                     number=contact.number, reason=codes,
                                     until=decision.retry_at.isoformat())
                else:
                    await self.db(self.store.skip, contact.id, codes, why, self.clock.wall(),
                                  attempts=contact.attempts)
                    self.bus.publish("campaign.skipped", None, campaign=c.id, tenant=c.tenant,
                                     number=contact.number, reason=codes, detail=why[:300])
                return
            caller_id, cid_limit = await self._caller_id(act, contact.number)
            if caller_id is None and act.pool.numbers:
                await self.db(self.store.defer, contact.id,
                              self.clock.wall() + DEFER_NO_CALLER_ID_S, "caller_id_exhausted",
                              "every caller ID of the pool is at its daily cap",
                              self.clock.wall(), attempts=contact.attempts)
                return
            limits = act.limits + ([cid_limit] if cid_limit is not None else [])
            taken = limits
            await self.pacer.wait_turn(limits)
            claim = await self.db(self.store.claim, c.id, contact.id, node=self.node,
                                  caller_id=caller_id or "", trunk=act.trunk.name,
                                  now=self.clock.wall(), attempts=contact.attempts)
            if claim is None:
                log.debug("campaign %s: contact %s was taken or dialled by another node",
                          c.id, contact.id)
                return
            act.in_flight += 1
            released = True  # the call task owns the slots from here
            self.calls.spawn(self._call(act, contact, attempt_id=claim.attempt_id,
                                        attempt_no=claim.attempt_no, caller_id=caller_id,
                                        limits=limits),
                             f"{c.id}:{contact.number}:{claim.attempt_no}")
        finally:
            if leased:  # claimed (conditionally) or settled: the lease has done its work
                await self._unlease(lease)
            if not released:
                await self.pacer.release(taken)
                if decision is not None:  # counted against the caps but never dialled (no
                    # caller ID left, another node claimed it, an error): give the count back
                    await self.compliance.release(decision)

    async def _lease(self, what: str) -> bool:
        assert self.shared is not None
        try:
            return await self.shared.lease(what)
        except Exception as e:  # Redis away: not now, and not in a tight loop either
            log.warning("campaigns: contact %s not leased (%s); later", what, e)
            await self.clock.sleep(SHARED_DOWN_RETRY_S)
            return False

    async def _unlease(self, what: str) -> None:
        assert self.shared is not None
        try:
            await self.shared.unlease(what)
        except Exception as e:  # it runs out by itself (LEASE_TTL_MS)
            log.warning("campaigns: lease of contact %s not returned (%s)", what, e)

    async def _caller_id(self, act: _Active, callee: str) -> tuple[str | None, Limiter | None]:
        pool, spec = act.pool, act.campaign.spec
        if not pool.numbers:
            return None, None
        per = spec.pacing.per_caller_id
        cap = spec.caller_id.daily_cap_per_number

        def usable(n: str) -> bool:
            lim = self.pacer.limiters.get(f"callerid:{n}")
            under_cap = cap is None or pool.used_today.get(n, 0) < cap
            return under_cap and (lim is None or lim.has_room())

        for number in pool.candidates(callee, usable):
            if not await self.db(self.store.reserve_caller_id, number, self._day(), cap):
                pool.used_today[number] = cap or pool.used_today.get(number, 0)
                continue
            pool.used_today[number] = pool.used_today.get(number, 0) + 1
            pool.chosen(number)
            lim = None
            if per.calls_per_s or per.max_concurrent:
                lim = self.pacer.limiter(f"callerid:{number}", per.calls_per_s,
                                         per.max_concurrent)
                if not await self.pacer.try_take_slots([lim]):
                    continue
            return number, lim
        return None, None

    def _day(self) -> str:
        return datetime.fromtimestamp(self.clock.wall(), UTC).astimezone(
            self.compliance.default_tz).strftime("%Y-%m-%d")

    async def _call(self, act: _Active, contact: DueContact, *, attempt_id: int,
                    attempt_no: int, caller_id: str | None, limits: list[Limiter]) -> None:
        c = act.campaign
        outcome = AttemptOutcome()
        ctx = AttemptContext(c.id, c.name, c.tenant, contact.number, attempt_no,
                             {**c.spec.variables, **contact.variables}, act.flow, act.services,
                             c.spec.amd, caller_id or "")
        shown = act.pool.presentation(caller_id)
        headers = list(shown.headers)
        if self.brander is not None and c.spec.branding.enabled:
            try:
                headers += self.brander(c, shown.number, contact.number)
            except Exception as e:  # no branding beats no call; the record says why
                log.warning("campaign %s: branding not signed: %s", c.id, e)
        record: CallRecord | None = None
        try:
            record = await self.dialler.originate(
                act.trunk.target(contact.number),
                attempt_app(ctx, outcome, clock=self.clock, events=self.bus, amd=self.amd,
                            limits=self.flow_limits),
                from_user=act.trunk.from_user(shown.from_user), from_display=shown.from_display,
                headers=headers, ring_timeout_s=c.spec.ring_timeout_s, tenant=c.tenant)
        except Exception as e:  # a backend bug: record the attempt as failed, keep dialling
            log.exception("campaign %s: call to %s failed to run", c.id, contact.number)
            outcome.error = repr(e)[:200]
        finally:
            await self.pacer.release(limits)
        await self._record(act, contact, attempt_id=attempt_id, attempt_no=attempt_no,
                           caller_id=caller_id, record=record, outcome=outcome)

    async def _record(self, act: _Active, contact: DueContact, *, attempt_id: int,
                      attempt_no: int, caller_id: str | None, record: CallRecord | None,
                      outcome: AttemptOutcome) -> None:
        c = act.campaign
        now = self.clock.wall()
        if record is not None:
            row = outcome.as_row(record)
            disposition = attempt_disposition(record.disposition, record.hangup_cause,
                                              outcome.amd)
        else:
            row = {"disposition": "failed", "cause": "internal_error", "ended_at": now}
            disposition = "network_error"
        history = [*contact.history, disposition]
        decision = decide(c.spec.retry, history, now)
        try:
            await self.db(self.store.finish_attempt, attempt_id, outcome=row,
                          disposition=disposition, state="done",
                          next_at=decision.at if decision.retry else None, reason=decision.why,
                          now=now, result=row.get("result") or None)
        except Exception:
            log.exception("campaign %s: attempt %s not recorded", c.id, attempt_id)
        act.in_flight -= 1
        self.bus.publish("campaign.attempt", row.get("call_id"), campaign=c.id,
                         tenant=c.tenant, number=contact.number, attempt=attempt_no,
                         disposition=disposition, amd=outcome.amd, caller_id=caller_id or "",
                         flow_status=outcome.flow_status, retry_at=decision.at)
        act.wake.set()  # a retry may be due before the campaign's nap ends

    async def _progress(self, act: _Active, force: bool = False) -> None:
        now = self.clock.now()
        if not force and now - act.last_progress < PROGRESS_EVERY_S:
            return
        act.last_progress = now
        counts = await self.db(self.store.contact_counts, act.campaign.id)
        self.bus.publish("campaign.progress", None, campaign=act.campaign.id,
                         tenant=act.campaign.tenant, state=act.state, contacts=counts,
                         in_flight=act.in_flight)


def window_of(spec: CampaignSpec) -> CallingWindow:
    sch = spec.schedule
    return CallingWindow.daily(sch.window_start, sch.window_end, sch.weekdays, sch.holidays,
                               sch.workdays)
