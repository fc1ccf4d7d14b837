"""Building the SMS service from ``[sms]``, for the engine and the CLI alike.

The outbox lives in the database at ``storage.url``; the word lists and the black/white lists,
caps and calling window come from the compliance setup, so an SMS obeys the same rules as a
call (and counts against the same caps when they name purpose ``sms`` or ``*``).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from app.compliance_setup import open_compliance, word_registry
from app.config import ConfigError, Settings, node_id, parse_hostport
from core.bus import EventBus
from core.clock import Clock
from notify.callbacks import CallbackServer
from notify.content import ContentPolicy, ContentRefused, SmsTemplate, TemplateStore
from notify.gateway import Gateway, SmppGateway
from notify.gateway_none import OutboxOnly
from notify.kannel import KannelGateway
from notify.limits import RedisTenantRate
from notify.outbox import Outbox
from notify.rules import RuleError, SmsRule
from notify.service import NotifySettings, SmsRequest, SmsService
from notify.smpp.client import SmppSettings
from storage import Database

log = logging.getLogger("ivr.sms")


def callback_base(settings: Settings) -> str:
    s = settings.sms
    if s.callback_base:
        return s.callback_base
    host, port = parse_hostport(s.callback_listen or "127.0.0.1:9110", 9110)
    return f"http://{host}:{port}"


def make_gateway(settings: Settings, clock: Clock) -> Gateway:
    s = settings.sms
    if s.gateway == "smpp":
        return SmppGateway(SmppSettings(
            s.smpp_host, s.smpp_port, s.smpp_system_id, s.smpp_password,
            system_type=s.smpp_system_type, window=s.smpp_window,
            enquire_link_s=s.smpp_enquire_link_s, response_timeout_s=s.smpp_response_timeout_s),
            clock)
    if s.gateway == "kannel":
        return KannelGateway(s.kannel_sendsms_url, s.kannel_username, s.kannel_password,
                             callback_base=callback_base(settings), smsc_id=s.kannel_smsc_id)
    return OutboxOnly()


def notify_settings(settings: Settings) -> NotifySettings:
    s = settings.sms
    return NotifySettings(
        sender=s.sender, signature=s.signature, max_parts=s.max_parts, validity_s=s.validity_s,
        max_attempts=s.max_attempts, concurrency=s.concurrency,
        tenant_rate_per_s=s.tenant_rate_per_s, tenant_burst=s.tenant_burst,
        quiet_hours=s.quiet_hours or None, region=settings.compliance.default_region,
        default_timezone=settings.compliance.default_timezone,
        opt_out_keywords=tuple(s.opt_out_keywords), node=s.node or node_id(settings))


def build_sms_service(settings: Settings, db: Database, clock: Clock,
                      bus: EventBus | None = None) -> SmsService:
    """The service as configured (blocking: opens word lists; call it off the event loop)."""
    s = settings.sms
    registry = word_registry(settings)

    def words(tenant: str) -> Any:
        registry.refresh()
        return registry.filter_for(tenant)

    policy = ContentPolicy(words=words, allowed_domains=tuple(s.allowed_domains))
    templates = TemplateStore(db, policy)
    for t in s.templates:
        try:
            templates.save(SmsTemplate(t.tenant, t.id, t.text, t.signature), clock.wall())
        except ContentRefused as e:
            log.error("sms template %s (tenant %s) from the config not saved: %s", t.id,
                      t.tenant, e)
    rules = []
    for i, r in enumerate(s.rules):
        try:
            rules.append(SmsRule(r.name, r.template, tuple(r.on), r.tenant, r.direction,
                                 r.flow_status, r.last_node, r.when, r.to, r.delay_s,
                                 r.quiet_hours or None, r.purpose))
        except RuleError as e:
            raise ConfigError(f"sms.rules[{i}]: {e}") from e
    rate = None
    if settings.compliance.redis_url:  # a cluster: the tenant rate is shared by every node
        rate = RedisTenantRate.from_url(settings.compliance.redis_url, clock,
                                        s.tenant_rate_per_s)
    return SmsService(Outbox(db), make_gateway(settings, clock), clock,
                      settings=notify_settings(settings), compliance=open_compliance(settings),
                      policy=policy, templates=templates, bus=bus, rules=rules, rate=rate)


class SmsRefused(RuntimeError):
    """The flow node's error port: the reason names the blocked term, list or cap."""


class FlowSmsSender:
    """The ``send_sms`` node's sender on live calls: into the durable outbox.

    The idempotency key is the call, the node and how many times this call passed that node,
    so a flow that loops sends once per pass and nothing is sent twice for one pass."""

    def __init__(self, service: SmsService) -> None:
        self.service = service
        self._passes: dict[tuple[str, str], int] = {}

    async def send(self, to: str, text: str, context: Mapping[str, Any] | None = None) -> str:
        ctx = dict(context or {})
        call_id, node_id = str(ctx.get("call_id", "")), str(ctx.get("node_id", ""))
        key = None
        if call_id:
            n = self._passes.get((call_id, node_id), 0) + 1
            self._passes[(call_id, node_id)] = n
            key = f"node:{call_id}:{node_id}:{n}"
            if len(self._passes) > 100_000:
                self._passes.pop(next(iter(self._passes)))
        # The node rendered the text already: send it as it is (no second template pass).
        rec = await self.service.send(SmsRequest(
            to=to, text=text, literal=True, tenant=str(ctx.get("tenant") or "default"),
            call_id=call_id or None, idempotency_key=key, rule=f"flow:{node_id}"[:64]))
        if rec.status == "refused":
            raise SmsRefused(rec.reason)
        return rec.id


async def start_callbacks(settings: Settings, service: SmsService) -> CallbackServer | None:
    if not isinstance(service.gateway, KannelGateway) or not settings.sms.callback_listen:
        return None
    host, port = parse_hostport(settings.sms.callback_listen, 9110)
    server = CallbackServer(service.gateway)
    await server.start(host, port)
    return server
