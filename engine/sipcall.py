"""``Call`` over the engine's own SIP/RTP stack.

A call is four parts, each owned elsewhere: the SIP dialog usage (``engine.sip.invite``), the
media session (``engine.media.session``), the keypad buffer (``engine.digits``) and the call
record (``engine.cdr``). This class only orchestrates them behind the ``Call`` protocol that
flows drive. Every blocking method races the call's end: when the far side hangs up, whatever
the flow awaits raises :class:`CallHungUp` at once.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from pathlib import Path
from typing import Any, Protocol, TypeVar

import numpy as np

from audio.tones import beep as beep_tone
from audio.wavio import write_wav
from core.call import (
    AudioFrameEvent,
    AudioSource,
    BargeIn,
    CallEvent,
    CallHungUp,
    CallTrace,
    DigitSpec,
    DigitsResult,
    DtmfEvent,
    HangupEvent,
    ListenResult,
    ListenSpec,
    PlayResult,
    RecordResult,
    TransferResult,
)
from core.clock import Clock
from core.tasks import spawn
from engine.cdr import CallRecord
from engine.digits import DigitBuffer
from engine.media.prompts import PromptCache
from engine.media.session import MediaSession
from engine.sip.dtmf_info import DtmfInfoError, parse_dtmf_info
from engine.sip.invite import IncomingInvite, InviteSession, SessionEnd
from engine.sip.sdp import (
    SdpNegotiationError,
    SdpParseError,
    SessionDescription,
    negotiate_answer,
)

log = logging.getLogger("ivr.call")
T = TypeVar("T")

INFO_DTMF_TYPES = ("application/dtmf-relay", "application/dtmf")
SILENCE_RMS = 300.0  # int16 RMS under which a recorded frame counts as silence
RECENT_FRAMES = 25  # 500 ms of caller audio replayed to the listener after a barge-in
# How long a transferor waits after 202 for the NOTIFY reporting the transfer's outcome (RFC 3515
# §2.4.5) before hanging up anyway; hanging up at once races the transferee's NOTIFY.
REFER_NOTIFY_WAIT_S = 4.0


def sipfrag_status(body: bytes) -> int | None:
    """The status code of a message/sipfrag status line (``SIP/2.0 200 OK``), else None."""
    parts = body.lstrip().split(b"\n", 1)[0].split()
    if len(parts) >= 2 and parts[0] == b"SIP/2.0" and parts[1].isdigit():
        return int(parts[1])
    return None


class SpeechHooks(Protocol):
    """What ``say``, ``listen`` and speech barge-in need from the speech layer (``asr``)."""

    async def synthesize(self, text: str, voice: str | None, language: str | None) -> Any: ...

    async def listen(self, call: SipCall, spec: ListenSpec) -> ListenResult: ...

    def barge_in_watcher(self, call: SipCall) -> Coroutine[Any, Any, Any]: ...

    def finish_turn(self, turn: Any) -> dict[str, Any]: ...


class SipCall:
    def __init__(self, *, session: InviteSession, media: MediaSession, record: CallRecord,
                 clock: Clock, prompts: PromptCache, answer_sdp: bytes | None,
                 on_answer: Callable[[SipCall], None], recordings_dir: Path,
                 speech: SpeechHooks | None = None,
                 transfer_bridge: Callable[[SipCall, str], Awaitable[TransferResult]] | None = None,
                 ) -> None:
        self.session = session
        self.media = media
        self.record_ = record
        self.clock = clock
        self.prompts = prompts
        self.speech = speech
        self._answer_sdp = answer_sdp
        self._on_answer = on_answer
        self.recordings_dir = recordings_dir
        self._transfer_bridge = transfer_bridge
        self.call_id = record.id
        self.caller = record.from_number
        self.callee = record.to_number
        self.trace = CallTrace()
        self.digits = DigitBuffer(clock)
        self.variables: dict[str, Any] = {}
        self._playing_barge: BargeIn = BargeIn.NONE
        self.pending_turn: Any = None  # a caller turn awaiting its answer (latency ledger)
        self._recent: deque[AudioFrameEvent] | None = None  # caller audio while a prompt plays
        self._replay: list[CallEvent] = []  # handed to the next events() after a barge-in
        self._refer_final: asyncio.Future[int] | None = None  # set by a NOTIFY during transfer
        media.on_dtmf = self._on_dtmf
        self.answered = session.direction == "outbound"
        self.local_sdp_version = 1
        session.handler = self

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

    def _begin_answer(self) -> Any:
        """The flow starts answering a caller turn: mark its ``decision``."""
        turn, self.pending_turn = self.pending_turn, None
        if turn is not None:
            turn.mark("decision", self.clock.now())
        return turn

    def _on_dtmf(self, ev: DtmfEvent) -> None:
        self.digits.push(ev.digit)
        self.trace.add("dtmf", digit=ev.digit, source=ev.source)
        current = self.media.playout.current
        if current is not None and BargeIn.DTMF in self._playing_barge:
            current.done.set_result("dtmf") if not current.done.done() else None

    # -- SessionHandler: in-dialog requests from the far end -----------------------------------

    def on_info(self, content_type: str, body: bytes) -> int:
        """SIP INFO DTMF (application/dtmf-relay, application/dtmf); 415 for anything else."""
        if content_type not in INFO_DTMF_TYPES:
            return 415
        try:
            digit, duration_ms = parse_dtmf_info(content_type, body)
        except DtmfInfoError as e:
            log.debug("call %s: bad INFO DTMF body: %s", self.call_id, e)
            return 400
        self.media.stats.dtmf_rx += 1
        self._on_dtmf(DtmfEvent(digit, "info", duration_ms, self.clock.now()))
        return 200

    def on_reinvite(self, offer: bytes) -> bytes:
        """Hold/unhold or a new address/codec: answer with our SDP (RFC 3264 §8)."""
        try:
            sdp = SessionDescription.parse(offer)
            self.local_sdp_version += 1
            answer, chosen = negotiate_answer(
                sdp, supported=(self.media.codec,), local_ip=self._local_ip(),
                local_port=self.media.local_port, session_id=self.local_sdp_version)
        except (SdpParseError, SdpNegotiationError) as e:
            raise ValueError(str(e)) from e
        self.media.update_remote((chosen.remote_ip, chosen.remote_port), chosen.codec)
        self.media.on_hold = chosen.direction in ("recvonly", "inactive")
        self.trace.add("hold" if self.media.on_hold else "unhold", direction=chosen.direction)
        return answer.serialize()

    def on_notify(self, request: Any) -> None:
        event = request.headers.get("Event") or ""
        self.trace.add("notify", event=event, body=request.body[:80].decode(errors="replace"))
        status = sipfrag_status(request.body) if event.lower().startswith("refer") else None
        fut = self._refer_final
        if status is not None and status >= 200 and fut is not None and not fut.done():
            fut.set_result(status)

    def _local_ip(self) -> str:
        if self._answer_sdp:
            conn = SessionDescription.parse(self._answer_sdp).connection
            if conn is not None:
                return conn.address
        return "127.0.0.1"

    async def _race(self, aw: Awaitable[T]) -> T:
        """Await ``aw`` unless the call ends first (then raise CallHungUp)."""
        if not self.is_active:
            raise self._hung_up()
        task = asyncio.ensure_future(aw)
        waiters: set[asyncio.Future[Any]] = {task, self.ended}
        done, _ = await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
        if task in done:
            return task.result()
        task.cancel()
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
        self.record_.answer_at = time.time()
        self.trace.add("answer")
        self._on_answer(self)

    async def play(self, source: AudioSource, *, barge_in: BargeIn = BargeIn.NONE) -> PlayResult:
        await self.answer()
        turn = self._begin_answer()
        if isinstance(source, str | Path):
            pcm = await self.prompts.load(source)
            label: str = str(source)
        else:
            pcm, label = np.asarray(source, dtype=np.int16), "pcm"
        return await self.play_pcm(pcm, label, barge_in, turn)

    async def play_pcm(self, pcm: Any, label: str, barge_in: BargeIn,
                       turn: Any = None) -> PlayResult:
        if BargeIn.DTMF in barge_in and self.digits.pending():
            digit = self.digits.history[-self.digits.pending()]
            self.trace.add("play.skipped", prompt=label, digit=digit)
            return PlayResult(False, "dtmf", digit, 0)  # type-ahead: skip the prompt
        self.trace.add("play.start", prompt=label, ms=len(pcm) // 8)
        item = self.media.playout.enqueue(pcm, label)
        self._playing_barge = barge_in
        watcher = None
        if BargeIn.SPEECH in barge_in and self.speech is not None:
            self._recent = deque(maxlen=RECENT_FRAMES)
            watcher = spawn(self._watch_speech(item), f"bargein-{self.call_id}")
        try:
            reason = await self._race(asyncio.shield(item.done))
        except CallHungUp:
            item.done.cancel() if not item.done.done() else None
            raise
        finally:
            self._playing_barge = BargeIn.NONE
            if watcher is not None:
                watcher.cancel()
                self._recent = None
            if turn is not None:
                self._finish_turn(turn, item.first_sent_at)
        self.trace.add("play.end", prompt=label, reason=reason, played_ms=item.played_ms)
        if reason == "completed":
            return PlayResult(True, None, None, item.played_ms)
        barged = self.digits.history[-1] if reason == "dtmf" and self.digits.history else None
        return PlayResult(False, reason, barged, item.played_ms)  # type: ignore[arg-type]

    async def say(self, text: str, *, voice: str | None = None, language: str | None = None,
                  barge_in: BargeIn = BargeIn.NONE) -> PlayResult:
        await self.answer()
        if self.speech is None:
            raise RuntimeError("no text-to-speech configured for this engine")
        turn = self._begin_answer()  # synthesis time counts in the caller's wait
        pcm = await self._race(self.speech.synthesize(text, voice, language))
        return await self.play_pcm(pcm, f"tts:{text[:40]}", barge_in, turn)

    async def _watch_speech(self, item: Any) -> None:
        """Stop ``item`` when the caller starts talking over it (one barge-in event)."""
        assert self.speech is not None
        event = await self.speech.barge_in_watcher(self)
        if event is None or event.cause == "dtmf" or item.done.done():
            return  # keys barge in through _on_dtmf, and only when the prompt allows it
        item.done.set_result("speech")
        self._replay = list(self._recent or ())
        now = self.clock.now()
        stop_ms = None if event.speech_start is None else round((now - event.speech_start)
                                                                 * 1000, 1)
        self.trace.add("bargein", cause=event.cause, detect_ms=event.detect_ms,
                       speech_start_to_stop_ms=stop_ms)

    def _finish_turn(self, turn: Any, first_sent_at: float | None) -> None:
        """Complete and publish a caller turn's ledger; bookkeeping never breaks a call."""
        try:
            if first_sent_at is not None and "first_audio" not in turn.marks:
                turn.mark("first_audio", first_sent_at)
            if self.speech is not None:
                self.trace.add("latency.turn", **self.speech.finish_turn(turn))
        except Exception:  # a ledger bug must not cost the caller their call
            log.exception("call %s: latency ledger", self.call_id)

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
        result = await self._race(self.speech.listen(self, spec))
        self.trace.add("listen", status=result.status, text=result.text,
                       confidence=round(result.confidence, 3))
        return result

    async def record(self, max_seconds: float, *, silence_stop_s: float | None = None,
                     beep: bool = True) -> RecordResult:
        """Record the caller (mono) until max length, trailing silence, a key, or hang-up."""
        await self.answer()
        if beep:
            await self.play_pcm(beep_tone(), "beep", BargeIn.NONE)
        q = self.media.subscribe(audio=True)
        frames: list[Any] = []
        reason = "max_length"
        silent = 0
        silence_frames = int((silence_stop_s or 0) / 0.02)
        max_frames = int(max_seconds / 0.02)
        self.digits.clear()
        try:
            while len(frames) < max_frames:
                try:
                    ev = await self._race(q.get())
                except CallHungUp:
                    reason = "hangup"
                    break
                if isinstance(ev, DtmfEvent):
                    reason = "dtmf"
                    break
                if not isinstance(ev, AudioFrameEvent):
                    continue
                frames.append(ev.pcm)
                rms = float(np.sqrt(np.mean(ev.pcm.astype(np.float32) ** 2)))
                silent = silent + 1 if rms < SILENCE_RMS else 0
                if silence_frames and silent >= silence_frames and len(frames) > silent:
                    reason = "silence"
                    frames = frames[: len(frames) - silent]
                    break
        finally:
            self.media.unsubscribe(q)
        pcm = np.concatenate(frames) if frames else np.zeros(0, np.int16)
        path = self.recordings_dir / f"{self.call_id}-msg-{int(time.time() * 1000)}.wav"
        path.parent.mkdir(parents=True, exist_ok=True)
        await asyncio.get_running_loop().run_in_executor(None, write_wav, path, pcm)
        result = RecordResult(path, len(pcm) / 8000, reason)  # type: ignore[arg-type]
        self.trace.add("record", path=str(path), seconds=round(result.duration_s, 2),
                       reason=reason)
        if reason == "hangup":
            raise self._hung_up()
        return result

    async def transfer(self, target: str) -> TransferResult:
        """Blind transfer with REFER (RFC 3515); when the peer refuses it, bridge instead."""
        await self.answer()
        self.trace.add("transfer.start", target=target)
        self._refer_final = asyncio.get_running_loop().create_future()
        try:
            resp = await self._race(self.session.refer(target))
        except TimeoutError:
            resp = None
        final = None
        if resp is not None and 200 <= resp.status < 300:
            self.trace.add("transfer.referred", status=resp.status)
            final = await self._refer_outcome()
        if resp is not None and 200 <= resp.status < 300 and (final is None or final < 300):
            await self.hangup("transferred")
            return TransferResult("transferred", f"REFER accepted ({resp.status}), "
                                                 f"NOTIFY {final or 'none'}")
        detail = (f"transfer failed (NOTIFY {final})" if final is not None
                  else f"REFER refused ({resp.status if resp else 'timeout'})")
        if self._transfer_bridge is None:
            return TransferResult("failed", detail)
        result = await self._transfer_bridge(self, target)
        self.trace.add("transfer.bridge", status=result.status, detail=result.detail)
        return result

    async def _refer_outcome(self) -> int | None:
        """The final status of the NOTIFY after an accepted REFER, or None when none came in
        REFER_NOTIFY_WAIT_S or the transferee hung up first (which also means it went on)."""
        fut = self._refer_final
        assert fut is not None
        sleeper = asyncio.ensure_future(self.clock.sleep(REFER_NOTIFY_WAIT_S))
        try:
            waiters: set[asyncio.Future[Any]] = {fut, sleeper}
            await self._race(asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED))
        except CallHungUp:
            pass
        finally:
            sleeper.cancel()
        return fut.result() if fut.done() else None

    async def hangup(self, reason: str = "normal") -> None:
        if not self.is_active:
            return
        self.trace.add("hangup", reason=reason)
        self.media.playout.stop_all("hangup")
        if isinstance(self.session, IncomingInvite) and not self.answered:
            self.session.reject(480 if reason == "normal" else 503)
            return
        await self.session.bye(reason)

    async def events(self) -> AsyncIterator[CallEvent]:
        """A fresh subscription. After a speech barge-in it starts with the caller's last
        ~500 ms (the onset the detector needed), so the next listen hears the whole word."""
        q = self.media.subscribe(audio=True)
        replay, self._replay = self._replay, []
        try:
            for ev in replay:
                yield ev
            while True:
                try:
                    ev = await self._race(q.get())
                    if self._recent is not None and isinstance(ev, AudioFrameEvent):
                        self._recent.append(ev)
                    yield ev
                except CallHungUp as e:
                    yield HangupEvent(e.cause, e.side, self.clock.now())  # type: ignore[arg-type]
                    return
        finally:
            self.media.unsubscribe(q)

    # -- outbound helpers ----------------------------------------------------------------------

    async def send_digits(self, digits: str) -> None:
        """Send DTMF to the far end (RFC 4733), e.g. to navigate a remote IVR."""
        self.media.send_digits(digits)
        await self.clock.sleep(0.2 * len(digits) + 0.2)
