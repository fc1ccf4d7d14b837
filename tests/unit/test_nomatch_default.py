"""The default forced-scoring model (tiny.en, no prompt; asr/nomatch.py, refitted at stop 32
with FSDD's speakers): real turns within 0.1 logit of its threshold, from the benches' dumps
(bench_fsdd --dump, FSDD recordings 45-49), each with the confidence the model gives it. An
intercept, weight or threshold change of a tenth of a logit flips one of these decisions, so
the shipped model cannot move unnoticed; the comments say what each turn was."""

from __future__ import annotations

from asr.nomatch import forced_coefficients
from tests.nomatch_pins import assert_near_the_line

NEAR_THE_LINE = (
    # out of grammar (a training-only extra trial): "four" (heard "4.") in a menu without it,
    # forced best "oh": rejected
    ({"gap": 0.341, "margin": 1.93, "no_speech": 0.417, "no_speech_sq": 0.174, "score": 0.0,
      "agree": 0.0, "ll_per_word": -2.183}, 0.4866),
    # "three" heard as "Please.": rejected (a false reject)
    ({"gap": 1.785, "margin": 2.914, "no_speech": 0.364, "no_speech_sq": 0.133, "score": 0.0,
      "agree": 0.0, "ll_per_word": -2.307}, 0.4945),
    # "seven" heard as "heaven": rejected (a false reject)
    ({"gap": 0.81, "margin": 0.339, "no_speech": 0.297, "no_speech_sq": 0.088, "score": 0.727,
      "agree": 0.854, "ll_per_word": -2.59}, 0.4947),
    # "three" heard as "T.": accepted
    ({"gap": 0.112, "margin": 5.703, "no_speech": 0.496, "no_speech_sq": 0.246, "score": 0.0,
      "agree": 0.0, "ll_per_word": -2.508}, 0.5031),
    # "six" heard as "See.": accepted
    ({"gap": 0.731, "margin": 3.418, "no_speech": 0.367, "no_speech_sq": 0.134, "score": 0.0,
      "agree": 0.0, "ll_per_word": -2.384}, 0.5075),
    # "eight" heard as "A.": accepted
    ({"gap": 2.108, "margin": 6.0, "no_speech": 0.796, "no_speech_sq": 0.633, "score": 0.35,
      "agree": 1.0, "ll_per_word": -2.546}, 0.5109),
    # out of grammar (extra): "zero" (heard "ooh") in a menu without it, forced best "two":
    # accepted -- one of the wrong answers the operating point pays for the false rejects it
    # saves
    ({"gap": 0.0, "margin": 3.677, "no_speech": 0.616, "no_speech_sq": 0.379, "score": 1.0,
      "agree": 0.007, "ll_per_word": -2.036}, 0.5143),
)


def test_default_model_near_the_line() -> None:
    assert_near_the_line(forced_coefficients("whisper", False), NEAR_THE_LINE)
