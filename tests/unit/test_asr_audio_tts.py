"""PCM helpers, intent matching and the prompt cache (espeak-ng: real audio, fast)."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest

from asr.intents import match_intent
from asr.tts import TtsError, TtsService
from audio.pcm import frames
from audio.resample import Upsampler2x, resample
from audio.wavio import read_wav, wav_bytes


def test_wav_round_trip_is_byte_exact() -> None:
    pcm = (np.arange(-1000, 1000, 7)).astype(np.int16)
    raw = wav_bytes(pcm, 8000)
    back, rate = read_wav(io.BytesIO(raw))
    assert rate == 8000 and back.tobytes() == pcm.tobytes()
    assert wav_bytes(back, rate) == raw


def test_streaming_upsampler_matches_whole_buffer_resampling() -> None:
    t = np.arange(8000) / 8000
    pcm = (np.sin(2 * np.pi * 440 * t) * 10000).astype(np.int16)
    whole = resample(pcm, 8000, 16000).astype(float)
    up = Upsampler2x()
    streamed = np.concatenate([up.process(f) for f in frames(pcm)] + [up.flush()]).astype(float)
    delay = (Upsampler2x.TAPS - 1) // 2
    n = len(whole) - 200
    corr = np.corrcoef(whole[100:n], streamed[100 + delay : n + delay])[0, 1]
    assert corr > 0.999
    assert len(streamed) >= len(whole) + delay


def test_frames_pad_last() -> None:
    fs = frames(np.ones(170, np.int16))
    assert [len(f) for f in fs] == [160, 160] and fs[1][10:].sum() == 0


def test_intent_matching_longest_phrase_wins() -> None:
    intents = {"bill": ("bill",), "pay": ("pay my bill",), "agent": ("agent", "a person")}
    assert match_intent("I want to pay my bill.", intents) == "pay"
    assert match_intent("Bill, please", intents) == "bill"
    assert match_intent("talk to a person", intents) == "agent"
    assert match_intent("billing", intents) is None  # whole words only


def test_tts_espeak_renders_8k_and_caches(tmp_path: Path) -> None:
    svc = TtsService(tmp_path, espeak_voice="en-us")
    r1 = svc.render("Press one for billing", voice="espeak:en-us")
    assert r1.engine == "espeak" and not r1.cache_hit and 0.8 < r1.duration_s < 4
    assert np.abs(r1.pcm.astype(int)).max() > 1000
    r2 = svc.render("Press one for billing", voice="espeak:en-us")
    assert r2.cache_hit and r2.pcm.tobytes() == r1.pcm.tobytes()
    _, rate = read_wav(r2.path)  # type: ignore[arg-type]
    assert rate == 8000
    assert svc.render("Press two for sales", voice="espeak:en-us").path != r1.path


def test_tts_mandarin_goes_to_espeak_cmn_when_configured(tmp_path: Path) -> None:
    svc = TtsService(tmp_path, mandarin_voice="cmn")
    assert svc.choose(None, "cmn") == ("espeak", "cmn")
    assert svc.choose(None, "zh-CN") == ("espeak", "cmn")
    r = svc.render("您好，欢迎致电", language="cmn")
    assert r.voice == "cmn" and r.duration_s > 1.0


def test_tts_text_check_masks_or_refuses(tmp_path: Path) -> None:
    def check(text: str) -> str:
        if "forbidden" in text:
            raise TtsError("tts: text refused by sensitive-word check")
        return text.replace("secret", "***")

    svc = TtsService(tmp_path, text_check=check)
    with pytest.raises(TtsError, match="sensitive-word"):
        svc.render("a forbidden word", voice="espeak:en-us")
    masked = svc.render("the secret", voice="espeak:en-us")
    plain = svc.render("the ***", voice="espeak:en-us")
    assert masked.path == plain.path  # cached under the checked text


@pytest.mark.parametrize(("text", "speed", "match"), [("  ", 1.0, "empty"), ("hi", 0.0, "speed")])
def test_tts_rejects_bad_requests(tmp_path: Path, text: str, speed: float, match: str) -> None:
    with pytest.raises(TtsError, match=match):
        TtsService(tmp_path).render(text, voice="espeak:en-us", speed=speed)


def test_tts_unknown_espeak_voice_fails_precisely(tmp_path: Path) -> None:
    with pytest.raises(TtsError, match="voice 'xx-nope'"):
        TtsService(tmp_path).render("hello", voice="espeak:xx-nope")


def test_whisper_repeat_cutting() -> None:
    from asr.backends.whisper import drop_repeats

    assert drop_repeats("I want to check my balance. I want") == "I want to check my balance."
    assert drop_repeats("Pay my bill. Pay my bill.") == "Pay my bill."
    assert drop_repeats("yes yes yes yes") == "yes"
    assert drop_repeats("Yes. Yes. Yes.") == "Yes."
    assert drop_repeats("Billing. Then sales.") == "Billing. Then sales."  # distinct: kept


def test_tts_with_the_real_sensitive_word_filter(tmp_path: Path) -> None:
    from app.speech import tts_word_check
    from compliance.words import Action, Term, WordFilter

    wf = WordFilter([Term("scamword"), Term("rudeword", action=Action.MASK)])
    svc = TtsService(tmp_path, text_check=tts_word_check(wf))
    with pytest.raises(TtsError, match="scamword"):
        svc.render("please send the scamword now", voice="espeak:en-us")
    assert not list(tmp_path.glob("*.wav"))  # nothing synthesised or cached
    r = svc.render("you rudeword", voice="espeak:en-us")
    assert r.duration_s > 0.3
