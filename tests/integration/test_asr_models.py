"""Real models on real audio: synthetic callers (piper and espeak-ng voices, speeds, sox noise,
G.711 round trip) and one real human recording (beckett.wav, from scripts/fetch_test_audio.sh).

Each model is loaded once per module (asr.models caches them per process).
"""

from __future__ import annotations

import numpy as np
import pytest

from asr.intents import match_intent
from asr.models import get_engine
from asr.recognizer import Engine, FinalResult, RecognizerError, RecognizerOptions
from asr.synth import speak, telephone
from audio.pcm import Pcm, frames
from audio.wavio import load_wav
from speaker_id.testdata import beckett

pytestmark = [pytest.mark.models, pytest.mark.slow]

INTENTS: dict[str, tuple[str, ...]] = {
    "balance": ("account balance",),
    "billing": ("billing",),
    "support": ("technical support",),
    "agent": ("agent",),
    "sales": ("sales",),
    "cancel": ("cancel my order",),
    "pay": ("pay my bill",),
    "menu": ("main menu",),
    "yes": ("yes",),
    "no": ("no",),
}
SENTENCES = {
    "balance": "I want to check my account balance",
    "billing": "billing please",
    "support": "technical support",
    "agent": "I want to speak to an agent",
    "sales": "sales",
    "cancel": "I would like to cancel my order",
    "pay": "I want to pay my bill",
    "menu": "main menu please",
    "yes": "yes",
    "no": "no",
}
GRAMMAR = """#JSGF V1.0;
grammar ivr;
public <ivr> = [<pre>] <intent> [please] ;
<pre> = i want to | i would like to | i want to check my | i want to speak to ;
<intent> = account balance | billing | technical support | an agent | sales
         | cancel my order | pay my bill | main menu | yes | no ;
"""
VOICES = [  # (voice, speed, noise): piper at three speeds, three espeak-ng voices, two noises
    ("piper", 1.0, None),
    ("piper", 0.8, "pinknoise"),
    ("piper", 1.25, None),
    ("en-us", 1.0, None),
    ("en-gb", 1.0, "whitenoise"),
    ("en-us+f3", 0.9, None),
]


def recognise(engine: Engine, pcm8k: Pcm, options: RecognizerOptions) -> FinalResult:
    stream = engine.open(options)
    for f in frames(pcm8k):
        stream.feed(f)
    return stream.finish()


@pytest.fixture(scope="module")
def sphinx() -> Engine:
    return get_engine("pocketsphinx")


@pytest.fixture(scope="module")
def whisper() -> Engine:
    return get_engine("whisper")


@pytest.fixture(scope="module")
def callers() -> dict[tuple[str, float, str | None], dict[str, Pcm]]:
    return {
        v: {k: telephone(speak(s, v[0], v[1]), 16000, noise=v[2]) for k, s in SENTENCES.items()}
        for v in VOICES
    }


def test_sphinx_grammar_recognises_menu_intents(sphinx: Engine, callers) -> None:
    opts = RecognizerOptions(mode="grammar", grammar=GRAMMAR)
    misses = []
    for voice, utts in callers.items():
        for intent, pcm in utts.items():
            r = recognise(sphinx, pcm, opts)
            assert r.timings["rtf"] > 0  # measured (speed itself: tests/bench/bench_asr.py)
            if match_intent(r.text, INTENTS) != intent:
                misses.append((voice, intent, r.text))
    total = len(VOICES) * len(SENTENCES)
    assert len(misses) <= total // 10, misses  # >= 90% of 60 utterances
    # one-word "sales" is the known weak spot: its /s/ lies mostly above G.711's 4 kHz band.
    # Pooled decoders carry their live cepstral mean from one utterance to the next, so which
    # utterances ran before (test order) moves a borderline one: en-us+f3 has scored 2 and 3.
    for voice in VOICES:
        assert len([m for m in misses if m[0] == voice]) <= 3, misses


def test_sphinx_keywords_mode(sphinx: Engine, callers) -> None:
    opts = RecognizerOptions(mode="keywords", keywords=("billing", "sales", "technical support"))
    utts = callers[("piper", 1.0, None)]
    r = recognise(sphinx, utts["sales"], opts)
    assert r.text == "sales" and 0.3 < r.confidence <= 1.0
    assert recognise(sphinx, utts["support"], opts).text == "technical support"


def test_sphinx_rejects_unknown_word_and_bad_grammar(sphinx: Engine) -> None:
    with pytest.raises(RecognizerError, match="'zzqxv' is not in the pronunciation dictionary"):
        sphinx.open(RecognizerOptions(mode="keywords", keywords=("zzqxv",)))
    with pytest.raises(RecognizerError, match="invalid JSGF"):
        sphinx.open(
            RecognizerOptions(
                mode="grammar", grammar="#JSGF V1.0;\ngrammar x;\npublic <a> = (yes ;\n"
            )
        )
    with pytest.raises(RecognizerError, match="free text is not supported"):
        sphinx.open(RecognizerOptions())


def test_sphinx_decoders_are_reused(sphinx: Engine, callers) -> None:
    opts = RecognizerOptions(mode="keywords", keywords=("yes", "no"))
    pcm = callers[("piper", 1.0, None)]["yes"]
    assert [recognise(sphinx, pcm, opts).text for _ in range(3)] == ["yes"] * 3


def test_whisper_free_text_on_piper_callers(whisper: Engine, callers) -> None:
    utts = callers[("piper", 1.0, None)]
    noisy = callers[("piper", 0.8, "pinknoise")]
    hits = 0
    for intent in ("balance", "agent", "cancel", "pay", "support"):
        for src in (utts, noisy):
            r = recognise(whisper, src[intent], RecognizerOptions())
            hits += match_intent(r.text, INTENTS) == intent
    assert hits >= 9
    r = recognise(whisper, utts["balance"], RecognizerOptions())
    assert r.text.lower().rstrip(".").endswith("to check my account balance")  # piper varies "want"
    assert 0.5 < r.confidence <= 1.0


def test_whisper_on_real_human_speech(whisper: Engine) -> None:
    pcm = load_wav(beckett())  # a phone line: 8 kHz
    r = recognise(whisper, pcm, RecognizerOptions())
    words = set(r.text.lower().replace(",", " ").replace(".", " ").split())
    assert {"ever", "tried", "failed", "matter", "try", "again", "fail", "better"} <= words, r.text
    assert r.timings["rtf"] > 0  # measured (speed itself: tests/bench/bench_asr.py)


def test_whisper_silence_gives_no_text(whisper: Engine) -> None:
    r = recognise(whisper, np.zeros(16000, np.int16), RecognizerOptions())
    assert r.text == ""


def test_vosk_korean_keywords() -> None:
    vosk = get_engine("vosk")
    phrases = ("잔액 조회", "상담원 연결", "카드 분실", "예", "아니요")
    opts = RecognizerOptions(mode="keywords", keywords=phrases, language="ko-KR")
    intents = {p: (p,) for p in phrases}
    for phrase in ("상담원 연결", "예", "아니요"):
        pcm = telephone(speak(phrase, "ko"), 16000)
        r = recognise(vosk, pcm, opts)
        assert match_intent(r.text, intents) == phrase, r.text
        assert r.timings["finish_s"] < 0.2  # streaming: the final is ready right away


def test_sphinx_closed_stream_refuses_audio_and_returns_its_decoder(sphinx: Engine) -> None:
    opts = RecognizerOptions(mode="keywords", keywords=("alpha", "bravo"))
    st = sphinx.open(opts)
    st.feed(np.zeros(1600, np.int16))
    st.close()
    st.close()  # idempotent
    with pytest.raises(RecognizerError, match="stream is closed"):
        st.feed(np.zeros(160, np.int16))
    with pytest.raises(RecognizerError, match="finish\\(\\) called twice|stream is closed"):
        st.finish()
    st2 = sphinx.open(opts)  # the returned decoder serves the next utterance
    st2.feed(np.zeros(1600, np.int16))
    assert st2.finish().text == ""


def test_whisper_partials_when_asked(whisper: Engine, callers) -> None:
    pcm = callers[("piper", 0.8, "pinknoise")]["balance"]  # ~2.5 s: partials at 1 s and 2 s
    stream = whisper.open(RecognizerOptions(partials=True))
    assert not stream.inline_feed  # partial decoding is real work: it goes to the pool
    partials = [p for f in frames(pcm) for p in stream.feed(f)]
    assert partials and partials[0].audio_s >= 1.0
    assert "account" in stream.finish().text.lower()
    assert whisper.open(RecognizerOptions()).inline_feed  # plain free text only buffers
