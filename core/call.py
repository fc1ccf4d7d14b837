"""The ``Call`` interface: what flows, the CLI and the demo drive, independent of SIP.

The engine implements it over its own SIP/RTP stack (``engine.sipcall``) and, later, over
Asterisk AMI; the flow simulator implements it over a text/DTMF channel. Flows import only this
module (and ``core``). Audio is 8 kHz mono int16 PCM in 20 ms frames (:mod:`audio.pcm`).

Results are small frozen dataclasses so a flow node can map them to an outcome port without
knowing which implementation produced them.
"""

from __future__ import annotations

import enum
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any, Literal, Protocol, runtime_checkable

from audio.pcm import Pcm


class BargeIn(enum.Flag):
    """What may interrupt a prompt."""

    NONE = 0
    DTMF = enum.auto()
    SPEECH = enum.auto()
    ANY = DTMF | SPEECH


# --- events on a call's stream -----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AudioFrameEvent:
    """20 ms of caller audio (8 kHz int16), after the jitter buffer and decoding."""

    pcm: Pcm
    timestamp: float  # clock time the frame was released to listeners


@dataclass(frozen=True, slots=True)
class DtmfEvent:
    digit: str  # 0-9 * # A-D
    source: Literal["rfc4733", "info", "inband", "simulated", "asterisk"]  # asterisk: AudioSocket
    duration_ms: int
    timestamp: float


@dataclass(frozen=True, slots=True)
class HangupEvent:
    cause: str  # normal, busy, no_answer, media_timeout, error, ...
    side: Literal["caller", "engine", "callee", "system"]
    timestamp: float


CallEvent = AudioFrameEvent | DtmfEvent | HangupEvent


# --- results -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PlayResult:
    completed: bool  # played to the end
    interrupted_by: Literal["dtmf", "speech", "hangup"] | None = None
    digit: str | None = None  # the digit that barged in, kept for the next collect
    played_ms: int = 0


@dataclass(frozen=True, slots=True)
class DigitSpec:
    min_digits: int = 1
    max_digits: int = 1
    terminator: str | None = "#"
    first_digit_timeout_s: float = 5.0
    inter_digit_timeout_s: float = 3.0
    sensitive: bool = False  # masked in traces and logs (PINs, card numbers)


@dataclass(frozen=True, slots=True)
class DigitsResult:
    digits: str
    reason: Literal["max_digits", "terminator", "timeout", "no_input", "hangup"]


@dataclass(frozen=True, slots=True)
class ListenSpec:
    """What to listen for. ``grammar``/``keywords`` select constrained recognition; ``digits``
    a spoken digit string ("one three eight", "幺三八") returned as digits in ``text`` ("138")."""

    mode: Literal["free", "keywords", "grammar", "digits"] = "free"
    keywords: tuple[str, ...] = ()
    grammar: str | None = None  # JSGF text
    language: str = "en-US"
    no_input_timeout_s: float = 5.0
    max_speech_s: float = 15.0
    endpoint_silence_ms: int = 300
    allow_dtmf: bool = True
    engine: str | None = None
    budget_ms: int | None = None
    sensitive: bool = False  # masked in traces and logs (a PIN said aloud)


@dataclass(frozen=True, slots=True)
class ListenResult:
    """``nomatch``: the caller said something the grammar/keywords do not cover (VoiceXML
    ``nomatch``), distinct from ``no_input`` (silence) and ``error``; ``heard`` then holds what
    the recogniser understood, for the trace."""

    status: Literal["ok", "no_input", "nomatch", "dtmf", "error", "hangup", "timeout"]
    text: str = ""
    confidence: float = 0.0
    alternatives: tuple[str, ...] = ()
    digit: str | None = None  # when the caller pressed a key instead of speaking
    audio: Pcm | None = None  # the utterance (8 kHz), for speaker verification
    timings: dict[str, float] = field(default_factory=dict)  # speech_end, final, ...
    error: str | None = None
    heard: str = ""  # the free hypothesis behind a grammar result or a nomatch
    language: str = ""  # what the recogniser decoded (detected when the node said "auto")


@dataclass(frozen=True, slots=True)
class RecordResult:
    path: Path | None
    duration_s: float
    reason: Literal["max_length", "silence", "dtmf", "hangup"]


@dataclass(frozen=True, slots=True)
class TransferResult:
    status: Literal["transferred", "bridged", "failed"]
    detail: str = ""


# --- trace -------------------------------------------------------------------------------------


@dataclass(slots=True)
class TraceEntry:
    at: float  # wall clock (epoch seconds)
    kind: str  # e.g. "answer", "play.start", "dtmf", "node.enter"
    data: dict[str, Any] = field(default_factory=dict)


class CallTrace:
    """An append-only record of what happened when, stored with the call record.

    ``wall`` is the call's clock (``Clock.wall``), so traces made on a ``FakeClock`` carry the
    fake time like every other timestamp of the call."""

    def __init__(self, wall: Callable[[], float]) -> None:
        self.entries: list[TraceEntry] = []
        self._wall = wall

    def add(self, kind: str, **data: Any) -> None:
        self.entries.append(TraceEntry(self._wall(), kind, data))

    def as_list(self) -> list[dict[str, Any]]:
        return [{"at": e.at, "kind": e.kind, **e.data} for e in self.entries]


# --- the caller's verified identity ----------------------------------------------------------

VERSTAT_PASSED = "TN-Validation-Passed"
VERSTAT_FAILED = "TN-Validation-Failed"
VERSTAT_NONE = "No-TN-Validation"

#: What a flow reads as ``identity`` when nothing verified the calling number: no Identity
#: header, inbound verification off, an outbound call, the simulator. The keys are always the
#: same, so ``identity.verstat == "TN-Validation-Passed"`` never fails on a missing key.
#: ``verstat`` takes 3GPP TS 24.229's values (``VERSTAT_*``); ``name`` and ``call_reason`` are
#: the RFC 9795 Rich Call Data a verified PASSporT carried (empty unless it passed).
UNVERIFIED_IDENTITY: Mapping[str, str] = MappingProxyType({
    "verstat": VERSTAT_NONE, "reason": "", "name": "", "call_reason": "", "logo": "",
    "attest": "", "ppt": ""})


# --- the protocol ------------------------------------------------------------------------------

AudioSource = str | Path | Pcm  # a WAV file of any rate, or 8 kHz PCM


@runtime_checkable
class Call(Protocol):
    """One phone call as a flow sees it."""

    call_id: str
    caller: str  # calling number / user part
    callee: str  # dialled number / user part
    trace: CallTrace
    identity: Mapping[str, Any]  # the caller's verified identity (UNVERIFIED_IDENTITY's keys)

    @property
    def is_active(self) -> bool: ...

    async def answer(self) -> None: ...

    async def play(self, source: AudioSource, *, barge_in: BargeIn = BargeIn.NONE) -> PlayResult:
        ...

    async def say(
        self,
        text: str,
        *,
        voice: str | None = None,
        language: str | None = None,
        barge_in: BargeIn = BargeIn.NONE,
    ) -> PlayResult: ...

    async def collect_digits(self, spec: DigitSpec) -> DigitsResult: ...

    async def listen(self, spec: ListenSpec) -> ListenResult: ...

    async def record(
        self, max_seconds: float, *, silence_stop_s: float | None = None, beep: bool = True
    ) -> RecordResult: ...

    async def transfer(self, target: str) -> TransferResult: ...

    async def hangup(self, reason: str = "normal") -> None: ...

    def events(self) -> AsyncIterator[CallEvent]:
        """A fresh subscription to this call's audio frames and DTMF/hangup events."""
        ...


class CallHungUp(Exception):
    """Raised by Call methods when the call is gone; flows map it to the end of the run."""

    def __init__(self, cause: str = "normal", side: str = "caller") -> None:
        super().__init__(f"call ended ({cause}, {side})")
        self.cause = cause
        self.side = side
