"""The AudioSocket wire format (Asterisk's ``AudioSocket()`` app), pure and sans-IO.

Every message is ``kind`` (1 byte), ``length`` (2 bytes, big-endian) and ``length`` bytes of
payload (res/res_audiosocket.c, include/asterisk/res_audiosocket.h):

======  ===========  =====================================================================
kind    name         payload
======  ===========  =====================================================================
0x00    hangup       none; the server asks Asterisk to end the app (the dialplan goes on)
0x01    uuid         16 bytes: the call's UUID, Asterisk's first message
0x03    dtmf         1 byte: the ASCII digit (Asterisk sends one per key, at its end)
0x10    audio        signed linear 16-bit little-endian, 8 kHz mono (``slin``)
0x11-18 audio        slin at 12, 16, 24, 32, 44.1, 48, 96, 192 kHz (channel-driver use)
0xff    error        1 byte error code from Asterisk
======  ===========  =====================================================================

When the caller hangs up, Asterisk just closes the socket (TCP EOF); it sends no hangup
message. Asterisk ends the app after 2 s with no audio either way (``MAX_WAIT_TIMEOUT_MSEC``),
which is why the engine sends silence when it has nothing to say.
"""

from __future__ import annotations

import struct
import uuid
from dataclasses import dataclass

KIND_HANGUP = 0x00
KIND_UUID = 0x01
KIND_DTMF = 0x03
KIND_AUDIO = 0x10  # slin, 8 kHz
KIND_ERROR = 0xFF
AUDIO_KINDS_HZ = {0x10: 8000, 0x11: 12000, 0x12: 16000, 0x13: 24000, 0x14: 32000,
                  0x15: 44100, 0x16: 48000, 0x17: 96000, 0x18: 192000}
HEADER_BYTES = 3
UUID_BYTES = 16
MAX_PAYLOAD_BYTES = 0xFFFF
# A 20 ms slin frame at 8 kHz is 320 bytes; 1 s of audio in one message is already abnormal.
MAX_AUDIO_PAYLOAD_BYTES = 16000 * 2
_HEADER = struct.Struct("!BH")
DTMF_DIGITS = frozenset("0123456789*#ABCD")


class AudioSocketError(ValueError):
    """A message that breaks the framing rules (unknown kind, wrong length)."""


@dataclass(frozen=True, slots=True)
class AudioSocketMessage:
    kind: int
    payload: bytes = b""

    def serialize(self) -> bytes:
        if len(self.payload) > MAX_PAYLOAD_BYTES:
            raise AudioSocketError(f"payload of {len(self.payload)} bytes exceeds the 16-bit "
                                   "length field")
        return _HEADER.pack(self.kind, len(self.payload)) + self.payload

    @property
    def uuid(self) -> str:
        """The UUID of a ``uuid`` message in its canonical string form."""
        return str(uuid.UUID(bytes=self.payload))

    @property
    def digit(self) -> str:
        return chr(self.payload[0]) if self.payload else ""

    @property
    def error_code(self) -> int:
        return self.payload[0] if self.payload else 0

    @property
    def sample_rate_hz(self) -> int | None:
        return AUDIO_KINDS_HZ.get(self.kind)


def audio_message(pcm_le: bytes) -> bytes:
    """One 8 kHz slin audio message (``pcm_le``: int16 little-endian samples)."""
    return _HEADER.pack(KIND_AUDIO, len(pcm_le)) + pcm_le


HANGUP_MESSAGE = _HEADER.pack(KIND_HANGUP, 0)


def uuid_message(call_uuid: str) -> bytes:
    """The first message Asterisk sends (tests act as Asterisk with it)."""
    return AudioSocketMessage(KIND_UUID, uuid.UUID(call_uuid).bytes).serialize()


def dtmf_message(digit: str) -> bytes:
    if digit not in DTMF_DIGITS:
        raise AudioSocketError(f"{digit!r} is not a DTMF digit")
    return AudioSocketMessage(KIND_DTMF, digit.encode()).serialize()


class AudioSocketParser:
    """Splits a stream into messages; checks each kind's length as Asterisk would.

    Raises :class:`AudioSocketError` on a message no Asterisk sends (the connection is then
    closed: a stream out of step cannot be resynchronised)."""

    def __init__(self) -> None:
        self._buf = bytearray()

    def feed(self, data: bytes) -> list[AudioSocketMessage]:
        buf = self._buf
        buf += data
        out: list[AudioSocketMessage] = []
        pos = 0
        n = len(buf)
        while n - pos >= HEADER_BYTES:
            kind, length = _HEADER.unpack_from(buf, pos)
            _check(kind, length)
            end = pos + HEADER_BYTES + length
            if end > n:
                break
            out.append(AudioSocketMessage(kind, bytes(buf[pos + HEADER_BYTES:end])))
            pos = end
        if pos:
            del buf[:pos]
        return out

    @property
    def buffered(self) -> int:
        return len(self._buf)


def _check(kind: int, length: int) -> None:
    if kind in AUDIO_KINDS_HZ:
        if length == 0 or length % 2 or length > MAX_AUDIO_PAYLOAD_BYTES:
            raise AudioSocketError(f"audio message of {length} bytes (expected whole 16-bit "
                                   f"samples, at most {MAX_AUDIO_PAYLOAD_BYTES} bytes)")
    elif kind == KIND_UUID:
        if length != UUID_BYTES:
            raise AudioSocketError(f"uuid message of {length} bytes (expected {UUID_BYTES})")
    elif kind in (KIND_DTMF, KIND_ERROR):
        if length != 1:
            raise AudioSocketError(f"message kind 0x{kind:02x} of {length} bytes (expected 1)")
    elif kind == KIND_HANGUP:
        if length != 0:
            raise AudioSocketError(f"hangup message with {length} bytes of payload")
    else:
        raise AudioSocketError(f"unknown AudioSocket message kind 0x{kind:02x}")
