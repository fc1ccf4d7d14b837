"""What every backend's ``Call`` shares: prompts, keys, speech, recording, the caller's feed.

A call over the engine's own SIP/RTP (:class:`engine.sipcall.SipCall`) and a call on an
operator's Asterisk over AMI + AudioSocket (:class:`engine.ami.call.AsteriskCall`) differ in
signalling only: how a call is answered, transferred and hung up, and how its end is learnt.
Everything a flow can observe besides that (prompt playback and barge-in, type-ahead, the
one-DTMF-method rule, ``listen`` and its latency ledger, message recording, ``events()``) is
implemented once, here, over a :class:`~engine.media.subscription.MediaFeed`, so a flow cannot
tell the backends apart. Every blocking method races the call's end: when the far side hangs up,
whatever the flow awaits raises :class:`CallHungUp` at once.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Mapping
from pathlib import Path
from typing import Any, Protocol, TypeVar

import numpy as np

from audio.pcm import Pcm
from audio.tones import beep as beep_tone
from core.call import (
    UNVERIFIED_IDENTITY,
    AudioSource,
    BargeIn,
    CallEvent,
    CallHungUp,
    CallTrace,
    DigitSpec,
    DigitsResult,
    DtmfEvent,
    ListenResult,
    ListenSpec,
    PlayResult,
    RecordResult,
    TransferResult,
)
from core.clock import Clock
from core.tasks import awaited
from engine.digits import DigitBuffer
from engine.media.prompts import PromptCache
from engine.media.subscription import MediaFeed
from engine.sipcall.caller_audio import CallerAudio
from engine.sipcall.message import record_message
from engine.sipcall.playback import PromptPlayer
from engine.sipcall.turns import Turn, TurnTracker

log = logging.getLogger("ivr.call")
T = TypeVar("T")


class CallEnd(Protocol):
    """How a call ended, as its ``ended`` future reports it."""

    @property
    def cause(self) -> str: ...

    @property
    def side(self) -> str: ...


class SpeechHooks(Protocol):
    """What ``say``, ``listen`` and speech barge-in need from the speech layer (``asr``)."""

    async def synthesize(self, text: str, voice: str | None, language: str | None) -> Pcm: ...

    async def listen(self, call: MediaCall, spec: ListenSpec) -> tuple[ListenResult, Turn | None]:
        """The result, and the caller's turn when it still awaits its answer (latency)."""
        ...

    def barge_in_watcher(self, call: MediaCall) -> Coroutine[Any, Any, Any]: ...

    def finish_turn(self, turn: Any) -> dict[str, Any]: ...


class MediaCall:
    """The backend-neutral half of a ``Call``; subclasses add answer, transfer, hangup and the
    ``ended`` future (resolved with a :class:`CallEnd` when the call is over)."""

    answered: bool

    def __init__(self, *, call_id: str, caller: str, callee: str, media: MediaFeed, clock: Clock,
                 prompts: PromptCache, recordings_dir: Path,
                 speech: SpeechHooks | None = None) -> None:
        self.call_id = call_id
        self.caller = caller
        self.callee = callee
        self.clock = clock
        self.prompts = prompts
        self.speech = speech
        self.recordings_dir = recordings_dir
        self.trace = CallTrace(clock.wall)
        # set by the controller from the INVITE's Identity headers (engine.identity)
        self.identity: Mapping[str, Any] = UNVERIFIED_IDENTITY
        self.digits = DigitBuffer(clock)
        self._feed = media
        self._dtmf_method: str | None = None  # the first DTMF method the phone used
        self.turns = TurnTracker(clock.now, self.trace,
                                 speech.finish_turn if speech is not None else None)
        self.audio = CallerAudio(media, self._race, clock.now)
        self.player = PromptPlayer(
            call_id=call_id, media=media, digits=self.digits, trace=self.trace, audio=self.audio,
            turns=self.turns, now=clock.now, race=self._race,
            watch_speech=(lambda: speech.barge_in_watcher(self)) if speech is not None else None)

    # -- what a backend provides -----------------------------------------------------------------

    @property
    def is_active(self) -> bool:
        raise NotImplementedError

    @property
    def ended(self) -> asyncio.Future[Any]:
        raise NotImplementedError

    async def answer(self) -> None:
        raise NotImplementedError

    async def transfer(self, target: str) -> TransferResult:
        raise NotImplementedError

    async def hangup(self, reason: str = "normal") -> None:
        raise NotImplementedError

    # -- state ---------------------------------------------------------------------------------

    @property
    def current_node(self) -> str:
        """The flow node running now (from the trace), for the latency ledger."""
        for entry in reversed(self.trace.entries):
            if entry.kind == "node.enter":
                return str(entry.data.get("node_id", ""))
        return ""

    def _on_dtmf(self, ev: DtmfEvent) -> None:
        """One key press, from whichever method the phone uses. Phones such as linphone send
        every key both as RFC 4733 events and as SIP INFO (and some also in-band): the first
        method to deliver a digit becomes the call's, and the others' digits are ignored, so a
        key counts once. A phone that uses one method throughout is unaffected."""
        if self._dtmf_method is None:
            self._dtmf_method = ev.source
        elif ev.source != self._dtmf_method:
            self.trace.add("dtmf.ignored", digit=ev.digit, source=ev.source,
                           method=self._dtmf_method)
            return
        self.digits.push(ev.digit)
        self.trace.add("dtmf", digit=ev.digit, source=ev.source)
        self.player.on_digit()

    async def _race(self, aw: Awaitable[T]) -> T:
        """Await ``aw`` unless the call ends first (then raise CallHungUp)."""
        if not self.is_active:
            if asyncio.iscoroutine(aw):
                aw.close()  # never started: no "coroutine was never awaited" warning
            raise self._hung_up()
        work = awaited(aw, f"call-{self.call_id}")
        waiters: set[asyncio.Future[Any]] = {work, self.ended}
        try:
            done, _ = await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
        finally:  # we were cancelled (shutdown): asyncio.wait leaves ``work`` running
            if not work.done():
                work.cancel()
        if work in done:
            return work.result()
        raise self._hung_up()

    def _hung_up(self) -> CallHungUp:
        if self.ended.done():
            end: CallEnd = self.ended.result()
            return CallHungUp(end.cause, end.side)
        return CallHungUp("normal", "caller")

    # -- Call protocol -------------------------------------------------------------------------

    async def play(self, source: AudioSource, *, barge_in: BargeIn = BargeIn.NONE) -> PlayResult:
        await self.answer()
        turn = self.turns.begin_answer()
        if isinstance(source, str | Path):
            pcm = await self.prompts.load(source)
            label: str = str(source)
        else:
            pcm, label = np.asarray(source, dtype=np.int16), "pcm"
        return await self.player.play(pcm, label, barge_in, turn)

    async def play_pcm(self, pcm: Pcm, label: str, barge_in: BargeIn) -> PlayResult:
        """Play raw 8 kHz PCM (tones, a bridged leg's audio) without touching the turn."""
        return await self.player.play(pcm, label, barge_in)

    async def say(self, text: str, *, voice: str | None = None, language: str | None = None,
                  barge_in: BargeIn = BargeIn.NONE) -> PlayResult:
        await self.answer()
        if self.speech is None:
            raise RuntimeError("no text-to-speech configured for this engine")
        turn = self.turns.begin_answer()  # synthesis time counts in the caller's wait
        pcm = await self._race(self.speech.synthesize(text, voice, language))
        return await self.player.play(pcm, f"tts:{text[:40]}", barge_in, turn)

    async def collect_digits(self, spec: DigitSpec) -> DigitsResult:
        await self.answer()
        result = await self._race(self.digits.collect(spec))
        shown = "*" * len(result.digits) if spec.sensitive else result.digits
        self.trace.add("digits", digits=shown, reason=result.reason)
        return result

    async def listen(self, spec: ListenSpec) -> ListenResult:
        await self.answer()
        if self.speech is None:
            return ListenResult("error", error="no speech recognition configured")
        result, turn = await self._race(self.speech.listen(self, spec))
        if turn is not None:
            self.turns.pending = turn  # completed by the answer's first audio packet
        shown = "*" * len(result.text) if spec.sensitive and result.text else result.text
        self.trace.add("listen", status=result.status, text=shown,
                       confidence=round(result.confidence, 3))
        return result

    async def record(self, max_seconds: float, *, silence_stop_s: float | None = None,
                     beep: bool = True) -> RecordResult:
        """Record the caller (mono) until max length, trailing silence, a key, or hang-up."""
        await self.answer()
        if beep:
            await self.player.play(beep_tone(), "beep", BargeIn.NONE)
        self.digits.clear()
        path = self.recordings_dir / f"{self.call_id}-msg-{int(self.clock.wall() * 1000)}.wav"
        result = await record_message(media=self._feed, path=path, max_seconds=max_seconds,
                                      silence_stop_s=silence_stop_s, race=self._race)
        self.trace.add("record", path=str(path), seconds=round(result.duration_s, 2),
                       reason=result.reason)
        if result.reason == "hangup":
            raise self._hung_up()
        return result

    def events(self) -> AsyncIterator[CallEvent]:
        """A fresh subscription. After a speech barge-in it starts with the caller's last
        ~500 ms (the onset the detector needed), so the next listen hears the whole word."""
        return self.audio.events()


async def run_app(call: MediaCall, app: Callable[[Any], Awaitable[Any]], *,
                  unanswered_reason: str) -> None:
    """Run a call's application to its end, whichever backend carries the call: a hang-up is
    the normal end, a failure is logged and traced, and a call still up afterwards is hung up
    (``normal`` once answered, else ``unanswered_reason``) whatever the far side then does."""
    try:
        await app(call)
    except CallHungUp:
        pass
    except Exception as e:
        log.exception("call %s: application failed", call.call_id)
        call.trace.add("error", error=repr(e)[:200])
    finally:
        if call.is_active:
            try:
                await call.hangup("normal" if call.answered else unanswered_reason)
            except Exception:  # teardown must go on whatever the backend did
                log.exception("call %s: hangup failed", call.call_id)
