"""Building the console from the configuration: its services (the same ones the CLI uses), the
engine hooks when an engine runs in this process (live events, test calls), and the server.

``ivr run`` starts it next to the engine; ``ivr console`` starts it alone (no live events or test
calls then: the API says so with ``no_engine``).
"""

from __future__ import annotations

import logging
import ssl
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from app.compliance_setup import open_compliance, open_list_store, word_registry, word_store
from app.config import Settings, parse_hostport
from app.wiring import RegistryWordChecker, flow_services, speaker_key
from console.api.app import ConsoleServer
from console.api.context import ConsoleOptions, ConsoleServices
from console.audit import AuditLog
from console.identity import Identity
from console.live import EventHub
from console.services.campaigns import CampaignOps
from console.services.compliance import ListOps, WordOps
from console.services.dashboard import DashboardOps
from console.services.flows import FlowOps
from console.services.inspection import InspectionOps
from console.services.simulator import SimulatorSessions
from console.services.testcalls import CallPlacer, TestCalls
from console.services.users import UserOps
from console.services.voiceprints import VoiceprintOps
from core.bus import EventBus
from core.clock import Clock, SystemClock
from engine.cdr import CallRecords
from engine.cdr_stats import CallStatistics
from engine.sip.uri import SipUri
from flows.callapp import flow_app
from flows.drafts import DraftStore, FlowTestStore
from flows.interpreter import Limits
from flows.routing import StoreFlowResolver
from flows.store import FlowStore
from flows.validator import CompiledFlow
from storage import Database

if TYPE_CHECKING:
    from app.engine import Engine

log = logging.getLogger("ivr.console")


class EngineCallPlacer:
    """Test calls on the running engine: originate with the flow's interpreter as the call's
    application, the same services live calls get, and events on the engine's bus."""

    def __init__(self, engine: Engine, settings: Settings) -> None:
        self.engine = engine
        assert engine.db is not None
        words = RegistryWordChecker(word_registry(settings), settings.flows.tenant)
        self.services = flow_services(_with_speaker_key(settings), words)
        self.services.flows = StoreFlowResolver(FlowStore(engine.db))
        self.limits = Limits(max_steps=settings.flows.max_steps_per_call,
                             max_visits_in_a_row=settings.flows.max_visits_in_a_row)

    async def place(self, target: str, flow: CompiledFlow, *, tenant: str, call_id: str,
                    from_user: str, ring_timeout_s: float) -> dict[str, Any]:
        """On the engine's own SIP when it runs, else through Asterisk (``--backend
        asterisk``): there the SIP URI's user part is the number ``dial_template`` dials."""
        controller, asterisk = self.engine.controller, self.engine.asterisk
        if controller is None and asterisk is None:
            raise RuntimeError("the engine is not running")
        app = flow_app(flow, tenant, clock=self.engine.clock, services=self.services,
                       limits=self.limits, events=self.engine.bus)
        if controller is not None:
            record = await controller.originate(target, app, from_user=from_user,
                                                ring_timeout_s=ring_timeout_s, tenant=tenant,
                                                call_id=call_id)
        else:
            assert asterisk is not None
            user = SipUri.parse(target).user if target.startswith(("sip:", "sips:")) else None
            number = user or target
            record = await asterisk.originate(number, app, caller_id=from_user,
                                              ring_timeout_s=ring_timeout_s, tenant=tenant,
                                              call_id=call_id)
        return record.as_dict()


def _with_speaker_key(settings: Settings) -> Settings:
    copy = settings.model_copy(deep=True)
    copy.speaker.encryption_key = speaker_key(settings)
    return copy


def flow_ops(settings: Settings, db: Database) -> FlowOps:
    """Flows as the console and ``ivr flow`` change them (publishing checks the tenant's
    words: the operator's global list plus the tenant's own)."""
    registry = word_registry(settings)
    return FlowOps(FlowStore(db), DraftStore(db), FlowTestStore(db), AuditLog(db),
                   lambda tenant: RegistryWordChecker(registry, tenant))


def list_ops(settings: Settings, db: Database) -> ListOps:
    return ListOps(open_list_store(settings), open_compliance(settings), AuditLog(db),
                   settings.compliance.default_region)


def word_ops(settings: Settings, db: Database) -> WordOps:
    return WordOps(word_store(settings, db), word_registry(settings), AuditLog(db))


def simulator_voice(settings: Settings, registry: Any) -> Callable[[str], bytes]:
    """Text -> WAV bytes with the engine's prompt voice (blocking: the simulator runs it in an
    executor). The voice loads on first use, not when the console starts."""
    from app.wiring import build_tts  # noqa: PLC0415 - asr loads on first use
    from asr.tts import TtsError  # noqa: PLC0415
    from audio.wavio import wav_bytes  # noqa: PLC0415

    holder: list[Any] = []

    def speak(text: str) -> bytes:
        if not holder:
            holder.append(build_tts(settings, RegistryWordChecker(registry,
                                                                  settings.flows.tenant)))
        try:
            return wav_bytes(holder[0].render(text).pcm)
        except TtsError as e:  # a blocked word, an unusable voice: said, not a 500
            raise ValueError(str(e)) from e

    return speak


def build_console(settings: Settings, db: Database, *, clock: Clock | None = None,
                  bus: EventBus | None = None, placer: CallPlacer | None = None,
                  identity: Identity | None = None) -> ConsoleServices:
    """The console's services over ``db`` (the process's one database)."""
    from app.speaker_setup import open_speaker_service  # noqa: PLC0415 - scipy, lazily
    from flows.schemagen import flow_schema  # noqa: PLC0415

    clock = clock or SystemClock()
    c = settings.console
    audit = AuditLog(db, clock)
    identity = identity or Identity(db, clock=clock, idle_s=c.session_idle_s,
                                    max_s=c.session_max_s)
    registry = word_registry(settings)
    flows = FlowOps(FlowStore(db), DraftStore(db), FlowTestStore(db), audit,
                    lambda tenant: RegistryWordChecker(registry, tenant))
    try:
        voiceprints: VoiceprintOps | None = VoiceprintOps(
            open_speaker_service(_with_speaker_key(settings)), audit)
    except ValueError as e:  # a malformed key: the rest of the console still works
        log.error("voiceprints not available in the console: %s", e)
        voiceprints = None
    options = ConsoleOptions(
        cookie_secure=c.cookie_secure, max_body_bytes=c.max_body_bytes,
        max_upload_bytes=c.max_upload_bytes, login_attempts=c.login_attempts,
        login_window_s=c.login_window_s, recordings_dir=Path(settings.storage.recordings_dir))
    hub = EventHub(bus) if bus is not None else None
    return ConsoleServices(
        identity=identity, audit=audit, users=UserOps(identity, audit),
        calls=CallRecords(db), flows=flows,
        simulator=SimulatorSessions(flows, clock, speak=simulator_voice(settings, registry)),
        testcalls=TestCalls(flows, placer, clock, allowed_targets=list(c.test_call_targets),
                            gateway=c.test_call_gateway, from_user=c.test_call_from),
        words=WordOps(word_store(settings, db), registry, audit),
        lists=ListOps(open_list_store(settings), open_compliance(settings), audit,
                      settings.compliance.default_region),
        voiceprints=voiceprints, hub=hub,
        inspection=InspectionOps(db, audit),
        campaigns=campaign_ops(settings, db, clock, audit),
        dashboard=DashboardOps(CallStatistics(db), lambda: hub.live if hub else None,
                               clock.wall),
        flow_schema=flow_schema(), clock=clock, options=options)


def campaign_ops(settings: Settings, db: Database, clock: Clock, audit: AuditLog
                 ) -> CampaignOps:
    """Campaigns through the CLI's service (the engine's runner picks up what changes)."""
    from app.campaign_setup import campaign_service  # noqa: PLC0415

    return CampaignOps(campaign_service(settings, db, clock), audit)


def tls_context(settings: Settings) -> ssl.SSLContext | None:
    c = settings.console
    if not (c.tls_cert and c.tls_key):
        return None
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(c.tls_cert, c.tls_key)
    return ctx


async def start_console(settings: Settings, svc: ConsoleServices
                        ) -> tuple[ConsoleServer, str, str | None]:
    """Start the server on ``[console] listen``; returns it, its URL, and the generated
    password of the first admin when this start created one (print it once)."""
    import asyncio  # noqa: PLC0415

    assert settings.console.listen
    password = await asyncio.to_thread(svc.identity.bootstrap_admin,
                                       settings.console.bootstrap_admin)
    server = ConsoleServer(svc)
    host, port = parse_hostport(settings.console.listen, 8080)
    tls = tls_context(settings)
    bound_host, bound_port = await server.start(host, port, tls)
    scheme = "https" if tls else "http"
    shown = f"[{bound_host}]" if ":" in bound_host else bound_host
    return server, f"{scheme}://{shown}:{bound_port}/", password
