"""``Call`` over the engine's own SIP/RTP stack.

A call is several parts, each owned by its own module: the SIP dialog usage
(``engine.sip.invite``), the media session (``engine.media.session``), the keypad buffer
(``engine.digits``), in-dialog requests (:mod:`.indialog`), prompt playback and barge-in
(:mod:`.playback`), the caller's audio feed (:mod:`.caller_audio`), turn latency (:mod:`.turns`),
message recording (:mod:`.message`) and transfer (:mod:`.transfer`). This class orchestrates them
behind the ``Call`` protocol that flows drive. Every blocking method races the call's end: when
the far side hangs up, whatever the flow awaits raises :class:`CallHungUp` at once.

The call keeps no record of itself: what a call record needs goes on the event bus
(``call.answered``, ``flow.*``, ``call.ended``) and ``engine.cdr_builder`` assembles it.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from pathlib import Path
from typing import Any, Protocol, TypeVar

import numpy as np

from audio.pcm import Pcm
from audio.tones import beep as beep_tone
from core.call import (
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
from engine.media.session import MediaSession
from engine.sip.invite import IncomingInvite, InviteSession, SessionEnd
from engine.sipcall.caller_audio import CallerAudio
from engine.sipcall.indialog import InDialogHandler
from engine.sipcall.message import record_message
from engine.sipcall.playback import PromptPlayer
from engine.sipcall.transfer import blind_transfer
from engine.sipcall.turns import Turn, TurnTracker

T = TypeVar("T")


class SpeechHooks(Protocol):
    """What ``say``, ``listen`` and speech barge-in need from the speech layer (``asr``)."""

    async def synthesize(self, text: str, voice: str | None, language: str | None) -> Pcm: ...

    async def listen(self, call: SipCall, spec: ListenSpec) -> tuple[ListenResult, Turn | None]:
        """The result, and the caller's turn when it still awaits its answer (latency)."""
        ...

    def barge_in_watcher(self, call: SipCall) -> Coroutine[Any, Any, Any]: ...

    def finish_turn(self, turn: Any) -> dict[str, Any]: ...


class SipCall:
    def __init__(self, *, call_id: str, caller: str, callee: str, session: InviteSession,
                 media: MediaSession, clock: Clock, prompts: PromptCache, local_ip: str,
                 answer_sdp: bytes | None, on_answer: Callable[[SipCall], None],
                 sources: Callable[[str], frozenset[str] | None] | None = None,
                 recordings_dir: Path, speech: SpeechHooks | None = None,
                 transfer_bridge: Callable[[SipCall, str], Awaitable[TransferResult]] | None = None,
                 ) -> None:
        self.call_id = call_id
        self.caller = caller
        self.callee = callee
        self.session = session
        self.media = media
        self.clock = clock
        self.prompts = prompts
        self.speech = speech
        self.recordings_dir = recordings_dir
        self._answer_sdp = answer_sdp
        self._on_answer = on_answer
        self._transfer_bridge = transfer_bridge
        self.trace = CallTrace(clock.wall)
        self.digits = DigitBuffer(clock)
        self.answered = session.direction == "outbound"
        self._dtmf_method: str | None = None  # the first DTMF method the phone used
        self.turns = TurnTracker(clock.now, self.trace,
                                 speech.finish_turn if speech is not None else None)
        self.audio = CallerAudio(media, self._race, clock.now)
        self.player = PromptPlayer(
            call_id=call_id, media=media, digits=self.digits, trace=self.trace, audio=self.audio,
            turns=self.turns, now=clock.now, race=self._race,
            watch_speech=(lambda: speech.barge_in_watcher(self)) if speech is not None else None)
        self.dialog = InDialogHandler(call_id=call_id, media=media, trace=self.trace,
                                      on_dtmf=self._on_dtmf, now=clock.now, local_ip=local_ip,
                                      sources=sources)
        media.on_dtmf = self._on_dtmf
        session.handler = self.dialog

    # -- state ---------------------------------------------------------------------------------

    @property
    def is_active(self) -> bool:
        return self.session.active

    @property
    def ended(self) -> asyncio.Future[SessionEnd]:
        return self.session.ended

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
        end = self.ended.result() if self.ended.done() else SessionEnd("normal", "caller")
        return CallHungUp(end.cause, end.side)

    # -- Call protocol -------------------------------------------------------------------------

    async def answer(self) -> None:
        if self.answered:
            return
        if not isinstance(self.session, IncomingInvite) or self._answer_sdp is None:
            raise RuntimeError("only an inbound call can be answered")
        if not self.is_active:
            raise self._hung_up()
        self.session.answer(self._answer_sdp)
        self.answered = True
        self.trace.add("answer")
        self._on_answer(self)

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
        self.trace.add("listen", status=result.status, text=result.text,
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
        result = await record_message(media=self.media, path=path, max_seconds=max_seconds,
                                      silence_stop_s=silence_stop_s, race=self._race)
        self.trace.add("record", path=str(path), seconds=round(result.duration_s, 2),
                       reason=result.reason)
        if result.reason == "hangup":
            raise self._hung_up()
        return result

    async def transfer(self, target: str) -> TransferResult:
        """Blind transfer with REFER (RFC 3515); when the peer refuses it, bridge instead."""
        await self.answer()
        bridge = self._transfer_bridge
        return await blind_transfer(
            target=target, session=self.session, dialog=self.dialog, trace=self.trace,
            clock=self.clock, race=self._race, hangup=self.hangup,
            bridge=(lambda t: bridge(self, t)) if bridge is not None else None)

    async def hangup(self, reason: str = "normal") -> None:
        if not self.is_active:
            return
        self.trace.add("hangup", reason=reason)
        self.media.playout.stop_all("hangup")
        if isinstance(self.session, IncomingInvite) and not self.answered:
            self.session.reject(480 if reason == "normal" else 503)
            return
        await self.session.bye(reason)

    def events(self) -> AsyncIterator[CallEvent]:
        """A fresh subscription. After a speech barge-in it starts with the caller's last
        ~500 ms (the onset the detector needed), so the next listen hears the whole word."""
        return self.audio.events()

    # -- outbound helpers ----------------------------------------------------------------------

    async def send_digits(self, digits: str) -> None:
        """Send DTMF to the far end (RFC 4733), e.g. to navigate a remote IVR."""
        self.media.send_digits(digits)
        await self.clock.sleep(0.2 * len(digits) + 0.2)
