"""``Call`` over an operator's Asterisk: AMI for control, AudioSocket for the audio.

Prompts, keys, speech, recording and ``events()`` are :class:`~engine.sipcall.base.MediaCall`'s,
exactly as on the SIP backend, over the call's
:class:`~engine.ami.media.AudioSocketMedia`. What differs is signalling:

* answer: ``AudioSocket()`` only runs on an answered channel, so the call is up before the
  flow starts; ``answer()`` has nothing left to do;
* hang-up: AMI ``Hangup`` (Q.850 cause 16) when AMI is up, and the AudioSocket hangup message
  in any case, so a call can still end while AMI is reconnecting;
* transfer: AMI ``Redirect`` of the channel into the transfer context (``IVR_TRANSFER_TARGET``
  holds the flow's target for the dialplan there); the channel leaves the app and the engine's
  part of the call ends with cause ``transferred``;
* keys to the far end: AMI ``PlayDTMF``.

The call's end is decided by :class:`~engine.ami.controller.AsteriskController`, which sees
the AudioSocket EOF and the channel's ``Hangup`` event, and calls :meth:`AsteriskCall.end`.
"""

from __future__ import annotations

import asyncio
import logging
import re
from dataclasses import dataclass, field
from pathlib import Path

from core.call import TransferResult
from core.clock import Clock
from engine.ami.client import AmiClient, AmiError
from engine.ami.media import AudioSocketMedia
from engine.media.prompts import PromptCache
from engine.sipcall.base import MediaCall, SpeechHooks

log = logging.getLogger("ivr.ami.call")

HANGUP_CAUSE_NORMAL = 16  # Q.850 normal clearing
ACTION_TIMEOUT_S = 3.0
PLAY_DTMF_MS = 100
_EXTEN_OK = re.compile(r"^[0-9A-Za-z*#+_.\-]+$")


@dataclass(frozen=True, slots=True)
class ChannelEnd:
    """How an Asterisk call ended: ``cause``/``side`` in the engine's vocabulary, and the
    channel's Q.850 cause when Asterisk reported one."""

    cause: str
    side: str
    q850: int | None = None
    status: int | None = None  # no SIP status on this backend (the record's sip_status)


@dataclass
class ChannelInfo:
    """What AMI events said about the channel behind a call."""

    uniqueid: str = ""
    channel: str = ""
    linkedid: str = ""
    caller_id_num: str = ""
    caller_id_name: str = ""
    exten: str = ""
    context: str = ""
    state: int = 0  # ChannelState of the latest event (6: up)
    variables: dict[str, str] = field(default_factory=dict)  # IVR_* channel variables


def exten_of(target: str) -> str:
    """The extension a transfer target names: the user part of a SIP/tel URI, or the target
    itself (``sip:agents@pbx`` -> ``agents``, ``tel:+8610...`` -> ``+8610...``); ``s`` when it
    names none the dialplan could match."""
    t = target.strip()
    for scheme in ("sips:", "sip:", "tel:"):
        if t.lower().startswith(scheme):
            t = t[len(scheme):]
            break
    t = t.split(";", 1)[0].split("@", 1)[0]
    return t if t and _EXTEN_OK.match(t) else "s"


class AsteriskCall(MediaCall):
    def __init__(self, *, call_id: str, caller: str, callee: str, direction: str,
                 media: AudioSocketMedia, channel: ChannelInfo, ami: AmiClient | None,
                 clock: Clock, prompts: PromptCache, recordings_dir: Path,
                 speech: SpeechHooks | None = None, transfer_context: str | None = None,
                 ) -> None:
        super().__init__(call_id=call_id, caller=caller, callee=callee, media=media, clock=clock,
                         prompts=prompts, recordings_dir=recordings_dir, speech=speech)
        self.direction = direction
        self.media = media
        self.channel = channel
        self.ami = ami
        self.transfer_context = transfer_context
        self.answered = True  # AudioSocket() runs on answered channels only
        self.transferring = False  # a Redirect was sent: the connection will close
        self._ended: asyncio.Future[ChannelEnd] = asyncio.get_running_loop().create_future()
        self.hangup_cause: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        media.set_dtmf_handler(self._on_dtmf)

    # -- state ---------------------------------------------------------------------------------

    @property
    def is_active(self) -> bool:
        return not self._ended.done()

    @property
    def ended(self) -> asyncio.Future[ChannelEnd]:
        return self._ended

    @property
    def variables(self) -> dict[str, str]:
        """The channel's ``IVR_*`` variables (set in the dialplan or by the originator)."""
        return self.channel.variables

    def end(self, cause: str, side: str, q850: int | None = None) -> None:
        """The call is over (the controller saw the channel go); the first reason wins."""
        if not self._ended.done():
            self._ended.set_result(ChannelEnd(cause, side, q850))
            self.media.playout.stop_all("hangup")

    def _ami_ready(self) -> bool:
        return self.ami is not None and self.ami.connected and bool(self.channel.channel
                                                                     or self.channel.uniqueid)

    @property
    def _channel_ref(self) -> str:
        return self.channel.channel or self.channel.uniqueid

    # -- Call protocol: the Asterisk half ------------------------------------------------------

    async def answer(self) -> None:
        if not self.is_active:
            raise self._hung_up()

    async def hangup(self, reason: str = "normal") -> None:
        if not self.is_active:
            return
        self.trace.add("hangup", reason=reason)
        self.end(reason, "engine")
        if self._ami_ready():
            assert self.ami is not None
            try:
                await self.ami.send("Hangup", [("Channel", self._channel_ref),
                                               ("Cause", str(HANGUP_CAUSE_NORMAL))],
                                    timeout_s=ACTION_TIMEOUT_S)
            except AmiError as e:  # gone already, or AMI dropped: the hangup message does it
                log.debug("call %s: AMI Hangup: %s", self.call_id, e)
        self.media.send_hangup()

    async def transfer(self, target: str) -> TransferResult:
        """Blind transfer: ``Redirect`` the channel to ``<transfer_context>,<exten>,1``."""
        await self.answer()
        exten = exten_of(target)
        self.trace.add("transfer.start", target=target, context=self.transfer_context,
                       exten=exten)
        if self.transfer_context is None:
            return TransferResult("failed", "no transfer context configured ([asterisk])")
        if not self._ami_ready():
            return TransferResult("failed", "AMI is not connected")
        assert self.ami is not None
        try:
            await self._race(self.ami.send(
                "Setvar", [("Channel", self._channel_ref), ("Variable", "IVR_TRANSFER_TARGET"),
                           ("Value", target)], timeout_s=ACTION_TIMEOUT_S))
            self.transferring = True
            # Not raced against the call's end: the Redirect itself takes the channel away, so
            # the AudioSocket may close (and end the call "transferred") before Asterisk's
            # answer to the action arrives; the answer still decides the result.
            await self.ami.send(
                "Redirect", [("Channel", self._channel_ref), ("Context", self.transfer_context),
                             ("Exten", exten), ("Priority", "1")],
                timeout_s=ACTION_TIMEOUT_S, retry_safe=False)
        except (AmiError, ValueError) as e:
            self.transferring = False
            self.trace.add("transfer.failed", detail=str(e)[:200])
            if self.ended.done():  # the caller had gone: there was nothing left to move
                raise self._hung_up() from e
            return TransferResult("failed", f"Redirect refused: {e}"[:200])
        self.trace.add("transfer.redirected", context=self.transfer_context, exten=exten)
        self.end("transferred", "engine")
        return TransferResult("transferred", f"redirected to {self.transfer_context},{exten},1")

    async def send_digits(self, digits: str) -> None:
        """Send DTMF to the far end (AMI ``PlayDTMF``), e.g. to navigate a remote IVR."""
        if not self._ami_ready():
            raise RuntimeError("AMI is not connected: cannot send DTMF")
        assert self.ami is not None
        for digit in digits:
            await self._race(self.ami.send(
                "PlayDTMF", [("Channel", self._channel_ref), ("Digit", digit),
                             ("Duration", str(PLAY_DTMF_MS))], timeout_s=ACTION_TIMEOUT_S,
                retry_safe=False))  # sent twice would press the key twice
            self.trace.add("dtmf.sent", digit=digit)
