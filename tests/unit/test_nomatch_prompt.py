"""The opt-in grammar prompt (asr.grammar_prompt): which turns are prompted, and which model
judges them (pure: options and features in, prompt and coefficients out)."""

from __future__ import annotations

from asr.backends.whisper import PROMPT_MAX_PHRASES, turn_prompt
from asr.grammar import compile_cached
from asr.nomatch import (
    DEFAULT_THRESHOLD,
    FORCED_COEFFICIENTS,
    calibrated_forced,
    forced_coefficients,
)
from asr.recognizer import RecognizerOptions
from tests.nomatch_pins import assert_near_the_line

DIGITS = ("#JSGF V1.0;\ngrammar d;\npublic <d> = zero | oh | one | two | three | four | five | "
          "six | seven | eight | nine | ten;\n")
# features of two prompted turns (bench_fsdd/bench_grammar --prompt dumps): FSDD lucas saying
# "nine", heard as "Now," (recording 6); white noise, forced best "nine"
NINE_HEARD_NOW = {"gap": 3.007, "margin": 6.0, "no_speech": 0.649, "no_speech_sq": 0.421,
                  "score": 1.0, "agree": 0.012, "ll_per_word": -3.165}
WHITE_NOISE = {"gap": 4.815, "margin": 3.113, "no_speech": 0.65, "no_speech_sq": 0.423,
               "score": 0.0, "agree": 0.0, "ll_per_word": -4.666}


def _opts(**kw: object) -> RecognizerOptions:
    return RecognizerOptions(mode="grammar", grammar=DIGITS, **kw)  # type: ignore[arg-type]


def test_prompt_off_by_default() -> None:
    assert turn_prompt(_opts(), compile_cached(DIGITS), "whisper") == (None, False)


def test_prompt_on_small_grammar_uses_its_phrases_and_the_prompted_model() -> None:
    prompt, prompted = turn_prompt(_opts(grammar_prompt=True), compile_cached(DIGITS), "whisper")
    assert prompted
    assert prompt == "zero, oh, one, two, three, four, five, six, seven, eight, nine, ten."


def test_hints_win_and_keep_the_shipped_model() -> None:
    opts = _opts(grammar_prompt=True, hints=("account", "balance"))
    assert turn_prompt(opts, compile_cached(DIGITS), "whisper") == ("account, balance.", False)


def test_no_prompt_without_a_prompted_model_or_for_large_grammars_and_keywords() -> None:
    g = compile_cached(DIGITS)
    assert turn_prompt(_opts(grammar_prompt=True), g, "whisper-base") == (None, False)
    big = compile_cached("\n".join(f"option {i}" for i in range(PROMPT_MAX_PHRASES + 1)))
    assert turn_prompt(_opts(grammar_prompt=True), big, "whisper") == (None, False)
    spot = compile_cached("yes\nno", spotting=True)
    assert turn_prompt(_opts(grammar_prompt=True), spot, "whisper") == (None, False)
    assert turn_prompt(_opts(grammar_prompt=True), None, "whisper") == (None, False)


def test_forced_coefficients_per_path() -> None:
    assert forced_coefficients("whisper", False) == FORCED_COEFFICIENTS["whisper"]
    assert forced_coefficients("whisper", True) == FORCED_COEFFICIENTS["whisper+prompt"]
    assert forced_coefficients("whisper-base", True) == FORCED_COEFFICIENTS["whisper-base"]
    assert forced_coefficients("whisper", True) != forced_coefficients("whisper", False)


def test_prompted_model_accepts_a_short_answer_the_shipped_one_rejects_and_rejects_noise() -> None:
    prompted = forced_coefficients("whisper", True)
    assert calibrated_forced(NINE_HEARD_NOW, prompted) >= 0.5
    assert calibrated_forced(NINE_HEARD_NOW, forced_coefficients("whisper", False)) < 0.5
    assert calibrated_forced(WHITE_NOISE, prompted) < 0.5


# Prompted turns (FSDD, stop-30 --prompt dumps) within 0.1 logit of the prompted model's
# threshold, with the confidence it gives each: an intercept, weight or threshold change of a
# tenth of a logit flips one of these decisions, so the model cannot move unnoticed.
NEAR_THE_LINE = (
    # out of grammar: "zero" (heard "Hero.") in a menu without it, forced best "hello"
    ({"gap": 0.935, "margin": 6.0, "no_speech": 0.155, "no_speech_sq": 0.024, "score": 0.0,
      "agree": 0.0, "ll_per_word": -2.225}, 0.4788),
    # "four" heard as "Oh.": rejected (a false reject the model accepts to keep nomatch)
    ({"gap": 2.966, "margin": 4.255, "no_speech": 0.348, "no_speech_sq": 0.121, "score": 0.0,
      "agree": 1.0, "ll_per_word": -2.737}, 0.4811),
    # "eight" heard as "Hey.": accepted
    ({"gap": 2.705, "margin": 6.0, "no_speech": 0.044, "no_speech_sq": 0.002, "score": 0.0,
      "agree": 1.0, "ll_per_word": -3.05}, 0.5058),
    # "two" heard as "hmm": accepted
    ({"gap": 1.66, "margin": 2.346, "no_speech": 0.524, "no_speech_sq": 0.274, "score": 0.0,
      "agree": 1.0, "ll_per_word": -2.798}, 0.5112),
)


def test_prompted_model_is_pinned() -> None:
    """The prompted model's coefficients, intercept and threshold are what the held-out figures
    (docs/benchmarks.md, "Grammar prompt, stop 30/31") were measured with."""
    prompted = FORCED_COEFFICIENTS["whisper+prompt"]
    assert DEFAULT_THRESHOLD == 0.5  # the prompted model's operating shift is set for it
    assert_near_the_line(prompted, NEAR_THE_LINE)
