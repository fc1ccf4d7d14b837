"""One way to get a call's codec by its SDP name: PCMU, PCMA, G722.

Why: G.711 is stateless (module functions would do) but G.722 is ADPCM with per-direction state,
so a media session asks :func:`new_codec` once per call and gets its own encoder/decoder pair;
the session code is then the same for every codec. All of them take and give the engine's 8 kHz
int16 Pcm in 20 ms frames (160 samples -> 160 payload bytes, RTP timestamp +160).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from audio import g711
from audio.pcm import Pcm


@dataclass(frozen=True, slots=True)
class Codec:
    name: str  # SDP encoding name
    payload_type: int  # static RTP payload type (RFC 3551)
    rtp_clock_rate: int  # as signalled in SDP (8000 for G.722 too, RFC 3551 §4.5.2)
    encode: Callable[[Pcm], bytes]
    decode: Callable[[bytes], Pcm]


STATIC_PAYLOAD_TYPES = {"PCMU": 0, "PCMA": 8, "G722": 9}


def new_codec(name: str) -> Codec:
    """A fresh codec instance for one call (G.722 state is per call and direction)."""
    key = name.upper()
    if key == "PCMU":
        return Codec("PCMU", 0, 8000, g711.ulaw_encode, g711.ulaw_decode)
    if key == "PCMA":
        return Codec("PCMA", 8, 8000, g711.alaw_encode, g711.alaw_decode)
    if key == "G722":
        from audio.g722 import G722Decoder, G722Encoder  # noqa: PLC0415 - optional wheel

        enc, dec = G722Encoder(8000), G722Decoder(8000)
        return Codec("G722", 9, 8000, enc.encode, dec.decode)
    raise ValueError(f"unsupported codec {name!r}; supported: {', '.join(STATIC_PAYLOAD_TYPES)}")
