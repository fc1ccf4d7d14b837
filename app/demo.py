"""The built-in demo IVR: what ``ivr run`` answers with when no flow is routed.

Written only against the ``Call`` interface. Prompts are spoken with TTS when the speech layer
is configured, otherwise played as tone patterns (so the demo works with no models at all).
"""

from __future__ import annotations

import numpy as np

from audio.tones import silence, tone
from core.call import BargeIn, Call, DigitSpec

MENU = "Welcome to the IVR engine demo. Press 1 to hear a tone, 2 to hear your keys back."


def _tones(freq: float, count: int) -> np.ndarray:
    parts = []
    for _ in range(count):
        parts += [tone(freq, 0.15), silence(0.1)]
    return np.concatenate(parts)


async def _prompt(call: Call, text: str, fallback: np.ndarray) -> str | None:
    try:
        res = await call.say(text, barge_in=BargeIn.DTMF)
    except RuntimeError:  # no TTS configured
        res = await call.play(fallback, barge_in=BargeIn.DTMF)
    return res.digit


async def demo_app(call: Call) -> None:
    await call.answer()
    for _attempt in range(3):
        await _prompt(call, MENU, _tones(660, 2))
        got = await call.collect_digits(DigitSpec(max_digits=1, terminator=None,
                                                  first_digit_timeout_s=5))
        if got.digits == "1":
            await call.play(tone(440, 1.0))
            break
        if got.digits == "2":
            await _prompt(call, "Enter some digits, then press pound.", _tones(880, 1))
            keys = await call.collect_digits(DigitSpec(max_digits=20, terminator="#"))
            await _prompt(call, "You pressed " + " ".join(keys.digits or "nothing"),
                          _tones(500, max(1, len(keys.digits))))
            break
    await _prompt(call, "Goodbye.", _tones(330, 1))
    await call.hangup()
