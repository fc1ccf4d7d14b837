"""Real music and noise through the engine's grammar path come out ``nomatch`` or ``noinput``.

Real model (whisper tiny.en, the default English grammar engine), real recordings fetched by
scripts/fetch_test_audio.sh (tests/fixtures/speech/manifest.json, ``non_speech_clips``) through
8 kHz G.711. Hold music is what a caller on hold hears and may answer over; a street's noise and
a ringback tone are what an open line carries. tiny.en writes words for each ("I don't know.",
"Beep Beep") and the forced best digit is "oh" (for the hold music as likely as the free
transcript, gap 0.06 nats): only the confidence (0.002 and below; its per-word likelihood and
no-speech terms) keeps them from becoming an answer, so a gate that let such audio through fails
here (docs/benchmarks.md, "Real music and noise, stop 31").
"""

from __future__ import annotations

import numpy as np
import pytest

from asr.models import get_engine
from asr.recognizer import RecognizerOptions
from audio.pcm import frames
from tests import speech_data as sd

pytestmark = pytest.mark.models

CLIPS = ("moh_macroform_cold_day@30",  # music: Asterisk's default hold music
         "ufo_city_abnd_ufoai_atm@20",  # noise: a city's atmosphere
         "fd_phone_outgoing_calling@0")  # telephone: a ringback tone (tiny.en wrote "Beep Beep")
MENU = "billing\ntechnical support\nopening hours\nyes\nno\n"


def _final(pcm: np.ndarray, grammar: str) -> object:
    stream = get_engine("whisper").open(RecognizerOptions(mode="grammar", grammar=grammar))
    for f in frames(pcm):
        stream.feed(f)
    return stream.finish()


@pytest.mark.skipif(not sd.REAL_DIR.is_dir(),
                    reason="var/testdata not fetched (scripts/fetch_test_audio.sh)")
@pytest.mark.parametrize("clip_id", CLIPS)
def test_real_music_and_noise_are_not_answers(clip_id: str) -> None:
    item = next(i for i in sd.real_non_speech() if i.id == clip_id)
    for grammar in (sd.DIGITS_JSGF, MENU):
        r = _final(item.pcm, grammar)
        assert r.status in ("nomatch", "noinput") and r.text == "", (clip_id, r)  # type: ignore[attr-defined]
