"""Typed AMI events: the ones the Asterisk backend acts on, as small frozen dataclasses.

Only events somebody listens to are ever built (the client reads just the first line of the
rest): a channel's life (``Newchannel``, ``Newstate``, ``VarSet``, ``SoftHangupRequest``,
``Hangup``), originate
results (``OriginateResponse``, ``DialEnd``), keys (``DTMFEnd``) and the server's own life
(``FullyBooted``, ``Shutdown``). Any other name becomes a plain :class:`AmiEvent`. Numbers that
do not parse (an Asterisk bug, a hostile peer) read as 0 rather than raising in a callback.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from engine.ami.codec import AmiMessage

# ChannelState values (include/asterisk/channelstate.h)
STATE_DOWN = 0
STATE_RING = 4
STATE_RINGING = 5
STATE_UP = 6
STATE_BUSY = 7


def _int(value: str, default: int = 0) -> int:
    try:
        return int(value.strip())
    except ValueError:
        return default


@dataclass(frozen=True, slots=True)
class AmiEvent:
    """Any event: its name and the whole message."""

    name: ClassVar[str] = ""
    message: AmiMessage

    @property
    def event(self) -> str:
        return self.message.get("Event")

    @classmethod
    def from_message(cls, msg: AmiMessage) -> AmiEvent:
        return cls(msg)


@dataclass(frozen=True, slots=True)
class ChannelEvent(AmiEvent):
    """An event about one channel (the fields every channel snapshot carries)."""

    channel: str = ""
    uniqueid: str = ""
    linkedid: str = ""
    caller_id_num: str = ""
    caller_id_name: str = ""
    exten: str = ""
    context: str = ""
    state: int = 0

    @classmethod
    def _channel_fields(cls, msg: AmiMessage) -> dict[str, object]:
        return {
            "message": msg, "channel": msg.get("Channel"), "uniqueid": msg.get("Uniqueid"),
            "linkedid": msg.get("Linkedid"), "caller_id_num": msg.get("CallerIDNum"),
            "caller_id_name": msg.get("CallerIDName"), "exten": msg.get("Exten"),
            "context": msg.get("Context"), "state": _int(msg.get("ChannelState")),
        }

    @classmethod
    def from_message(cls, msg: AmiMessage) -> AmiEvent:
        return cls(**cls._channel_fields(msg))  # type: ignore[arg-type]


@dataclass(frozen=True, slots=True)
class NewchannelEvent(ChannelEvent):
    name: ClassVar[str] = "Newchannel"


@dataclass(frozen=True, slots=True)
class NewstateEvent(ChannelEvent):
    name: ClassVar[str] = "Newstate"


@dataclass(frozen=True, slots=True)
class HangupEvent(ChannelEvent):
    """``Cause`` is the Q.850 cause code (16 normal clearing, 17 busy, 19 no answer, ...)."""

    name: ClassVar[str] = "Hangup"
    cause: int = 0
    cause_txt: str = ""

    @classmethod
    def from_message(cls, msg: AmiMessage) -> AmiEvent:
        return cls(**cls._channel_fields(msg), cause=_int(msg.get("Cause")),  # type: ignore[arg-type]
                   cause_txt=msg.get("Cause-txt"))


SOFTHANGUP_ASYNCGOTO = 1 << 1  # include/asterisk/channel.h: a Redirect took the channel
SOFTHANGUP_SHUTDOWN = 1 << 2  # Asterisk is stopping and hangs up every channel
SOFTHANGUP_EXPLICIT = 1 << 5  # an explicit hang-up (AMI Hangup, CLI)


@dataclass(frozen=True, slots=True)
class SoftHangupRequestEvent(ChannelEvent):
    """Something asked Asterisk to hang a channel up; ``cause`` holds the request's flags
    (``SOFTHANGUP_*``): the one early sign of a shutdown, whose ``Shutdown`` event comes only
    after every channel is gone."""

    name: ClassVar[str] = "SoftHangupRequest"
    cause: int = 0

    @classmethod
    def from_message(cls, msg: AmiMessage) -> AmiEvent:
        return cls(**cls._channel_fields(msg), cause=_int(msg.get("Cause")))  # type: ignore[arg-type]


@dataclass(frozen=True, slots=True)
class VarSetEvent(ChannelEvent):
    name: ClassVar[str] = "VarSet"
    variable: str = ""
    value: str = ""

    @classmethod
    def from_message(cls, msg: AmiMessage) -> AmiEvent:
        return cls(**cls._channel_fields(msg), variable=msg.get("Variable"),  # type: ignore[arg-type]
                   value=msg.get("Value"))


@dataclass(frozen=True, slots=True)
class DtmfEndEvent(ChannelEvent):
    name: ClassVar[str] = "DTMFEnd"
    digit: str = ""
    duration_ms: int = 0
    direction: str = ""  # Received (from the channel's far end) or Sent

    @classmethod
    def from_message(cls, msg: AmiMessage) -> AmiEvent:
        return cls(**cls._channel_fields(msg), digit=msg.get("Digit"),  # type: ignore[arg-type]
                   duration_ms=_int(msg.get("DurationMs")), direction=msg.get("Direction"))


@dataclass(frozen=True, slots=True)
class DialEndEvent(ChannelEvent):
    name: ClassVar[str] = "DialEnd"
    dest_channel: str = ""
    dest_uniqueid: str = ""
    dial_status: str = ""  # ANSWER, BUSY, NOANSWER, CANCEL, CONGESTION, CHANUNAVAIL

    @classmethod
    def from_message(cls, msg: AmiMessage) -> AmiEvent:
        return cls(**cls._channel_fields(msg), dest_channel=msg.get("DestChannel"),  # type: ignore[arg-type]
                   dest_uniqueid=msg.get("DestUniqueid"), dial_status=msg.get("DialStatus"))


@dataclass(frozen=True, slots=True)
class OriginateResponseEvent(AmiEvent):
    """The end of an asynchronous Originate: ``Success`` once answered, else ``Failure`` with
    ``Reason`` (an AST_CONTROL code: 0 failed, 1 hung up, 3 rang out, 5 busy, 8 congestion)."""

    name: ClassVar[str] = "OriginateResponse"
    action_id: str = ""
    response: str = ""
    channel: str = ""
    uniqueid: str = ""
    reason: int = 0

    @classmethod
    def from_message(cls, msg: AmiMessage) -> AmiEvent:
        return cls(msg, action_id=msg.action_id, response=msg.get("Response"),
                   channel=msg.get("Channel"), uniqueid=msg.get("Uniqueid"),
                   reason=_int(msg.get("Reason")))


@dataclass(frozen=True, slots=True)
class FullyBootedEvent(AmiEvent):
    name: ClassVar[str] = "FullyBooted"


@dataclass(frozen=True, slots=True)
class ShutdownEvent(AmiEvent):
    """Asterisk is stopping (``core stop``/``restart``): its calls are about to go."""

    name: ClassVar[str] = "Shutdown"
    shutdown: str = ""  # Cleanly | Uncleanly
    restart: bool = False

    @classmethod
    def from_message(cls, msg: AmiMessage) -> AmiEvent:
        return cls(msg, shutdown=msg.get("Shutdown"),
                   restart=msg.get("Restart").lower() in ("true", "yes"))


EVENT_TYPES: dict[str, type[AmiEvent]] = {
    t.name: t for t in (NewchannelEvent, NewstateEvent, HangupEvent, VarSetEvent, DtmfEndEvent,
                        DialEndEvent, OriginateResponseEvent, FullyBootedEvent, ShutdownEvent,
                        SoftHangupRequestEvent)
}


def typed_event(msg: AmiMessage) -> AmiEvent:
    """The typed form of an event message (:class:`AmiEvent` for names not listed above)."""
    return EVENT_TYPES.get(msg.get("Event"), AmiEvent).from_message(msg)
