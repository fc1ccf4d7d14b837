"""The SMS service: requests in, durable outbox, one dispatcher, receipts and replies back.

``send`` does everything that can refuse a message on the spot (template, content, links, part
count) and records it before returning, so a flow node or the CLI gets an id or a reason at
once. The dispatcher then claims due messages, applies the lists and the frequency caps (the
compliance service's, shared with calls: Redis when the cluster has it), the tenant's rate,
and hands the message to the gateway; throttling pauses the whole sender with backoff instead
of dropping anything. Database work runs on one worker thread, never on the event loop.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import random
import unicodedata
import uuid
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, tzinfo
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

from compliance.numbers import InvalidNumber, normalize, timezone_for
from compliance.service import ComplianceService
from core.bus import EventBus
from core.clock import Clock
from core.tasks import TaskScope
from flows.expr import ExprError
from flows.template import render
from notify.content import ContentPolicy, ContentRefused, TemplateStore, with_signature
from notify.encoding import EncodingError, SmsPlan, plan
from notify.gateway import Gateway, Inbound, Outgoing
from notify.limits import TenantRate, TokenBuckets
from notify.outbox import DuplicateKey, Outbox, SmsRecord
from notify.receipts import MESSAGE_RECEIPT_PREFIX, Receipt
from notify.rules import CallFacts, SmsRule, after_quiet_hours, matching, parse_quiet_hours

log = logging.getLogger("ivr.notify")
T = TypeVar("T")

SMS_PURPOSE = "sms"  # the compliance purpose: caps with purpose "sms" (or "*") count messages
EXPIRY_SWEEP_S = 5.0  # how often queued messages past their validity are expired
RECEIPT_TRIES = 5
RECEIPT_RETRY_S = 0.1
OPT_OUT_KEYWORDS = ("TD", "T", "退订", "STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT")


@dataclass(slots=True)
class NotifySettings:
    sender: str = "10690000"  # default sender ID / service number
    signature: str = ""  # 【签名】 put in front of every text (per template or per tenant)
    max_parts: int = 10  # longer texts are refused (cost)
    validity_s: float = 86_400.0  # a message not sent by then expires
    max_attempts: int = 8  # gateway errors before a message fails
    retry_base_s: float = 2.0
    retry_max_s: float = 300.0
    throttle_base_s: float = 1.0
    throttle_max_s: float = 60.0
    concurrency: int = 20  # messages in flight to the gateway
    tenant_rate_per_s: float = 50.0  # parts per second per tenant
    tenant_burst: int = 100
    quiet_hours: str | None = None  # "21:00-08:00": for every message, in the recipient's zone
    region: str = "CN"
    default_timezone: str = "Asia/Shanghai"
    opt_out_keywords: tuple[str, ...] = OPT_OUT_KEYWORDS
    node: str = ""  # this engine's name when several share one outbox database
    poll_s: float = 1.0  # how often the dispatcher looks for due messages when not woken


@dataclass(slots=True)
class SmsRequest:
    to: str
    text: str | None = None  # the text (a template source) when no template_id
    literal: bool = False  # ``text`` is final (a flow node rendered it): no template pass
    template_id: str | None = None
    variables: dict[str, Any] = field(default_factory=dict)
    tenant: str = "default"
    sender: str | None = None
    call_id: str | None = None
    campaign: str | None = None
    rule: str | None = None
    purpose: str = "notification"
    idempotency_key: str | None = None
    delay_s: float = 0.0
    quiet_hours: str | None = None  # on top of the service's


class SmsService:
    def __init__(self, outbox: Outbox, gateway: Gateway, clock: Clock, *,
                 settings: NotifySettings | None = None,
                 compliance: ComplianceService | None = None,
                 policy: ContentPolicy | None = None, templates: TemplateStore | None = None,
                 bus: EventBus | None = None, rules: list[SmsRule] | None = None,
                 rate: TenantRate | None = None) -> None:
        self.outbox = outbox
        self.gateway = gateway
        self.clock = clock
        self.settings = settings or NotifySettings()
        self.compliance = compliance
        self.policy = policy or ContentPolicy()
        self.templates = templates
        self.bus = bus
        self.rules = list(rules or [])
        self.default_tz: tzinfo = ZoneInfo(self.settings.default_timezone)
        self._db = ThreadPoolExecutor(1, thread_name_prefix="sms-db")
        self._scope = TaskScope("sms")  # the dispatcher
        self._rules = TaskScope("sms-rules")  # recording a finished call's rule messages
        self._sends = TaskScope("sms-send")
        self._wake = asyncio.Event()
        self._active: set[str] = set()
        self._paused_until = 0.0
        self._next_expiry_sweep = 0.0
        self._started_gateway = False
        self._throttle_s = 0.0
        self._buckets: TenantRate = rate or TokenBuckets(
            clock, self.settings.tenant_rate_per_s, self.settings.tenant_burst)
        self._running = False
        self._remove_listener: Any = None
        self.recovered_unknown = 0

    # -- life cycle ----------------------------------------------------------------------------

    async def start(self, *, dispatch: bool = True) -> None:
        """With ``dispatch``: recover the outbox (this node's messages a kill left in flight)
        and start the gateway and the sender. Without: requests are recorded only, and the
        outbox is left alone for the engine that sends (a CLI must not touch its state)."""
        self._running = True
        if not dispatch:
            return
        self.recovered_unknown = await self._run(self.outbox.recover, self.clock.wall(),
                                                self.settings.node)
        if self.recovered_unknown:
            log.warning("sms: %d message(s) were in flight when the engine stopped; marked "
                        "unknown, not resent (ivr sms list --status unknown)",
                        self.recovered_unknown)
        self.gateway.set_handlers(self.on_receipt, self.on_inbound)
        await self.gateway.start()
        self._started_gateway = True
        self._scope.spawn(self._dispatch(), "dispatch")

    def attach(self, bus: EventBus) -> None:
        """Send rule SMS from call events (``call.invite`` ... ``call.ended``)."""
        from notify.rules import FactsCollector  # noqa: PLC0415 - cheap, keeps imports tidy

        self.bus = bus
        collector = FactsCollector(self._call_ended)
        removers = [bus.listen(p, collector) for p in ("call.", "flow.")]
        self._remove_listener = lambda: [r() for r in removers]

    async def stop(self, grace_s: float = 5.0) -> None:
        """Record the rule messages of calls that just ended, stop claiming (the dispatcher
        finishes its round: a claimed message is always sent), let sends in flight get their
        answers (up to ``grace_s``), then close the gateway."""
        if self._remove_listener is not None:
            self._remove_listener()
        await self._rules.wait(grace_s)
        await self._rules.close(grace_s=1.0)
        self._running = False
        self._wake.set()
        await self._scope.wait(grace_s)
        await self._scope.close(grace_s=1.0)
        await self._sends.wait(grace_s)
        await self._sends.close(grace_s=1.0)
        if self._started_gateway:
            await self.gateway.stop()
        # the database thread finishes what it was given, off the event loop
        await asyncio.get_running_loop().run_in_executor(None, self._db.shutdown)

    async def _run(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        """``fn`` on the database thread (one: SQLite writes are serial anyway)."""
        return await asyncio.get_running_loop().run_in_executor(
            self._db, functools.partial(fn, *args, **kwargs))

    def _publish(self, rec: SmsRecord | None) -> None:
        if rec is None or self.bus is None:
            return
        self.bus.publish(f"sms.{rec.status}", rec.call_id, id=rec.id, tenant=rec.tenant,
                         to=rec.to, parts=rec.parts, template_id=rec.template_id,
                         rule=rec.rule, reason=rec.reason, gateway=rec.gateway,
                         at=self.clock.wall())

    # -- requests ------------------------------------------------------------------------------

    def _text_of(self, req: SmsRequest) -> tuple[str, str]:
        """(text, signature) with variables filled in; ContentRefused when it cannot be."""
        signature = self.settings.signature
        source = req.text
        if req.template_id is not None:
            tpl = self.templates.get(req.tenant, req.template_id) if self.templates else None
            if tpl is None:
                raise ContentRefused("template", f"template_id: no template "
                                                 f"{req.template_id!r} for tenant {req.tenant}")
            source, signature = tpl.text, tpl.signature or signature
        if not source:
            raise ContentRefused("template", "text: empty message")
        if req.literal and req.template_id is None:
            return source, signature
        try:
            return render(source, req.variables), signature
        except ExprError as e:
            raise ContentRefused("template", f"text: {e}") from e

    def plan_for(self, text: str) -> SmsPlan:
        return plan(text)

    async def send(self, req: SmsRequest) -> SmsRecord:
        """Record the message (``queued``, or ``refused`` with the reason) and return it.
        The same idempotency key returns the first message, which is never sent twice."""
        now = self.clock.wall()
        key = req.idempotency_key or uuid.uuid4().hex
        status, reason, text, signature = "queued", "", req.text or "", ""
        number = req.to
        try:
            number = normalize(req.to, self.settings.region)
        except InvalidNumber as e:
            status, reason = "refused", f"to: {e.reason}"
        pl: SmsPlan | None = None
        if status == "queued":
            try:
                text, signature = self._text_of(req)
                self.policy.check_text(req.tenant, text, req.variables)
                text = with_signature(text, signature)
                pl = self.plan_for(text)
                if pl.part_count > self.settings.max_parts:
                    raise ContentRefused("too_long", f"text: {pl.part_count} parts, more than "
                                                     f"max_parts {self.settings.max_parts}")
            except (ContentRefused, EncodingError) as e:
                status, reason = "refused", str(e)
        due = now + max(0.0, req.delay_s)
        due = self._after_quiet_hours(number, due, req.quiet_hours)
        fields = dict(
            id=uuid.uuid4().hex, idempotency_key=key, tenant=req.tenant, call_id=req.call_id,
            campaign=req.campaign, template_id=req.template_id, rule=req.rule,
            purpose=req.purpose, to_number=number, sender=req.sender or self.settings.sender,
            text=text, coding=pl.coding if pl else "", parts=pl.part_count if pl else 0,
            reference=random.randint(0, 255), gateway=self.gateway.name, status=status,
            reason=reason, attempts=0, checked=0, due_at=due,
            expires_at=due + self.settings.validity_s, created_at=now,
            done_at=now if status == "refused" else None, parts_delivered=0)
        try:
            rec: SmsRecord = await self._run(self.outbox.add, fields)
        except DuplicateKey as e:
            return e.existing
        self._publish(rec)
        if status == "queued":
            self._wake.set()
        return rec

    def _after_quiet_hours(self, number: str, due: float, extra: str | None) -> float:
        spans = [q for q in (self.settings.quiet_hours, extra) if q]
        if not spans:
            return due
        zone = self.default_tz
        try:
            zone = timezone_for(number, self.default_tz)
        except Exception:  # an unparseable number was refused already; any zone will do
            zone = self.default_tz
        at = datetime.fromtimestamp(due, zone)
        for _ in range(3):  # two spans can push each other on; settles in a round or two
            before = at
            for span in spans:
                at = after_quiet_hours(at, parse_quiet_hours(span))
            if at == before:
                break
        return at.timestamp()

    # -- rules ---------------------------------------------------------------------------------

    def _call_ended(self, facts: CallFacts) -> None:
        rules = matching(self.rules, facts)
        if rules and self._running:
            self._rules.spawn(self._send_for_rules(facts, rules), f"rules-{facts.call_id}")

    async def _send_for_rules(self, facts: CallFacts, rules: list[SmsRule]) -> None:
        for rule in rules:
            to = facts.recipient(rule.to)
            rec = await self.send(SmsRequest(
                to=to, template_id=rule.template, variables=facts.scope(), tenant=facts.tenant,
                call_id=facts.call_id, campaign=facts.campaign, rule=rule.name,
                purpose=rule.purpose, idempotency_key=f"rule:{rule.name}:{facts.call_id}",
                delay_s=rule.delay_s, quiet_hours=rule.quiet_hours))
            log.info("sms rule %s for call %s: %s %s", rule.name, facts.call_id, rec.status,
                     rec.reason)

    # -- dispatcher ----------------------------------------------------------------------------

    async def _dispatch(self) -> None:
        while self._running:
            self._wake.clear()  # before looking: a wake-up from now on is not missed
            now = self.clock.wall()
            if now >= self._next_expiry_sweep:  # a sweep per round would double the reads
                self._next_expiry_sweep = now + EXPIRY_SWEEP_S
                for rec in await self._run(self.outbox.expire_queued, now):
                    self._publish(rec)
            wait_s = self.settings.poll_s
            free = self.settings.concurrency - len(self._active)
            if self._paused_until > self.clock.now():
                wait_s = min(wait_s, self._paused_until - self.clock.now())
            elif free > 0:
                claimed: list[SmsRecord] = await self._run(
                    self.outbox.claim_due, now, free, self.settings.node, self.gateway.name)
                for rec in claimed:
                    self._active.add(rec.id)
                    self._sends.spawn(self._send_one(rec), f"send-{rec.id[:8]}")
                if len(claimed) == free:
                    wait_s = 0.0  # more may be due: look again once a slot frees
                else:
                    nxt = await self._run(self.outbox.next_due)
                    if nxt is not None:
                        wait_s = max(0.0, min(wait_s, nxt - self.clock.wall()))
            if wait_s > 0 or free <= 0:
                try:
                    await self.clock.wait_for(self._wake.wait(), wait_s if free > 0 else None)
                except TimeoutError:
                    pass

    def _done(self, message_id: str) -> None:
        self._active.discard(message_id)
        self._wake.set()

    async def _send_one(self, rec: SmsRecord) -> None:
        try:
            await self._send_checked(rec)
        except Exception as e:  # a bug must not leave the message claimed forever
            log.exception("sms %s: send failed", rec.id)
            self._publish(await self._run(self.outbox.set_status, rec.id, "queued",
                                          self.clock.wall(), reason=f"internal error: {e!r}",
                                          due_at=self.clock.wall() + self.settings.retry_max_s))
        finally:
            self._done(rec.id)

    async def _send_checked(self, rec: SmsRecord) -> None:
        if not rec.checked and self.compliance is not None:
            decision = await self.compliance.check(
                rec.to, SMS_PURPOSE, rec.tenant, rec.campaign,
                datetime.fromtimestamp(self.clock.wall(), UTC), count=True)
            if not decision.allowed:
                reason = "; ".join(f"{r.code}: {r.message}" for r in decision.reasons)
                if decision.retry_at is not None:  # outside the window: later, not never
                    self._publish(await self._run(
                        self.outbox.set_status, rec.id, "queued", self.clock.wall(),
                        reason=reason, due_at=decision.retry_at.timestamp()))
                else:
                    self._publish(await self._run(self.outbox.set_status, rec.id, "refused",
                                                  self.clock.wall(), reason=reason))
                return
            rec = replace(rec, checked=True)  # written with the attempt's outcome below
        pl = self.plan_for(rec.text)
        await self._buckets.acquire(rec.tenant, pl.part_count - len(rec.accepted))
        msg = Outgoing(rec.id, rec.to, rec.sender, pl, rec.reference, dict(rec.accepted))

        async def on_part(index: int, gateway_id: str) -> None:
            await self._run(self.outbox.part_accepted, rec.id, index, gateway_id,
                            self.clock.wall())

        result = await self.gateway.submit(msg, on_part)
        now = self.clock.wall()
        if result.verdict == "submitted":
            self._throttle_s = 0.0
            await self._move(rec, "submitted")
        elif result.verdict == "throttled":
            self._throttle_s = min(max(self._throttle_s * 2, self.settings.throttle_base_s),
                                   self.settings.throttle_max_s)
            self._paused_until = max(self._paused_until, self.clock.now() + self._throttle_s)
            await self._move(rec, "queued", reason=result.reason, due_at=now + self._throttle_s)
        elif result.verdict == "retry" and rec.attempts < self.settings.max_attempts:
            backoff = min(self.settings.retry_base_s * 2 ** (rec.attempts - 1),
                          self.settings.retry_max_s)
            await self._move(rec, "queued", reason=result.reason, due_at=now + backoff)
        else:
            reason = result.reason if result.verdict == "failed" else (
                f"gave up after {rec.attempts} attempts: {result.reason}")
            await self._move(rec, "failed", reason=reason)

    async def _move(self, rec: SmsRecord, status: str, *, reason: str = "",
                    due_at: float | None = None) -> None:
        """Write the attempt's outcome and publish it, from what is known in memory (one
        read and one write on the database thread, not a re-read of the whole message)."""
        now = self.clock.wall()
        written = await self._run(self.outbox.move, rec.id, status, now, reason=reason,
                                  due_at=due_at, checked=rec.checked)
        if written is None or written == "queued":
            return
        final = written not in ("submitted",)
        self._publish(replace(
            rec, status=written, reason=reason or rec.reason,
            submitted_at=rec.submitted_at or (now if written in ("submitted", "delivered")
                                              else None),
            done_at=now if final else None))

    # -- from the gateway ----------------------------------------------------------------------

    async def on_receipt(self, receipt: Receipt) -> bool:
        """Record a receipt; False when it names nothing we sent."""
        if receipt.outcome == "pending":
            return True
        gid, message_id = receipt.gateway_message_id, None
        if gid.startswith(MESSAGE_RECEIPT_PREFIX):
            gid, message_id = "", gid[len(MESSAGE_RECEIPT_PREFIX):]
        for attempt in range(RECEIPT_TRIES):
            if attempt:  # the receipt overtook the write of its part's response: wait for it
                await self.clock.sleep(RECEIPT_RETRY_S)
            known, changed = await self._run(
                self.outbox.apply_receipt, self.gateway.name, gid, receipt.outcome,
                receipt.stat, now=self.clock.wall(), message_id=message_id)
            if known:
                self._publish(changed)
                return True
        log.info("sms receipt for unknown message %s (%s)", receipt.gateway_message_id,
                 receipt.stat)
        return False

    async def on_inbound(self, inbound: Inbound) -> None:
        """A reply: an opt-out keyword blacklists the number for the tenant that wrote to it."""
        word = unicodedata.normalize("NFKC", inbound.text).strip().strip("。.!！").upper()
        if word not in {k.upper() for k in self.settings.opt_out_keywords}:
            log.info("sms reply from %s: %r", inbound.from_number, inbound.text[:80])
            return
        try:
            number = normalize(inbound.from_number, self.settings.region)
        except InvalidNumber:
            number = inbound.from_number
        tenant = await self._run(self.outbox.last_tenant_for, number) or "default"
        if self.compliance is not None:
            try:
                await self.compliance.opt_out(number, tenant, source="sms reply")
            except InvalidNumber as e:
                log.warning("sms opt-out from %s not recorded: %s", inbound.from_number, e)
                return
        log.info("sms opt-out: %s (tenant %s) replied %r", number, tenant, inbound.text)
        if self.bus is not None:
            self.bus.publish("sms.opt_out", None, number=number, tenant=tenant,
                             keyword=inbound.text, at=self.clock.wall())

    # -- queries (CLI, console) ----------------------------------------------------------------

    async def get(self, message_id: str) -> SmsRecord | None:
        return await self._run(self.outbox.get, message_id)

    async def recent(self, **filters: Any) -> list[SmsRecord]:
        return await self._run(self.outbox.recent, **filters)

    def stats(self) -> Mapping[str, Any]:
        return {"active": len(self._active), "paused_s": max(0.0, self._paused_until
                                                              - self.clock.now())}
