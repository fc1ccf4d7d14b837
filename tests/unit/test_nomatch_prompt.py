"""The opt-in grammar prompt (asr.grammar_prompt): which turns are prompted, and which model
judges them (pure: options and features in, prompt and coefficients out)."""

from __future__ import annotations

from asr.backends.whisper import PROMPT_MAX_PHRASES, turn_prompt
from asr.grammar import compile_cached
from asr.nomatch import FORCED_COEFFICIENTS, calibrated_forced, forced_coefficients
from asr.recognizer import RecognizerOptions

DIGITS = ("#JSGF V1.0;\ngrammar d;\npublic <d> = zero | oh | one | two | three | four | five | "
          "six | seven | eight | nine | ten;\n")
# features of two prompted turns (bench_fsdd/bench_grammar --prompt dumps): FSDD nicolas saying
# "five", heard as "Hi."; white noise, forced best "nine"
FIVE_HEARD_HI = {"gap": 0.275, "margin": 6.0, "no_speech": 0.089, "no_speech_sq": 0.008,
                 "score": 0.0, "agree": 1.0, "ll_per_word": -1.67}
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
    assert calibrated_forced(FIVE_HEARD_HI, prompted) >= 0.5
    assert calibrated_forced(FIVE_HEARD_HI, forced_coefficients("whisper", False)) < 0.5
    assert calibrated_forced(WHITE_NOISE, prompted) < 0.5
