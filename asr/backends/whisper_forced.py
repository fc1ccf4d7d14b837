"""Forced scoring: how likely whisper finds each grammar sentence, given the audio.

Why: matching whisper's free transcript against the grammar (asr/grammar.py) loses when the
transcript drifts on a short or clipped answer ("for attending" for "ten", "or queen of clothes"):
the text is wrong although the model's acoustics favour the right sentence. Here each candidate
sentence is fed to the decoder as a forced continuation of the start sequence, and its
log-likelihood is the sum of the log-probabilities of its tokens **plus end-of-text** (so "four"
does not win over "four of clubs" for being shorter, and a sentence that explains only part of
what was said is penalised where the decoder wanted to go on). Batched ``generate`` calls with
``return_logits_vocab`` give the distributions at every forced position and the step after it;
each sequence in a batch costs its own cross-attention over the audio and one full-vocabulary
projection per step, so batches group sequences of similar length, ask for exactly the steps
they need (:func:`forced_max_length`) and score each distinct token sequence once.

A sentence can be written several ways ("Ten.", "ten", "10."): its score is the log-sum-exp over
the spellings whisper is likely to use, so the spelling does not decide. The same scoring applied
to whisper's own best transcript (and to the empty transcript: end-of-text at once, i.e.
"nothing was said") gives the free reference; the gap between the two tells whether the grammar
explains the audio as well as free text does, which is what ``nomatch`` is about
(:func:`asr.nomatch.forced_decision`).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from asr.grammar import Grammar
from asr.nomatch import (
    COEFFICIENTS,
    FORCED_COEFFICIENTS,
    Hypothesis,
    forced_decision,
    grammar_decision,
    match_candidates,
)
from asr.recognizer import Decision
from asr.textnorm import EN_TENS, EN_UNITS, ZH_DIGITS

FORCED_MAX_SENTENCES = 40  # finite grammars up to this many sentences are scored one by one
FORCED_BATCH = 16  # sequences per generate call (memory: ~200 kB of logits per token each)
FORCED_LENGTH_SPREAD = 2  # tokens between the shortest and longest sequence of one batch
# Encoder frames (50/s) kept after the speech for scoring: the short window's trailing silence
# costs decoder cross-attention per candidate; with 1 s kept the scores moved < 0.7 nats on the
# real clips tried and scoring took ~40 % less time (with 0.5 s they moved up to 2 nats).
SCORE_TAIL_FRAMES = 50
EMPTY = ""  # the "nothing said" candidate: end-of-text right after the start sequence

_EN_NUMBER = {w: str(i) for i, w in enumerate(EN_UNITS[:20])} | {
    w: str(10 * i) for i, w in enumerate(EN_TENS) if i >= 2} | {"oh": "0"}
_ZH_DIGIT = {c: str(i) for i, c in enumerate(ZH_DIGITS)} | {"幺": "1", "两": "2"}
_HAN = re.compile(r"[\u4e00-\u9fff]")


def numeral_spelling(sentence: str) -> str | None:
    """The sentence with number words as numerals, as whisper writes them ("ten of clubs" ->
    "10 of clubs", "two nine three" -> "293", "幺三八" -> "138"), or None if it has none."""
    if _HAN.search(sentence):
        out = "".join(_ZH_DIGIT.get(c, c) for c in sentence)
        return out if out != sentence else None
    out_words: list[str] = []
    changed = False
    run = False  # the previous word was a single digit: "two nine three" -> "293"
    for w in sentence.split():
        num = _EN_NUMBER.get(w)
        if num is None:
            out_words.append(w)
            run = False
        elif len(num) == 1 and run:
            out_words[-1] += num
        else:
            out_words.append(num)
            run = len(num) == 1
        changed = changed or num is not None
    return " ".join(out_words) if changed else None


def surface_forms(sentence: str, heard: Sequence[str] = ()) -> list[str]:
    """The spellings of a grammar sentence whisper is likely to produce: sentence case with a
    full stop, as the grammar spells it, with numerals; words take the casing they had in what
    whisper heard ("from chicago" -> "From Chicago.")."""
    if not sentence:
        return [EMPTY]
    if _HAN.search(sentence):
        num = numeral_spelling(sentence)
        return list(dict.fromkeys([sentence, sentence + "。", *([num] if num else [])]))
    cased = {w.strip(".,!?;:").lower(): w.strip(".,!?;:") for h in heard for w in h.split()}
    words = [cased.get(w, w) for w in sentence.split()]
    cap = " ".join(words)
    cap = cap[0].upper() + cap[1:]
    forms = [cap + ".", sentence]
    num = numeral_spelling(sentence)
    if num is not None:
        forms.append(num[0].upper() + num[1:] + ".")
    return list(dict.fromkeys(forms))


def forced_max_length(prefix: Sequence[int], steps: int, sot: int | None = None) -> int:
    """The ``max_length`` that makes CTranslate2 4.x return exactly ``steps`` distributions
    after the forced tokens start: it counts differently with and without a previous-text
    prompt before start-of-transcript (measured: 2 per step when the prompt starts with it,
    else 1 per step after the tokens before it). A tight limit matters: every step more is a
    decoder step for every sequence in the batch that has not ended."""
    start = prefix.index(sot) if sot is not None and sot in prefix else 0
    return 2 * steps if start == 0 else start + 1 + steps


def _log_softmax_rows(rows: np.ndarray, index: np.ndarray) -> np.ndarray:
    """log-softmax of each row taken at one index per row, in one vectorised pass."""
    top = rows.max(axis=1, keepdims=True)
    norm = np.log(np.exp(rows - top).sum(axis=1, dtype=np.float64))
    return (rows[np.arange(len(rows)), index] - top[:, 0]).astype(np.float64) - norm


def length_batches(sequences: Sequence[Sequence[int]]) -> list[list[int]]:
    """Indices of ``sequences`` in batches of similar length (at most FORCED_BATCH each, the
    longest at most FORCED_LENGTH_SPREAD tokens longer than the shortest): a batch runs as many
    steps as its longest sequence needs, and a shorter one keeps decoding meanwhile."""
    order = sorted(range(len(sequences)), key=lambda i: len(sequences[i]))
    batches: list[list[int]] = []
    for i in order:
        cur = batches[-1] if batches else None
        if (cur is None or len(cur) >= FORCED_BATCH
                or len(sequences[i]) - len(sequences[cur[0]]) > FORCED_LENGTH_SPREAD):
            batches.append([i])
        else:
            cur.append(i)
    return batches


def forced_log_likelihoods(model: Any, encoded: Any, prefix: Sequence[int],
                           sequences: Sequence[Sequence[int]], eot: int, *,
                           frames: int | None = None, sot: int | None = None) -> list[float]:
    """log P(tokens, end-of-text | audio, prefix) for each token sequence (CTranslate2 Whisper).

    ``generate`` treats the tokens after the start sequence as a forced prefix and, with
    ``return_logits_vocab``, returns the logits at each forced position and the step after it.
    Suppression is off so the distributions are the model's own. ``frames``: encoder frames
    to keep (the speech and a little silence after it); ``sot``: the start-of-transcript token
    (where the start sequence begins, for :func:`forced_max_length`)."""
    import ctranslate2  # noqa: PLC0415 - comes with faster-whisper

    enc = np.asarray(encoded)
    if frames is not None:
        enc = enc[:, : max(1, frames)]
    out = [float("-inf")] * len(sequences)
    short: list[int] = []
    for idx in length_batches(sequences):
        longest = max(len(sequences[i]) for i in idx)
        short += _score_batch(model, ctranslate2, enc, prefix, sequences, idx=idx, eot=eot,
                              out=out, max_length=forced_max_length(prefix, longest + 1, sot))
    if short:  # a CTranslate2 that counts max_length otherwise: ask for plenty, once
        longest = max(len(sequences[i]) for i in short)
        _score_batch(model, ctranslate2, enc, prefix, sequences, idx=short, eot=eot, out=out,
                     max_length=len(prefix) + 2 * (longest + 1) + 2)
    return out


def _score_batch(model: Any, ct2: Any, enc: np.ndarray, prefix: Sequence[int],
                 sequences: Sequence[Sequence[int]], *, idx: list[int], eot: int,
                 out: list[float], max_length: int) -> list[int]:
    """Score ``sequences[idx]`` into ``out``; the indices left without enough distributions."""
    batch = ct2.StorageView.from_array(np.ascontiguousarray(np.repeat(enc, len(idx), axis=0)))
    results = model.generate(
        batch, [[*prefix, *sequences[i]] for i in idx], beam_size=1, max_length=max_length,
        return_logits_vocab=True, suppress_tokens=[], suppress_blank=False)
    missing: list[int] = []
    for i, res in zip(idx, results, strict=True):
        seq = sequences[i]
        steps = res.logits[0] if res.logits else []
        if len(steps) < len(seq) + 1:  # no distribution for end-of-text yet
            missing.append(i)
            continue
        rows = np.asarray(steps[: len(seq) + 1], dtype=np.float32)
        out[i] = float(_log_softmax_rows(rows, np.array([*seq, eot])).sum())
    return missing


def score_texts(model: Any, encoded: Any, spellings: dict[str, list[str]], *,
                prefix: Sequence[int], encode: Any, eot: int,
                speech_frames: int | None = None, sot: int | None = None) -> dict[str, float]:
    """Key -> log-sum-exp over its spellings of the forced log-likelihood.

    ``encode`` turns text into token ids (the whisper tokenizer's ``encode``); English text gets
    the leading space whisper writes after the start sequence; the empty spelling is
    end-of-text at once."""
    keys: list[str] = []
    seqs: list[list[int]] = []
    for key, forms in spellings.items():
        for form in dict.fromkeys(forms):
            keys.append(key)
            if form == EMPTY:
                seqs.append([])
            else:
                seqs.append(list(encode(form if _HAN.search(form) else " " + form.strip())))
    frames = None if speech_frames is None else speech_frames + SCORE_TAIL_FRAMES
    # the same tokens under two keys (the free transcript is often one of the sentence's own
    # spellings, "Queen of clubs."): one batch item each, as every item costs its own
    # cross-attention over the audio
    unique = list(dict.fromkeys(tuple(s) for s in seqs))
    once = (forced_log_likelihoods(model, encoded, prefix, unique, eot, frames=frames, sot=sot)
            if unique else [])
    ll_of = dict(zip(unique, once, strict=True))
    lls = [ll_of[tuple(s)] for s in seqs]
    scores: dict[str, float] = {}
    for key, ll in zip(keys, lls, strict=True):
        scores[key] = float(np.logaddexp(scores[key], ll)) if key in scores else ll
    return scores


FREE_KEYS = 2  # free hypotheses scored as the reference (the beam's order is not the forced one)
LOOP_CANDIDATES = 4  # grammars with loops: the sentences text matching found, best first
_FREE = "\x00free"
_NOTHING = "\x00nothing"


def grammar_candidates(grammar: Grammar, matched: dict[str, tuple[float, float]]) -> list[str]:
    """Every sentence of a small finite grammar; else the ones the n-best text matched."""
    finite = grammar.sentences(FORCED_MAX_SENTENCES)
    if finite is not None:
        return finite
    ranked = sorted(matched, key=lambda t: matched[t][0] + 0.1 * matched[t][1], reverse=True)
    return ranked[:LOOP_CANDIDATES]


def decide(grammar: Grammar, hyps: Sequence[Hypothesis], no_speech: float,
           score: Callable[[dict[str, list[str]]], dict[str, float]],
           threshold: float | None = None, *, language: str = "",
           coefficients: tuple[float, ...] = FORCED_COEFFICIENTS["whisper"],
           match_coefficients: tuple[float, ...] = COEFFICIENTS) -> Decision:
    """A grammar turn decided by forced scoring; ``score`` is the engine's scorer bound to
    the utterance (spellings -> log-likelihoods).

    Keywords (``grammar.spotting``: the phrase may sit in a longer sentence, "billing please")
    are scored as whole answers first; when that is ``nomatch`` (the caller said more than the
    keyword), the text-matching decision with free words around the phrase decides."""
    hyps = [h for h in hyps if h.text.strip()]
    matched = match_candidates(grammar, hyps)
    candidates = grammar_candidates(grammar, matched)
    spellings = {c: surface_forms(c, [h.text for h in hyps]) for c in candidates}
    for i, h in enumerate(hyps[:FREE_KEYS]):
        spellings[f"{_FREE}{i}"] = [h.text]
    spellings[_NOTHING] = [EMPTY]
    scores = score(spellings)
    free_ll = max(v for k, v in scores.items() if k.startswith("\x00"))
    dec = forced_decision(scores, candidates, free_ll=free_ll, no_speech=no_speech,
                          matched=matched, heard=hyps[0].text if hyps else "",
                          threshold=threshold, language=language, coefficients=coefficients,
                          nothing_ll=scores[_NOTHING])
    if dec.status == "ok" or not grammar.spotting:
        return dec
    return grammar_decision(grammar, hyps, no_speech, threshold, language=language,
                            coefficients=match_coefficients)
