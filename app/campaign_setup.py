"""Building the campaign service (CLI, console) and the dialler runner (``ivr run``).

The runner dials through the engine's own SIP stack (:class:`campaigns.dialler.
ControllerDialler`) or the Asterisk backend (:class:`engine.ami.dialler.AsteriskDialler`, per
``[campaigns] backend``), checks numbers with the compliance service as configured (SQL or Redis
lists, caps), runs the campaigns' flow versions with the same services inbound flows get (SMS
outbox, lists, words, opt-out, machine detection), and signs branded caller ID with the
``[callerid]`` key when a campaign asks for it.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from app.compliance_setup import open_compliance, word_registry
from app.config import Settings
from campaigns.dialler_lease import DiallerLease
from campaigns.service import CampaignService
from campaigns.store import CampaignStore
from campaigns.trunks import Trunk
from core.clock import Clock
from flows.interpreter import Limits
from flows.store import FlowStore
from storage import Database

if TYPE_CHECKING:
    from app.speech import SpeechService
    from campaigns.branding import IdentityChecker
    from campaigns.dialler import Dialler
    from campaigns.runner import CampaignRunner
    from core.bus import EventBus
    from engine.ami.controller import AsteriskController
    from engine.controller import CallController
    from flows.validator import CompiledFlow
    from notify.service import SmsService

log = logging.getLogger("ivr.campaigns")


def campaign_service(settings: Settings, db: Database, clock: Clock, *,
                     on_change: Any = None) -> CampaignService:
    """Blocking (opens the word lists): call it off the event loop in async code."""
    from notify.content import ContentPolicy, TemplateStore  # noqa: PLC0415

    registry = word_registry(settings)

    def words(tenant: str) -> Any:
        registry.refresh()
        return registry.filter_for(tenant)

    templates = TemplateStore(db, ContentPolicy(words=words))

    def sms_text(tenant: str, template_id: str) -> str | None:
        tpl = templates.get(tenant, template_id)
        return None if tpl is None else f"{tpl.signature} {tpl.text}".strip()

    return CampaignService(CampaignStore(db), FlowStore(db), clock, words=words,
                           sms_template=sms_text, region=settings.compliance.default_region,
                           on_change=on_change)


def trunks(settings: Settings) -> list[Trunk]:
    return [Trunk(t.name, t.uri, t.number_format, t.caller_format, t.calls_per_s,
                  t.max_concurrent) for t in settings.campaigns.trunks]


def campaign_dialler(backend: str, controller: CallController | None,
                     asterisk: AsteriskController | None) -> Dialler | None:
    """The backend that places campaign calls (``[campaigns] backend``): the engine's own SIP
    stack, or the Asterisk backend's AMI Originate (engine/ami/dialler.py); None if the one
    asked for is not running (campaigns are then stored but not dialled, and the log says so)."""
    from campaigns.dialler import ControllerDialler  # noqa: PLC0415
    from engine.ami.dialler import AsteriskDialler  # noqa: PLC0415

    if backend in ("auto", "sip") and controller is not None:
        return ControllerDialler(controller)
    if backend in ("auto", "asterisk") and asterisk is not None:
        return AsteriskDialler(asterisk)
    log.info("campaigns: the %s backend is not running: campaigns are not dialled", backend)
    return None


def build_runner(settings: Settings, *, db: Database, dialler: Dialler,
                 clock: Clock, bus: EventBus, node: str,
                 sms_service: SmsService | None = None,
                 speech: SpeechService | None = None) -> CampaignRunner | None:
    """The runner for a started engine's parts, or None (disabled, or no trunk to dial
    through). Blocking: call it in a worker thread."""
    from app.wiring import RegistryWordChecker, flow_services, static_prompts  # noqa: PLC0415
    from asr.vad import make_vad  # noqa: PLC0415
    from campaigns.amd_call import CallMachineDetector, campaign_amd  # noqa: PLC0415
    from campaigns.runner import CampaignRunner  # noqa: PLC0415
    from flows.routing import StoreFlowResolver  # noqa: PLC0415

    cfg = settings.campaigns
    if not cfg.enabled:
        return None
    configured = trunks(settings)
    if not configured:
        log.info("campaigns: no [[campaigns.trunks]] configured: campaigns are not dialled")
        return None
    flows = FlowStore(db)
    words = RegistryWordChecker(word_registry(settings), settings.flows.tenant)
    sms = None
    if sms_service is not None:
        from app.sms_setup import FlowSmsSender  # noqa: PLC0415

        sms = FlowSmsSender(sms_service)
    services = flow_services(settings, words, sms, clock=clock, bus=bus)
    services.flows = StoreFlowResolver(flows)
    prewarm = None
    if speech is not None:
        warm = speech

        async def prewarm(flow: CompiledFlow) -> int:  # the flow's static prompts, cached
            return await warm.prewarm(static_prompts(flow))

    detector = CallMachineDetector(clock, vad=lambda: make_vad(cfg.amd_vad))
    shared = None
    if settings.cluster.redis_url:  # pacing budgets shared by every node of the cluster
        from redis.asyncio import Redis  # noqa: PLC0415 - only for a cluster

        from campaigns.shared_pacing import RedisBudgets  # noqa: PLC0415

        shared = RedisBudgets(Redis.from_url(settings.cluster.redis_url), node)
    return CampaignRunner(
        CampaignStore(db), dialler, open_compliance(settings),
        clock, bus, node=node, trunks=configured,
        flows=lambda tenant, fid, version: flows.get(fid, version, tenant=tenant).compile(),
        services=lambda tenant, campaign: services, amd=campaign_amd(detector),
        brander=brander(settings), region=settings.compliance.default_region,
        max_concurrent=cfg.max_concurrent, poll_s=cfg.poll_s, prewarm=prewarm, shared=shared,
        # without Redis, one node of those sharing the database dials (campaigns/dialler_lease.py)
        lease=None if shared is not None else DiallerLease(db, node),
        flow_limits=Limits(max_steps=settings.flows.max_steps_per_call,
                           max_visits_in_a_row=settings.flows.max_visits_in_a_row))


def brander(settings: Settings) -> Any:
    """Signs branded caller ID for campaigns that ask for it, when a key is configured."""
    cfg = settings.callerid
    if not cfg.key_path:
        return None
    from campaigns.branding import Brander  # noqa: PLC0415

    return Brander.from_files(cfg.key_path, cfg.cert_url or "", ppt=cfg.ppt,
                              attest=cfg.attest)


def identity_checker(settings: Settings, clock: Clock) -> IdentityChecker | None:
    """Verifies incoming calls' Identity headers (``[callerid] verify_inbound``), or None.
    Blocking (reads the certificates): call it in a worker thread."""
    cfg = settings.callerid
    if not cfg.verify_inbound:
        return None
    from campaigns.branding import IdentityChecker  # noqa: PLC0415

    return IdentityChecker.from_config(cfg.trust_anchors, cfg.certs, cfg.max_age_s,
                                       clock.wall, reject_invalid=cfg.reject_invalid)
