"""Deciding a grammar turn: which grammar sentence was said, how sure we are, or ``nomatch``.

Input: the recogniser's n-best hypotheses (free text, each with its average token log-probability)
and its no-speech probability. Each hypothesis is matched against the grammar
(:func:`asr.grammar.match_text`); the candidates are pooled (hypotheses that land on the same
grammar sentence add up their posterior) and the best one gets a confidence from a logistic model
of four features:

* ``score``: how much of the hypothesis the grammar explains (1 = exact),
* ``logprob``: the recogniser's own average token log-probability of the top hypothesis,
* ``no_speech``: its probability that there was no speech at all (noise, music, a cough),
* ``agree``: the n-best posterior mass that lands on the same grammar sentence.

The coefficients were fitted on the *real-speech* evaluation set (tests/bench/bench_grammar.py
``--fit``: human recordings through G.711, in-grammar answers labelled 1, out-of-grammar speech,
music and noise labelled 0), so ``confidence`` reads as a probability of being right, and one
threshold (``DEFAULT_THRESHOLD``) separates accept from ``nomatch``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from asr.grammar import Grammar, match_text
from asr.recognizer import Decision, Status

# logistic model per engine: intercept, score, logprob, no_speech, agree (fitted with
# tests/bench/bench_grammar.py --fit on the real set; see module docstring)
ENGINE_COEFFICIENTS: dict[str, tuple[float, ...]] = {
    "whisper": (-12.31, 14.63, 1.06, -3.1, 1.68),
    "whisper-base": (-13.92, 13.43, -0.02, -3.88, 4.14),
}
COEFFICIENTS = ENGINE_COEFFICIENTS["whisper"]
DEFAULT_THRESHOLD = 0.5
POSTERIOR_SHARPNESS = 8.0  # softmax temperature over average token log-probabilities
MIN_ALTERNATIVE_SCORE = 0.5


@dataclass(frozen=True, slots=True)
class Hypothesis:
    text: str
    logprob: float  # average log-probability per token


def calibrated(features: dict[str, float],
               coefficients: tuple[float, ...] = COEFFICIENTS) -> float:
    b0, b_score, b_lp, b_ns, b_agree = coefficients
    z = (b0 + b_score * features["score"] + b_lp * max(features["logprob"], -3.0)
         + b_ns * features["no_speech"] + b_agree * features["agree"])
    return 1.0 / (1.0 + math.exp(-z))


def posteriors(hyps: list[Hypothesis]) -> list[float]:
    if not hyps:
        return []
    top = max(h.logprob for h in hyps)
    raw = [math.exp(POSTERIOR_SHARPNESS * (h.logprob - top)) for h in hyps]
    total = sum(raw)
    return [r / total for r in raw]


def grammar_decision(grammar: Grammar, hyps: list[Hypothesis], no_speech: float,
                     threshold: float | None = None, *, language: str = "",
                     coefficients: tuple[float, ...] = COEFFICIENTS) -> Decision:
    """The grammar result for these hypotheses: ``ok`` with the grammar's words, or ``nomatch``."""
    thr = DEFAULT_THRESHOLD if threshold is None else threshold
    hyps = [h for h in hyps if h.text.strip()]
    if not hyps:
        return Decision("", 0.0, status="nomatch", language=language,
                        features={"score": 0.0, "logprob": -3.0, "no_speech": no_speech,
                                  "agree": 0.0})
    weights = posteriors(hyps)
    pooled: dict[str, list[float]] = {}  # text -> [best score, posterior mass]
    for h, w in zip(hyps, weights, strict=True):
        m = match_text(grammar, h.text)
        if not m.words:
            continue
        entry = pooled.setdefault(m.text, [0.0, 0.0])
        entry[0] = max(entry[0], m.score)
        entry[1] += w
    top = hyps[0]
    if not pooled:
        return Decision("", 0.0, status="nomatch", heard=top.text, language=language,
                        features={"score": 0.0, "logprob": top.logprob, "no_speech": no_speech,
                                  "agree": 0.0})
    ranked = sorted(pooled.items(), key=lambda kv: kv[1][0] + 0.1 * kv[1][1], reverse=True)
    text, (score, agree) = ranked[0]
    features = {"score": score, "logprob": top.logprob, "no_speech": no_speech, "agree": agree}
    conf = calibrated(features, coefficients)
    alternatives = tuple(t for t, (s, _) in ranked[1:] if s >= MIN_ALTERNATIVE_SCORE)
    status: Status = "ok" if conf >= thr else "nomatch"
    return Decision(text if status == "ok" else "", conf, alternatives=(
        alternatives if status == "ok" else tuple(t for t, _ in ranked[:3] if _[0] >= 0.5)),
        status=status, heard=top.text, language=language, features=features)
