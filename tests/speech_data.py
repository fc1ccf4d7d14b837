"""The labelled real-speech evaluation set, as the tests and benchmarks use it.

Recordings and phrase clips are listed in ``tests/fixtures/speech/manifest.json`` (what each says,
where it comes from, its licence); ``scripts/fetch_test_audio.sh`` puts the audio in
``var/testdata/``. Everything a test hears goes through the telephone band the engine carries:
8 kHz, G.711 mu-law round trip (:func:`phone`).

Out-of-grammar sound that is not speech comes in two sets. :func:`non_speech` is generated (no
files needed, so unit tests use it): noise colours, mains hum, call-progress tones, synthetic
music (chords and melodies with harmonics) and babble made of overlaid real voices.
:func:`real_non_speech` is recorded: real music (Asterisk's hold music, game music), room,
street, weather and machine noise, sound effects and telephone rings, tones and beeps, from
DFSG-free Debian packages, plus solo singing from a PyPI archive, labelled apart (``kind``
"sung": sung words are out-of-grammar voice, not noise). It needs the fetched files, and the
benchmarks use it.
"""

from __future__ import annotations

import functools
import json
import random
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from audio.g711 import ulaw_decode, ulaw_encode
from audio.pcm import Pcm, to_int16
from audio.resample import resample
from audio.wavio import read_wav

ROOT = Path(__file__).resolve().parent.parent
MANIFEST = ROOT / "tests" / "fixtures" / "speech" / "manifest.json"
REAL_DIR = ROOT / "var" / "testdata" / "real"
RATE = 8000

DIGITS = ("zero", "oh", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine",
          "ten")
DIGITS_JSGF = ("#JSGF V1.0;\ngrammar digits;\npublic <digit> = " + " | ".join(DIGITS) + " ;\n")
DIGIT_STRING_JSGF = ("#JSGF V1.0;\ngrammar digitstring;\npublic <digits> = ( "
                     + " | ".join(DIGITS[:-1]) + " )+ ;\n")
CARDS_JSGF = """#JSGF V1.0;
grammar cards;
public <cards> = ( <rank> of <suit> )+ ;
<rank> = ace | two | three | four | five | six | seven | eight | nine | ten | jack | queen | king;
<suit> = clubs | spades | hearts | diamonds;
"""
GOFORWARD_JSGF = """#JSGF V1.0;
grammar goforward;
public <move> = go forward ten meters;
public <move2> = go <direction> <distance> [meter | meters];
<direction> = forward | backward;
<distance> = one | two | three | four | five | six | seven | eight | nine | ten;
"""


class MissingAudio(FileNotFoundError):
    pass


@dataclass(frozen=True, slots=True)
class Item:
    """One evaluation utterance: 8 kHz telephone-band PCM and what it says (None: unlabelled)."""

    id: str
    pcm: Pcm
    text: str | None
    kind: str  # clip | sentence | non_speech | sung
    speaker: str = ""
    category: str = ""  # real non-speech: music | sung | noise | effect | phone


@functools.lru_cache(maxsize=1)
def manifest() -> dict:  # type: ignore[type-arg]
    return json.loads(MANIFEST.read_text())


def phone(pcm: Pcm, rate: int) -> Pcm:
    """To 8 kHz, then through G.711 mu-law and back: what the engine's decoder gives."""
    x = resample(pcm, rate, RATE) if rate != RATE else pcm
    return ulaw_decode(ulaw_encode(x))


@functools.lru_cache(maxsize=64)
def recording(file: str) -> tuple[Pcm, int]:
    path = REAL_DIR / file
    if not path.exists():
        raise MissingAudio(f"{path} missing: run scripts/fetch_test_audio.sh")
    return read_wav(path)


def speaker_of(file: str) -> str:
    """The speaker label of the recording a clip is cut from (the file name if unlisted): the
    benchmarks' held-out folds are speakers, so clips of one voice must share one fold."""
    for r in manifest()["recordings"] + manifest()["zh_recordings"]:
        if r["file"] == file:
            return str(r["speaker"])
    return file


def clip(clip_id: str) -> Item:
    c = next(c for c in manifest()["clips"] if c["id"] == clip_id)
    pcm, rate = recording(c["file"])
    cut = pcm[int(c["start"] * rate) : int(c["end"] * rate)]
    return Item(c["id"], phone(cut, rate), c["text"], "clip", speaker_of(c["file"]))


def clips() -> list[Item]:
    return [clip(c["id"]) for c in manifest()["clips"]]


PYANNOTE_SEGMENTS = [(6.4, 11.0), (11.1, 14.1), (14.3, 17.6), (17.9, 21.4), (21.7, 24.4),
                     (24.4, 27.3), (27.4, 30.0)]
CHAN3_SEGMENTS = [(0.0, 5.9), (7.9, 9.5), (16.3, 20.8)]


def sentences() -> list[Item]:
    """Every whole recording (long ones cut into turns of a few seconds), except the short
    answers marked ``"sentence": false``, which are phrase clips already."""
    out: list[Item] = []
    for r in manifest()["recordings"]:
        if not r.get("sentence", True):
            continue  # a short answer used whole as a phrase clip: asked once, in menus
        pcm, rate = recording(r["file"])
        name = Path(r["file"]).stem
        if name == "pyannote_sample":
            segs = PYANNOTE_SEGMENTS
        elif name == "ps_chan3":
            segs = CHAN3_SEGMENTS
        else:
            segs = [(0.0, len(pcm) / rate)]
        for i, (a, b) in enumerate(segs):
            cut = pcm[int(a * rate) : int(b * rate)]
            out.append(Item(f"{name}#{i}" if len(segs) > 1 else name, phone(cut, rate),
                            r["text"] if len(segs) == 1 else None, "sentence", r["speaker"]))
    return out


def _tone(freqs: list[float], seconds: float, rng: np.random.Generator) -> np.ndarray:
    t = np.arange(int(seconds * RATE)) / RATE
    return sum(np.sin(2 * np.pi * f * t + rng.uniform(0, 6.28)) for f in freqs) / len(freqs)


def _music(seconds: float, rng: np.random.Generator, chords: bool) -> np.ndarray:
    """Notes of a pentatonic scale with 5 harmonics and an ADSR-ish envelope."""
    out = np.zeros(int(seconds * RATE))
    scale = [261.6, 293.7, 329.6, 392.0, 440.0, 523.3, 587.3]
    pos = 0
    while pos < len(out):
        dur = int(rng.choice([0.25, 0.5, 0.75]) * RATE)
        notes = rng.choice(scale, size=3 if chords else 1, replace=False)
        t = np.arange(dur) / RATE
        env = np.minimum(1, t * 40) * np.exp(-t * 3)
        note = sum(np.sin(2 * np.pi * f * k * t) / k for f in notes for k in range(1, 6))
        seg = (note * env)[: len(out) - pos]
        out[pos : pos + len(seg)] += seg
        pos += dur
    return out / (np.abs(out).max() + 1e-9)


def non_speech(seed: int = 7) -> list[Item]:
    """Sounds that are not words: must come out ``nomatch`` (or no input) in every grammar."""
    rng = np.random.default_rng(seed)
    n = int(2.5 * RATE)
    white = rng.standard_normal(n)
    pink = np.cumsum(rng.standard_normal(n))
    pink = np.diff(pink, prepend=0) * 0.3 + np.convolve(white, np.ones(8) / 8, "same")
    brown = np.cumsum(rng.standard_normal(n))
    brown -= np.convolve(brown, np.ones(400) / 400, "same")
    t = np.arange(n) / RATE
    hum = sum(np.sin(2 * np.pi * 50 * k * t) / k for k in (1, 2, 3, 5))
    ring = _tone([440, 480], 2.5, rng) * ((t % 6) < 2)
    busy = _tone([480, 620], 2.5, rng) * ((t % 1.0) < 0.5)
    sounds = {"white_noise": white, "pink_noise": pink, "brown_noise": brown, "mains_hum": hum,
              "ringback": ring, "busy_tone": busy,
              "music_melody": _music(3.0, rng, chords=False),
              "music_chords": _music(3.0, rng, chords=True),
              "music_melody_2": _music(2.0, np.random.default_rng(seed + 1), chords=False)}
    out = [Item(name, phone(to_int16(0.3 * x / (np.abs(x).max() + 1e-9)), RATE), None,
                "non_speech") for name, x in sounds.items()]
    voices = [s for s in sentences() if s.text]
    picks = random.Random(seed).sample(voices, 6)
    for k in range(2):
        parts = [p.pcm[: int(2.5 * RATE)].astype(np.float64) for p in picks[3 * k : 3 * k + 3]]
        length = min(len(p) for p in parts)
        mix = sum(p[:length] for p in parts) / 3
        out.append(Item(f"babble_{k}", to_int16(mix / 32768), None, "non_speech"))
    return out


REAL_NON_SPEECH_PEAK = 0.3  # the generated sounds' peak: level is not what must decide


def real_non_speech() -> list[Item]:
    """Real recordings that are not speech, cut at the manifest's fixed offsets: must come out
    ``nomatch`` (or no input) in every grammar. Each clip goes to 8 kHz, is scaled to the same
    peak there (a quiet recording must not pass for being quiet; the peak of what the band
    keeps), then through G.711. Clips of one
    recording share a fold (``speaker`` ``sound:<recording>``), as clips of one voice do."""
    out = []
    for c in manifest()["non_speech_clips"]:
        pcm, rate = recording(c["file"])
        cut = pcm[int(c["start"] * rate) : int(c["end"] * rate)]
        band = (resample(cut, rate, RATE) if rate != RATE else cut).astype(np.float64)
        scaled = to_int16(REAL_NON_SPEECH_PEAK * band / (np.abs(band).max() + 1e-9))
        kind = "sung" if c["category"] == "sung" else "non_speech"
        out.append(Item(c["id"], phone(scaled, RATE), None, kind,
                        f"sound:{Path(c['file']).stem}", c["category"]))
    return out


def menu_grammars(items: list[Item], size: int = 5, seed: int = 3
                  ) -> list[tuple[Item, list[str], list[str]]]:
    """Per clip: (clip, a menu that has its phrase, a menu that does not).

    Distractor phrases are other clips' phrases that neither contain nor are contained in this
    clip's phrase (a menu cannot offer "four" and "four of clubs" and expect either to win).
    """
    rng = random.Random(seed)
    phrases = sorted({i.text for i in items if i.text})
    out = []
    for it in items:
        assert it.text is not None
        others = [p for p in phrases if p != it.text and f" {p} " not in f" {it.text} "
                  and f" {it.text} " not in f" {p} "]
        with_it = [it.text, *rng.sample(others, size - 1)]
        rng.shuffle(with_it)
        out.append((it, with_it, rng.sample(others, size)))
    return out


ZH_MENU = ("查询余额", "人工服务", "投诉建议", "办理退订", "话费充值", "不是", "对")


def zh_clips() -> list[Item]:
    out = []
    for c in manifest()["zh_clips"]:
        pcm, rate = recording(c["file"])
        cut = pcm[int(c["start"] * rate) : int(c["end"] * rate)]
        out.append(Item(c["id"], phone(cut, rate), c["text"], "clip", speaker_of(c["file"])))
    return out


def zh_sentences() -> list[Item]:
    """The Mandarin readings (labelled) plus Cantonese and English from the same package."""
    out = []
    for r in manifest()["zh_recordings"]:
        pcm, rate = recording(r["file"])
        out.append(Item(Path(r["file"]).stem, phone(pcm, rate), r["text"], "sentence",
                        r["speaker"]))
    return out


def edit_distance(ref: list[str] | tuple[str, ...] | str,
                  hyp: list[str] | tuple[str, ...] | str) -> int:
    prev = list(range(len(hyp) + 1))
    for i, r in enumerate(ref, 1):
        cur = [i]
        for j, h in enumerate(hyp, 1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (r != h)))
        prev = cur
    return prev[-1]


def cer(reference: str, hypothesis: str) -> tuple[int, int]:
    """(character edits, reference characters) after normalisation (simplified, no punct)."""
    from asr.textnorm import tokens

    ref = "".join(tokens(reference))
    return edit_distance(ref, "".join(tokens(hypothesis))), len(ref)


def wer(reference: str, hypothesis: str) -> tuple[int, int]:
    """(word edits, reference words); numerals count in whichever reading fits best."""
    from asr.textnorm import token_variants

    ref = token_variants(reference)[0]
    return min(edit_distance(ref, hyp) for hyp in token_variants(hypothesis)), len(ref)
