"""Services flow nodes need from other areas, as small protocols with simulator-safe defaults.

Flows must not import compliance, SMS, speaker-id or HTTP stacks directly: the engine injects
real implementations through :class:`FlowServices`, while the simulator and unit tests run with
the in-memory defaults below. Implementations may be sync or async; nodes call them through
:func:`call_service`, which awaits coroutines and pushes sync calls to a worker thread so a slow
database or a voiceprint model never blocks the event loop.
"""

from __future__ import annotations

import asyncio
import inspect
import itertools
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol, runtime_checkable

from audio.pcm import Pcm
from flows.textmatch import KeywordIntentMatcher
from flows.webhook import AiohttpClient, HttpResponse


async def call_service(fn: Callable[..., Any], *args: Any, inline: bool = False) -> Any:
    """Await ``fn(*args)`` if it is async; otherwise run it in a thread (or inline if cheap)."""
    if inspect.iscoroutinefunction(fn):
        return await fn(*args)
    if inline:
        result = fn(*args)
    else:
        result = await asyncio.to_thread(fn, *args)
    if inspect.isawaitable(result):
        return await result
    return result


# --- black/white lists -------------------------------------------------------------------------


class ListDecision(Protocol):
    @property
    def allowed(self) -> bool: ...

    @property
    def reasons(self) -> Sequence[str]: ...


@runtime_checkable
class ListChecker(Protocol):
    def check(self, number: str, purpose: str, tenant: str, campaign: str | None) -> Any:
        """Returns (or resolves to) a :class:`ListDecision`."""
        ...


@dataclass(frozen=True, slots=True)
class Decision:
    allowed: bool
    reasons: tuple[str, ...] = ()


class StaticListChecker:
    """Allows everyone except the numbers given; the simulator's default."""

    def __init__(self, decisions: Mapping[str, Decision] | None = None) -> None:
        self.decisions = dict(decisions or {})

    def check(self, number: str, purpose: str, tenant: str, campaign: str | None) -> Decision:
        return self.decisions.get(number, Decision(True, ("not listed",)))


class ComplianceListChecker:
    """Adapts ``compliance.ComplianceService.check(..., at)`` to :class:`ListChecker`."""

    def __init__(self, service: Any) -> None:
        self.service = service

    async def check(self, number: str, purpose: str, tenant: str, campaign: str | None) -> Any:
        return await call_service(
            self.service.check, number, purpose, tenant, campaign, datetime.now(UTC)
        )


# --- SMS ---------------------------------------------------------------------------------------


@runtime_checkable
class SmsSender(Protocol):
    def send(self, to: str, text: str, context: Mapping[str, Any] | None = None) -> Any:
        """Returns (or resolves to) the message id. ``context`` says who sends: ``tenant``,
        ``call_id``, ``flow_id``, ``node_id`` (the engine's sender keys and records by it)."""
        ...


class MemorySmsSender:
    """Keeps sent messages in a list (simulator, tests)."""

    def __init__(self, fail_for: Sequence[str] = ()) -> None:
        self.sent: list[tuple[str, str]] = []
        self.fail_for = set(fail_for)
        self._ids = itertools.count(1)

    def send(self, to: str, text: str, context: Mapping[str, Any] | None = None) -> str:
        if to in self.fail_for:
            raise RuntimeError(f"SMS to {to} rejected")
        self.sent.append((to, text))
        return f"sim-{next(self._ids)}"


# --- speaker verification ----------------------------------------------------------------------

SPEAKER_OUTCOMES = ("match", "no_match", "not_enrolled", "insufficient_audio", "error")


class SpeakerResult(Protocol):
    @property
    def outcome(self) -> str:  # one of SPEAKER_OUTCOMES
        ...

    @property
    def score(self) -> float: ...


@dataclass(frozen=True, slots=True)
class SimpleSpeakerResult:
    outcome: str
    score: float = 0.0


@runtime_checkable
class SpeakerVerifier(Protocol):
    """Voiceprints belong to a tenant: nodes pass the call's tenant as ``tenant_id``."""

    def enroll(self, person_id: str, audio_list: Sequence[Pcm | None], *,
               tenant_id: str = "default") -> Any: ...

    def verify(self, person_id: str, audio: Pcm | None, *, tenant_id: str = "default"
               ) -> Any: ...


class StaticSpeakerVerifier:
    """Returns fixed outcomes (simulator/test cases choose them); remembers enrolments."""

    def __init__(self, verify_outcome: str = "match", enroll_outcome: str = "enrolled") -> None:
        if verify_outcome not in SPEAKER_OUTCOMES:
            raise ValueError(f"verify_outcome must be one of {SPEAKER_OUTCOMES}")
        self.verify_outcome = verify_outcome
        self.enroll_outcome = enroll_outcome
        self.enrolled: dict[str, int] = {}

    def enroll(self, person_id: str, audio_list: Sequence[Pcm | None], *,
               tenant_id: str = "default") -> SimpleSpeakerResult:
        if self.enroll_outcome == "enrolled":
            self.enrolled[person_id] = len(audio_list)
        return SimpleSpeakerResult(self.enroll_outcome, 1.0)

    def verify(self, person_id: str, audio: Pcm | None, *,
               tenant_id: str = "default") -> SimpleSpeakerResult:
        score = 0.9 if self.verify_outcome == "match" else 0.2
        return SimpleSpeakerResult(self.verify_outcome, score)


# --- intents -----------------------------------------------------------------------------------


class IntentMatcher(Protocol):
    """Maps recognised text to one of a node's intents (default: :class:`KeywordIntentMatcher`,
    which segments Chinese). Nodes call it through :func:`call_service`, off the event loop."""

    def match(self, text: str, intents: Mapping[str, Sequence[str]]) -> str | None: ...


# --- content security --------------------------------------------------------------------------


class WordScan(Protocol):
    @property
    def blocked(self) -> bool: ...

    @property
    def hits(self) -> Sequence[Any]: ...


@runtime_checkable
class WordChecker(Protocol):
    def scan(self, text: str) -> WordScan: ...


@dataclass(frozen=True, slots=True)
class SimpleScan:
    blocked: bool
    hits: tuple[str, ...] = ()


class ListWordChecker:
    """Case-insensitive substring check against a word list (default: empty list)."""

    def __init__(self, words: Sequence[str] = ()) -> None:
        self.words = tuple(w.lower() for w in words if w)

    def scan(self, text: str) -> SimpleScan:
        low = text.lower()
        hits = tuple(w for w in self.words if w in low)
        return SimpleScan(bool(hits), hits)


# --- HTTP --------------------------------------------------------------------------------------


class HttpClient(Protocol):
    async def request(
        self, method: str, url: str, headers: Mapping[str, str], body: bytes | None
    ) -> HttpResponse: ...


# --- subflows ----------------------------------------------------------------------------------


class FlowResolver(Protocol):
    def get(self, flow_id: str, tenant: str = "default") -> Mapping[str, Any] | None:
        """The published document of ``flow_id`` in ``tenant`` (the flow a subflow node calls).
        May block (a database read): the interpreter calls it off the event loop."""
        ...


class MapFlowResolver:
    """Subflows from documents in memory (the simulator and ``ivr flow test``)."""

    def __init__(self, flows: Mapping[str, Mapping[str, Any]] | None = None) -> None:
        self.flows = dict(flows or {})

    def get(self, flow_id: str, tenant: str = "default") -> Mapping[str, Any] | None:
        return self.flows.get(flow_id)


@dataclass(slots=True)
class FlowServices:
    """Everything nodes reach outside the call; defaults are safe for the simulator."""

    lists: ListChecker = field(default_factory=StaticListChecker)
    sms: SmsSender = field(default_factory=MemorySmsSender)
    speaker: SpeakerVerifier = field(default_factory=StaticSpeakerVerifier)
    intents: IntentMatcher = field(default_factory=KeywordIntentMatcher)
    words: WordChecker = field(default_factory=ListWordChecker)
    http: HttpClient = field(default_factory=AiohttpClient)
    flows: FlowResolver = field(default_factory=MapFlowResolver)
