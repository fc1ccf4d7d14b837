"""The composition root: builds the engine's services from the configuration.

The only place that knows every area: the flow router (routes in SQLite, then ``[flows].routes``,
then the default sample flow), and the services flows reach (lists and words from
``compliance``, voiceprints from ``speaker_id``, speech from ``asr``) when those packages are
configured. Each area stays a library; this module only connects them.
"""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from app.compliance_setup import open_compliance, word_registry
from app.config import Settings
from app.speaker_setup import open_speaker_service
from app.speech import SpeechService, tts_word_check
from compliance.wordlist import WordRegistry
from compliance.words import WordFilter
from core.bus import EventBus
from core.call import ListenSpec
from core.clock import Clock
from engine.controller import Router
from flows.callapp import flow_router
from flows.document import load_flow_file
from flows.expr import ExprError
from flows.interpreter import Limits
from flows.routing import FlowRouter, StoreFlowResolver
from flows.services import ComplianceListChecker, FlowServices, SmsSender
from flows.store import FlowStore, UnknownFlow
from flows.template import compile_template
from flows.validator import CompiledFlow, FlowInvalid, compile_flow
from speaker_id.store import generate_key
from storage import Database

if TYPE_CHECKING:
    from asr.tts.service import TtsService

log = logging.getLogger("ivr.wiring")


class RegistryWordChecker:
    """Sensitive-word checks for prompts and SMS through the hot-reloaded word registry."""

    def __init__(self, registry: WordRegistry, tenant: str) -> None:
        self.registry = registry
        self.tenant = tenant

    def scan(self, text: str) -> Any:
        self.registry.refresh()  # cheap version check; picks up edits made by other nodes
        return self.registry.filter_for(self.tenant).scan(text)


def precompile_words(words: RegistryWordChecker) -> WordFilter | None:
    """Compile the engine tenant's word filter at start, before the engine answers and before
    its ``gc.freeze()``: the first call does not wait for the compile (seconds for a 100k-term
    list), and what a compile loads for good (pypinyin's phrase dictionaries: ~200k lists, +70
    MB) stays out of the collector's full scans, which otherwise pause every call's audio for
    40-90 ms (docs/benchmarks.md, "Word filter and the collector"). Later compiles (word
    changes) hold no tracked objects. A list that does not compile is left to the first scan,
    which reports it where the engine's start could not."""
    started = time.perf_counter()
    try:
        wf = words.registry.filter_for(words.tenant)
    except Exception:
        log.exception("sensitive words: the filter did not compile at start")
        return None
    took = time.perf_counter() - started
    if took > 1.0:
        log.info("sensitive words: %d terms compiled in %.1f s", wf.term_count, took)
    return wf


def speaker_key(settings: Settings) -> str:
    """The voiceprint key: from config/env, else a local key file made on first run.

    A single-box install must not refuse voiceprint nodes for want of a key, but the key must
    never be a constant: it is generated once into ``var/speaker.key`` (mode 0600). Operators
    set ``IVR_SPEAKER__ENCRYPTION_KEY`` (from ``ivr speaker keygen``) in production.
    """
    if settings.speaker.encryption_key:
        return settings.speaker.encryption_key
    path = Path(settings.storage.recordings_dir).parent / "speaker.key"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(generate_key())
        log.warning("no speaker.encryption_key configured: generated %s (back it up; set "
                    "IVR_SPEAKER__ENCRYPTION_KEY in production)", path)
    return path.read_text().strip()


def flow_services(settings: Settings, words: RegistryWordChecker,
                  sms: SmsSender | None = None, *, clock: Clock | None = None,
                  bus: EventBus | None = None) -> FlowServices:
    """The real services behind flow nodes (the simulator keeps FlowServices' test doubles);
    ``sms``: the engine's outbox (``app.sms_setup.FlowSmsSender``). With a clock, the
    ``detect_machine`` node listens for real (campaigns.amd_call)."""
    from asr.vad import make_vad  # noqa: PLC0415 - see speech_service
    from campaigns.amd_call import CallMachineDetector  # noqa: PLC0415
    from campaigns.optout import ComplianceOptOut  # noqa: PLC0415

    speaker_settings = settings.model_copy(deep=True)
    speaker_settings.speaker.encryption_key = speaker_key(settings)
    compliance = open_compliance(settings)
    services = FlowServices(
        lists=ComplianceListChecker(compliance),
        words=words,
        speaker=open_speaker_service(speaker_settings),
        opt_out=ComplianceOptOut(compliance, bus),
    )
    if clock is not None:
        vad = settings.campaigns.amd_vad
        services.amd = CallMachineDetector(clock, vad=lambda: make_vad(vad))
    if sms is not None:
        services.sms = sms
    return services


def build_tts(settings: Settings, words: RegistryWordChecker) -> TtsService:
    """The prompt voice: the same for calls and for the console's simulator, so what ops
    staff hear there is what callers will (voice, cache, sensitive-word masking)."""
    from asr.tts.service import TtsService  # noqa: PLC0415 - asr loads with the engine

    t = settings.tts
    return TtsService(settings.storage.prompt_cache_dir, t.piper_voice_path, t.espeak_voice,
                      mandarin_voice=t.mandarin_voice, text_check=tts_word_check(words),
                      memory_items=t.memory_prompts, kokoro_model_path=t.kokoro_model_path,
                      kokoro_threads=t.kokoro_threads)


def speech_service(settings: Settings, clock: Clock, words: RegistryWordChecker,
                   bus: EventBus | None = None) -> SpeechService:
    # asr pulls scipy and model runtimes: imported when an engine starts, not with the CLI.
    from asr.bargein import BargeInConfig  # noqa: PLC0415
    from asr.pool import InferencePool  # noqa: PLC0415

    asr = settings.asr
    tts = build_tts(settings, words)
    pool = InferencePool(asr.pool_workers, max_pending=asr.pool_max_pending, clock=clock)
    return SpeechService(
        tts, pool, clock, vad_kind=asr.vad, vad_model_path=asr.vad_model_path,
        default_engine=asr.default_engine,
        model_paths={"whisper": asr.whisper_model_path,
                     "whisper-base": asr.whisper_base_model_path,
                     "pocketsphinx": asr.pocketsphinx_model_path, "vosk": asr.vosk_model_path},
        barge_in=BargeInConfig(min_speech_ms=asr.barge_in_min_speech_ms,
                               min_words=asr.barge_in_min_words),
        bus=bus,
        listen_options={"grammar_hangover_ms": asr.grammar_hangover_ms,
                        "min_speech_ms": asr.min_speech_ms, "max_listen_s": asr.max_listen_s,
                        "final_timeout_s": asr.final_timeout_s,
                        "nomatch_threshold": asr.nomatch_threshold,
                        "grammar_prompt": asr.grammar_prompt})


def build_services(settings: Settings, db: Database, clock: Clock, bus: EventBus,
                   sms: SmsSender | None = None) -> tuple[Router, SpeechService]:
    """Everything a running engine needs beyond SIP and media: flows and speech."""
    words = RegistryWordChecker(word_registry(settings), settings.flows.tenant)
    precompile_words(words)
    return (build_router(settings, db, clock, words, bus, sms=sms),
            speech_service(settings, clock, words, bus))


PROJECT_ROOT = Path(__file__).resolve().parents[1]


def resolve_path(path: str) -> Path:
    """A configured relative path: from the working directory, else from the project root
    (so ``ivr run`` finds the bundled sample flow wherever it is started)."""
    p = Path(path)
    if p.is_absolute() or p.exists():
        return p
    return PROJECT_ROOT / p


def static_prompts(compiled: CompiledFlow) -> list[tuple[str, str]]:
    """(text, language) of every prompt in a flow that needs no variables: these can be
    rendered before any caller waits for them."""
    language = compiled.flow.language
    out: list[tuple[str, str]] = []
    for node in compiled.nodes.values():
        for field, src in node.templates():
            if not field.endswith("prompt.text"):
                continue
            try:
                tpl = compile_template(src)
            except ExprError:
                continue
            literal = [p for p in tpl.parts if isinstance(p, str)]
            if len(literal) == len(tpl.parts):  # no {{ variables }}
                out.append(("".join(literal), language))
    return out


def prompts_to_prewarm(settings: Settings, db: Database) -> list[tuple[str, str]]:
    """Static prompts of the default flow and of every published flow's latest version."""
    seen: dict[tuple[str, str], None] = {}
    for compiled in _live_flows(settings, db):
        for item in static_prompts(compiled):
            seen.setdefault(item)
    return list(seen)


def recognisers_to_preload(settings: Settings, db: Database) -> list[str]:
    """The recognisers the live flows' menu and listen nodes will use (by mode and language),
    so their models load at start-up instead of during a caller's first turn (~2-7 s)."""
    from asr.listen import engine_for  # noqa: PLC0415 - asr loads with the engine

    names: dict[str, None] = {}
    for compiled in _live_flows(settings, db):
        for node in compiled.nodes.values():
            params = node.params
            if node.type_name == "menu":
                if not (params.speech if params.speech is not None
                        else any(o.keywords for o in params.options)):
                    continue
                spec = ListenSpec(mode="keywords", keywords=("x",))
            elif node.type_name == "listen":
                spec = ListenSpec(mode=params.mode, keywords=("x",), grammar="x",
                                  engine=params.engine)
            elif node.type_name == "collect_digits" and params.speech:
                spec = ListenSpec(mode="digits", engine=params.engine)
            else:
                continue
            language = getattr(params, "language", None) or compiled.flow.language
            spec = ListenSpec(mode=spec.mode, keywords=spec.keywords, grammar=spec.grammar,
                              engine=spec.engine, language=language)
            names.setdefault(engine_for(spec, settings.asr.default_engine))
    return list(names)


def _live_flows(settings: Settings, db: Database) -> list[CompiledFlow]:
    flows: list[CompiledFlow] = []
    default = resolve_path(settings.flows.default_flow)
    if default.exists():
        try:
            flows.append(compile_flow(load_flow_file(default)))
        except (FlowInvalid, ValueError) as e:
            log.warning("default flow %s is not valid: %s", default, e)
    store = FlowStore(db)
    for row in store.list_flows(tenant=settings.flows.tenant):
        try:
            flows.append(store.get(row["flow_id"], tenant=settings.flows.tenant).compile())
        except (UnknownFlow, FlowInvalid, KeyError):
            continue
    return flows


def build_router(settings: Settings, db: Database, clock: Clock,
                 words: RegistryWordChecker, bus: EventBus, *, sms: SmsSender | None = None
                 ) -> Router:
    """Routes calls to flows; flow events (``flow.start/node/end``) go on the engine's bus,
    where the call record, metrics and the console's live view read them."""
    store = FlowStore(db)
    router = FlowRouter(store, config_routes=settings.flows.routes,
                        default_flow=resolve_path(settings.flows.default_flow),
                        tenant=settings.flows.tenant)
    services = flow_services(settings, words, sms, clock=clock, bus=bus)
    services.flows = StoreFlowResolver(store)
    return flow_router(router, clock=clock, services=services, events=bus,
                       limits=Limits(max_steps=settings.flows.max_steps_per_call,
                                     max_visits_in_a_row=settings.flows.max_visits_in_a_row))
