"""Render prompt text to 8 kHz call audio: engine choice, content-hash cache, word check.

Choice: Mandarin (``language`` cmn/zh*) goes to the configured Mandarin voice: ``kokoro:<voice>``
(Kokoro-82M, the default, see :mod:`asr.tts.kokoro`), a piper ``.onnx`` voice, or an espeak-ng
voice (``cmn``); when the Kokoro files are missing it falls back to espeak-ng's ``cmn`` (and logs
it once). Any ``espeak:<voice>`` goes to espeak-ng; everything else to piper with the configured
voice (bundled English voice by default); if piper is not installed, espeak-ng. Rendered prompts
are cached on disk as WAV under the SHA-256 of (engine, voice, speed, text), written atomically,
so the second play of a prompt costs a file read and no prompt is synthesised twice across
restarts.

Content security: every text passes ``text_check`` first (the sensitive-word module plugs in
here); it returns the text to speak (possibly masked) or raises to refuse it.
"""

from __future__ import annotations

import hashlib
import importlib.util
import logging
import os
import tempfile
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from asr.tts import kokoro
from asr.tts.engines import TtsError, default_piper_voice, espeak_synthesize, piper_synthesize
from audio.pcm import SAMPLE_RATE_HZ, Pcm
from audio.wavio import read_wav, write_wav

__all__ = ["RenderedPrompt", "TtsError", "TtsService"]
RATE = SAMPLE_RATE_HZ
MANDARIN = ("cmn", "zh")
MANDARIN_WPM = 120  # espeak-ng's Mandarin is formant speech: slower is easier to follow
KOKORO_PREFIX = "kokoro:"
DEFAULT_MANDARIN_VOICE = KOKORO_PREFIX + kokoro.DEFAULT_VOICE
ESPEAK_MANDARIN = "cmn"
log = logging.getLogger("ivr.asr.tts")


def mandarin_pinyin(text: str) -> str:
    """Chinese text as tone-numbered pinyin for espeak-ng's ``cmn-latn-pinyin`` voice.

    espeak-ng 1.51's ``cmn`` voice transliterates characters to pinyin and then reads the tone
    digits as English numbers ("ni3" -> "ni three"); given pinyin with the pinyin voice it speaks
    the syllables with their tones. pypinyin picks readings in context (银行 -> yin2 hang2).
    """
    from pypinyin import Style, lazy_pinyin  # noqa: PLC0415 - Mandarin prompts only

    return " ".join(lazy_pinyin(text, style=Style.TONE3, neutral_tone_with_five=True))


@dataclass(frozen=True, slots=True)
class RenderedPrompt:
    pcm: Pcm  # 8 kHz mono int16
    engine: str
    voice: str
    cache_hit: bool
    render_s: float  # synthesis (or cache read) time
    path: Path | None = None

    @property
    def duration_s(self) -> float:
        return len(self.pcm) / RATE


class TtsService:
    def __init__(
        self,
        cache_dir: str | Path | None = None,
        piper_voice: str | Path | None = None,
        espeak_voice: str = "en-us",
        *,
        mandarin_voice: str = DEFAULT_MANDARIN_VOICE,
        text_check: Callable[[str], str] | None = None,
        memory_items: int = 256,
        kokoro_model_path: str | Path | None = None,
        kokoro_threads: int = 1,
    ) -> None:
        self.cache_dir = Path(cache_dir) if cache_dir else None
        self._piper_voice = Path(piper_voice) if piper_voice else None
        self.espeak_voice = espeak_voice
        self.mandarin_voice = mandarin_voice
        self.kokoro_path = Path(kokoro_model_path) if kokoro_model_path else None
        self.kokoro_threads = kokoro_threads
        self._kokoro_missing_logged = False
        self.text_check = text_check
        self.hits = 0
        self.misses = 0
        self._memory: OrderedDict[str, RenderedPrompt] = OrderedDict()
        self.memory_items = memory_items

    def choose(self, voice: str | None, language: str | None) -> tuple[str, str]:
        """(engine, voice) for a request."""
        lang = (language or "").lower()
        if voice and voice.startswith("espeak:"):
            return "espeak", voice.split(":", 1)[1]
        if voice and voice.startswith(KOKORO_PREFIX):  # Kokoro speaks Mandarin only here
            return self._kokoro_or_espeak(voice)
        if lang.startswith(MANDARIN) or (voice or "").lower() in MANDARIN:
            chosen = voice if voice and voice.endswith(".onnx") else self.mandarin_voice
            if chosen.endswith(".onnx"):  # a neural Mandarin voice (piper zh_CN model)
                return "piper", chosen
            if chosen.startswith(KOKORO_PREFIX):
                return self._kokoro_or_espeak(chosen)
            return "espeak", chosen
        if voice and voice.startswith("piper:"):
            return "piper", voice.split(":", 1)[1]
        if voice and voice.endswith(".onnx"):
            return "piper", voice
        if self._piper_voice is not None:
            return "piper", str(self._piper_voice)
        if importlib.util.find_spec("piper") is not None:
            return "piper", str(default_piper_voice())
        return "espeak", voice or self.espeak_voice

    def _kokoro_or_espeak(self, voice: str) -> tuple[str, str]:
        """Kokoro when its files are installed, else espeak-ng's Mandarin (logged once): a
        machine without the model still speaks, if poorly."""
        if kokoro.installed(self.kokoro_path):
            return "kokoro", voice.split(":", 1)[1] or kokoro.DEFAULT_VOICE
        if not self._kokoro_missing_logged:
            self._kokoro_missing_logged = True
            log.warning("tts: Kokoro model missing in %s (run scripts/fetch_models.sh); "
                        "Mandarin prompts use espeak-ng, which callers understand poorly",
                        self.kokoro_path or kokoro.default_model_path())
        return "espeak", ESPEAK_MANDARIN

    def cache_key(self, engine: str, voice: str, speed: float, text: str) -> str:
        if engine == "kokoro":  # another model folder or front end: other samples
            engine = f"kokoro/{kokoro.FRONTEND_VERSION}/{self.kokoro_path or 'default'}"
        raw = "\x00".join([engine, voice, f"{speed:.3f}", str(RATE), text])
        return hashlib.sha256(raw.encode()).hexdigest()

    def lookup(
        self, text: str, voice: str | None = None, language: str | None = None, speed: float = 1.0
    ) -> RenderedPrompt | None:
        """A prompt already rendered in this process, from memory: no I/O, safe on the event
        loop. This is the hot path of an answer: its first frame can go out at once."""
        if self.text_check is not None:
            text = self.text_check(text)
        engine, v = self.choose(voice, language)
        hit = self._memory.get(self.cache_key(engine, v, speed, text))
        if hit is not None:
            self.hits += 1
        return hit

    def _remember(self, key: str, prompt: RenderedPrompt) -> RenderedPrompt:
        self._memory[key] = prompt
        self._memory.move_to_end(key)
        while len(self._memory) > self.memory_items:
            self._memory.popitem(last=False)
        return prompt

    def render(
        self, text: str, voice: str | None = None, language: str | None = None, speed: float = 1.0
    ) -> RenderedPrompt:
        """Blocking (synthesis or a disk read): run it in the inference pool from async code."""
        if not text.strip():
            raise TtsError("tts: text is empty")
        if speed <= 0:
            raise TtsError(f"tts: speed must be > 0, got {speed}")
        if self.text_check is not None:
            text = self.text_check(text)
        engine, v = self.choose(voice, language)
        t0 = time.perf_counter()
        key = self.cache_key(engine, v, speed, text)
        path = self.cache_dir / f"{key}.wav" if self.cache_dir else None
        if path is not None and path.is_file():
            pcm, rate = read_wav(path)
            if rate == RATE:
                self.hits += 1
                prompt = RenderedPrompt(pcm, engine, v, True, time.perf_counter() - t0, path)
                return self._remember(key, prompt)
        self.misses += 1
        if engine == "piper":
            pcm = piper_synthesize(text, Path(v), length_scale=1.0 / speed, rate=RATE)
        elif engine == "kokoro":
            pcm = kokoro.kokoro_synthesize(text, v, path=self.kokoro_path, speed=speed, rate=RATE,
                                           threads=self.kokoro_threads)
        elif v.lower() in MANDARIN:
            pcm = espeak_synthesize(mandarin_pinyin(text), "cmn-latn-pinyin",
                                    speed_wpm=int(MANDARIN_WPM * speed), rate=RATE)
        else:
            pcm = espeak_synthesize(text, v, speed_wpm=int(160 * speed), rate=RATE)
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
            os.close(fd)
            write_wav(tmp, pcm, RATE)
            os.replace(tmp, path)
        return self._remember(
            key, RenderedPrompt(pcm, engine, v, False, time.perf_counter() - t0, path)
        )
