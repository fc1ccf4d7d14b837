"""``Call`` over the engine's own SIP/RTP stack.

A call is several parts, each owned by its own module: the SIP dialog usage
(``engine.sip.invite``), the media session (``engine.media.session``), the keypad buffer
(``engine.digits``), in-dialog requests (:mod:`.indialog`), prompt playback and barge-in
(:mod:`.playback`), the caller's audio feed (:mod:`.caller_audio`), turn latency (:mod:`.turns`),
message recording (:mod:`.message`) and transfer (:mod:`.transfer`). What every backend shares
(prompts, keys, speech, recording, the caller's feed) is :class:`~engine.sipcall.base.MediaCall`;
this class adds the SIP half: answering the INVITE, REFER transfer, BYE, in-dialog requests.
Every blocking method races the call's end: when the far side hangs up, whatever the flow
awaits raises :class:`CallHungUp` at once.

The call keeps no record of itself: what a call record needs goes on the event bus
(``call.answered``, ``flow.*``, ``call.ended``) and ``engine.cdr_builder`` assembles it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path

from core.call import TransferResult
from core.clock import Clock
from engine.media.prompts import PromptCache
from engine.media.session import MediaSession
from engine.sip.invite import IncomingInvite, InviteSession, SessionEnd
from engine.sipcall.base import MediaCall, SpeechHooks
from engine.sipcall.indialog import InDialogHandler
from engine.sipcall.transfer import blind_transfer


class SipCall(MediaCall):
    def __init__(self, *, call_id: str, caller: str, callee: str, session: InviteSession,
                 media: MediaSession, clock: Clock, prompts: PromptCache, local_ip: str,
                 answer_sdp: bytes | None, on_answer: Callable[[SipCall], None],
                 sources: Callable[[str], frozenset[str] | None] | None = None,
                 recordings_dir: Path, speech: SpeechHooks | None = None,
                 transfer_bridge: Callable[[SipCall, str], Awaitable[TransferResult]] | None = None,
                 ) -> None:
        self.session = session
        self.media = media
        super().__init__(call_id=call_id, caller=caller, callee=callee, media=media, clock=clock,
                         prompts=prompts, recordings_dir=recordings_dir, speech=speech)
        self._answer_sdp = answer_sdp
        self._on_answer = on_answer
        self._transfer_bridge = transfer_bridge
        self.answered = session.direction == "outbound"
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

    # -- Call protocol: the SIP half -----------------------------------------------------------

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

    # -- outbound helpers ----------------------------------------------------------------------

    async def send_digits(self, digits: str) -> None:
        """Send DTMF to the far end (RFC 4733), e.g. to navigate a remote IVR."""
        self.media.send_digits(digits)
        await self.clock.sleep(0.2 * len(digits) + 0.2)


__all__ = ["SipCall", "SpeechHooks"]
