"""Transcribing a stereo call recording per channel, with word timings (blocking: run in a pool).

Each channel is cut into speech regions by the VAD (silero by default), each region is decoded
on its own by whisper (the short-window decoder of :mod:`asr.backends.whisper`, with
cross-attention word alignment) and its words are placed on the call's timeline. Decoding regions
rather than the whole channel keeps word offsets exact (no 30 s segment drift), skips silence
(half of a typical call), and gives each turn its own language detection under ``auto``.

Language: ``en`` -> whisper tiny.en, ``zh`` -> whisper base, ``auto`` -> whisper base with
detection per region (zh or en).
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from asr.vad import Vad, make_vad
from audio.pcm import FRAME_SAMPLES, SAMPLE_RATE_HZ, Pcm
from audio.resample import to_16k
from audio.wavio import WavError, read_wav_samples
from core.priority import BACKGROUND_NICE, call_in_background_thread
from inspection.transcript import SPEAKERS, Transcript, Turn, TWord, regions

_ENGINES: dict[tuple[str, str], Any] = {}
_ENGINES_LOCK = threading.Lock()

MAX_REGION_S = 25.0  # whisper's short window holds up to ~28 s; longer regions are split
REGION_PAD_MS = 150  # audio kept on each side of a region: word onsets are not clipped
# Silence put before each chunk: whisper (tiny.en measured) drops a chunk's first word now and
# then when speech starts within ~100 ms of the chunk's start ("Unacceptable! I want my money
# back." heard as "I want my money back." for one 20 ms VAD alignment and not the other); with
# 300 ms of lead-in both alignments kept it. The words' times are taken back by it.
LEAD_IN_MS = 300


class TranscribeError(RuntimeError):
    """The recording cannot be read or decoded; the message names the file."""


@dataclass(frozen=True, slots=True)
class TranscribeStats:
    audio_s: float  # the call's length (one channel)
    compute_s: float
    regions: int

    @property
    def rtf(self) -> float:
        return self.compute_s / self.audio_s if self.audio_s else 0.0


def engine_for_language(language: str) -> tuple[str, str | None]:
    """(recogniser name, whisper language code or None to detect)."""
    lang = (language or "en").strip().lower().split("-")[0].split("_")[0]
    if lang in ("zh", "cmn", "yue", "wuu"):
        return "whisper-base", "zh"
    if lang in ("", "auto"):
        return "whisper-base", None
    if lang == "en":
        return "whisper", "en"
    return "whisper-base", lang


def inspection_engine(name: str, model_path: str | Path | None = None, *,
                      workers: int = 1, nice: int = BACKGROUND_NICE) -> Any:
    """A whisper model of inspection's own, one CPU thread per decode, ``workers`` decodes
    at once. Not the live calls' shared one: CTranslate2 serialises a model's decodes, so a
    30 s inspection region on the shared model would hold up callers' menu turns behind it.
    It is built on a thread at ``nice`` (core/priority.py), so its decode threads yield a
    contended core to live turns."""
    key = (name, str(model_path or ""))
    with _ENGINES_LOCK:
        eng = _ENGINES.get(key)
        if eng is None:
            from asr.backends.whisper import WhisperEngine  # noqa: PLC0415 - heavy, lazy

            eng = _ENGINES[key] = call_in_background_thread(
                lambda: WhisperEngine(model_path, num_workers=max(1, workers), cpu_threads=1,
                                      name=name), nice)
        return eng


def read_stereo(path: Path) -> tuple[Pcm, Pcm]:
    """(caller, engine) channels at 8 kHz; a mono file is the caller alone."""
    try:
        samples, channels, rate = read_wav_samples(path)
    except (OSError, WavError) as e:
        raise TranscribeError(f"recording {path}: {e}") from e
    if rate != SAMPLE_RATE_HZ:
        raise TranscribeError(f"recording {path}: {rate} Hz, expected {SAMPLE_RATE_HZ}")
    x = np.asarray(samples).astype(np.int16)
    if channels == 1:
        return x, np.zeros_like(x)
    x = x[: len(x) - len(x) % channels].reshape(-1, channels)
    return np.ascontiguousarray(x[:, 0]), np.ascontiguousarray(x[:, 1])


def vad_probs(pcm: Pcm, vad: Vad) -> list[float]:
    vad.reset()
    n = len(pcm) // FRAME_SAMPLES
    return [vad.prob(pcm[i * FRAME_SAMPLES:(i + 1) * FRAME_SAMPLES]) for i in range(n)]


def _split(a: int, b: int) -> list[tuple[int, int]]:
    step = int(MAX_REGION_S * 1000)
    return [(s, min(b, s + step)) for s in range(a, b, step)]


def transcribe_channel(pcm: Pcm, speaker: str, engine: Any, language: str | None,
                       vad: Vad) -> tuple[list[Turn], list[tuple[int, int]]]:
    """Turns (one per speech region, with words) and the speech regions of one channel."""
    spans = regions(vad_probs(pcm, vad))
    turns: list[Turn] = []
    total = len(pcm) * 1000 // SAMPLE_RATE_HZ
    for a, b in spans:
        words: list[TWord] = []
        texts: list[str] = []
        lang = ""
        logprobs: list[float] = []
        for s, e in _split(a, b):
            lo, hi = max(0, s - REGION_PAD_MS), min(total, e + REGION_PAD_MS)
            chunk = pcm[lo * 8:hi * 8]
            if len(chunk) < 1600:
                continue
            audio = to_16k(chunk)
            lead = np.zeros(LEAD_IN_MS * 16, dtype=audio.dtype)
            d = engine.decode(np.concatenate([lead, audio]), language=language, words=True)
            lang = d.language
            if not d.hypotheses:
                continue
            texts.append(d.hypotheses[0].text)
            logprobs.append(d.hypotheses[0].logprob)
            for w in d.words:  # whisper puts a first word's start at the chunk's start:
                start = max(a, lo + int(w.start * 1000) - LEAD_IN_MS)  # the VAD's edge is
                end = min(b, max(start, lo + int(w.end * 1000) - LEAD_IN_MS))  # the better one
                words.append(TWord(w.w, start, max(start, end), w.conf))
        sep = "" if lang == "zh" else " "
        conf = math.exp(sum(logprobs) / len(logprobs)) if logprobs else 0.0
        turns.append(Turn(speaker, a, b, sep.join(texts).strip(), words, round(conf, 3), lang))
    return turns, spans


def transcribe_recording(path: Path, language: str, *,
                         load_engine: Callable[[str], Any] | None = None,
                         vad_kind: str = "silero") -> tuple[Transcript, TranscribeStats]:
    """Both channels of ``path``; blocking (models, numpy): call it in a worker thread."""
    t0 = time.perf_counter()
    name, code = engine_for_language(language)
    engine = (load_engine or inspection_engine)(name)
    caller, agent = read_stereo(path)
    turns: list[Turn] = []
    speech: dict[str, list[tuple[int, int]]] = {}
    for speaker, pcm in zip(SPEAKERS, (caller, agent), strict=True):
        found, spans = transcribe_channel(pcm, speaker, engine, code, make_vad(vad_kind))
        turns += found
        speech[speaker] = spans
    turns.sort(key=lambda t: (t.start_ms, t.speaker))
    langs = [t.language for t in turns if t.language and t.text]
    lang = max(set(langs), key=langs.count) if langs else (code or "")
    duration_ms = len(caller) * 1000 // SAMPLE_RATE_HZ
    stats = TranscribeStats(duration_ms / 1000, time.perf_counter() - t0,
                            sum(len(v) for v in speech.values()))
    return Transcript(duration_ms, turns, lang, speech, name), stats
