"""Mandarin prompts a caller can understand: Kokoro renders, whisper base hears it back.

The real model (var/models/kokoro, scripts/fetch_models.sh) speaks the sample notification flow's
prompts; the audio goes through 8 kHz G.711 as on a call and whisper base (Mandarin) transcribes
it. The character error rate must stay under a bound that espeak-ng's formant Mandarin (the
fallback) fails on the same prompts: this test fails if the default Mandarin voice regresses to
espeak-ng or if the front end's phonemes break. Figures: docs/benchmarks.md ("Mandarin prompts").
"""

from __future__ import annotations

import numpy as np
import pytest

from asr.models import get_engine
from asr.textnorm import token_variants, tokens
from asr.tts import TtsService, kokoro
from audio.resample import to_16k
from tests import speech_data as sd

pytestmark = [pytest.mark.models]

# The notification flow's prompts (examples/campaigns/notification_flow.json, variables filled)
PROMPTS = (
    "张先生您好，这里是示例燃气公司。您本期燃气费128元，请于12月15日前缴纳。",
    "确认收到请按1或说收到，重听请按2，转人工请按0，不再接收此类通知请按9。",
    "抱歉，没有听到您的选择。",
    "感谢您的确认，再见。",
    "正在为您转接人工服务。",
    "好的，我们将不再给您拨打此类电话。",
)
MAX_CER = 0.40  # measured on these prompts: Kokoro ~0.2 (homophones, a few tones), espeak-ng ~0.8


def _cer(engine: object, svc: TtsService, voice: str) -> float:
    edits = chars = 0
    for text in PROMPTS:
        pcm = svc.render(text, voice=voice, language="zh-CN").pcm
        heard = engine.decode(to_16k(sd.phone(pcm, 8000)), language="zh")  # type: ignore[attr-defined]
        hyp = heard.hypotheses[0].text if heard.hypotheses else ""
        ref = "".join(tokens(kokoro.normalise_mandarin(text)))
        # whisper writes numerals as digits or characters: the closer reading counts
        edits += min(sd.edit_distance(ref, "".join(v)) for v in token_variants(hyp, chinese=True))
        chars += len(ref)
    return edits / chars


@pytest.fixture(scope="module")
def whisper_base() -> object:
    if not kokoro.installed():
        pytest.fail(f"Kokoro model missing in {kokoro.default_model_path()}: run "
                    "scripts/fetch_models.sh")
    return get_engine("whisper-base")


def test_kokoro_prompts_round_trip_through_the_recogniser(whisper_base: object,
                                                          tmp_path: object) -> None:
    svc = TtsService(None)
    assert svc.choose(None, "zh-CN")[0] == "kokoro"  # the default Mandarin voice
    kokoro_cer = _cer(whisper_base, svc, None)  # type: ignore[arg-type]
    espeak_cer = _cer(whisper_base, svc, "espeak:cmn")
    assert kokoro_cer <= MAX_CER, f"Kokoro CER {kokoro_cer:.3f}"
    assert espeak_cer > MAX_CER, f"espeak-ng CER {espeak_cer:.3f}: the bound no longer separates"


def test_kokoro_is_deterministic_and_streams_clause_by_clause() -> None:
    text = PROMPTS[1]
    a = kokoro.kokoro_synthesize(text)
    b = TtsService(None).render(text, language="zh").pcm
    assert a.tobytes() == b.tobytes()  # same text, same samples: stable prompt cache entries
    parts = list(kokoro.stream(text))
    assert len(parts) == 1 and parts[0].dtype == np.int16  # one clause under the limit
    long = "，".join(PROMPTS) + "。"
    parts = list(kokoro.stream(long))
    assert len(parts) > 1  # the first part can play while the rest renders
    assert 0.5 < len(parts[0]) / 8000 < 15
