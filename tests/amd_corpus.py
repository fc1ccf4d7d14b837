"""A labelled set of call answers for answering-machine detection, built from real recordings
and synthesized speech, and its evaluation (confusion matrix, decision time, beep timing).

What a call hears after the answer, per class:

* **human**: a short answer, then the person waits: short phrases of *real* people (the
  pocketsphinx test recordings "ten of clubs", "five five", digits; short stretches cut at
  pauses from pyannote's two-speaker conversation, moonshine's beckett.wav, CMU ARCTIC and the
  LibriVox readings), and synthesized "Hello?", "喂？", "您好，哪位？" (espeak-ng, piper); some
  say it twice ("Hello? ... Hello?"), as people do.
* **machine**: a voicemail greeting, a pause, the beep, silence: *real* continuous speech
  (LibriVox readings, beckett, pyannote's longer turns, the parrots Mandarin prompts) and
  synthesized greetings in English and Mandarin
  ("您好，您拨打的用户暂时无法接通，请在提示音后留言").
  The beep is 440-1400 Hz, 0.25-0.8 s.
* **fax**: CED (2100 Hz) or CNG (1100 Hz, 0.5 s on, 3 s off).
* **silence**: line noise only.

Every item gets a random level, line noise and a G.711 mu-law round trip (what a call
carries), from a fixed seed so the set is the same every run. Sources: see
``scripts/fetch_amd_audio.sh`` and ``speaker_id/testdata.py`` (licences there).
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from audio.g711 import ulaw_decode, ulaw_encode
from audio.pcm import Pcm
from audio.resample import resample
from audio.tones import tone
from audio.wavio import read_wav, write_wav
from campaigns.amd import AmdParams, MachineDetector

ROOT = Path(__file__).resolve().parents[1]
REAL = ROOT / "var" / "testdata" / "real"
RATE = 8000
LABELS = ("human", "machine", "fax", "silence", "unknown")

HUMAN_TEXTS = [("Hello?", "en-us"), ("Hello, who's this?", "en-us"), ("Yes?", "en-gb"),
               ("Hi, hello.", "en-us+f3"), ("Hello?", "en-gb+m3"), ("Speaking.", "en-us+f2"),
               ("喂？", "cmn"), ("喂，你好。", "cmn"), ("您好，哪位？", "cmn"), ("喂？", "cmn+f3"),
               ("你好。", "cmn+m3"), ("Hello?", "piper"), ("Hello, who is it?", "piper")]
MACHINE_TEXTS = [
    ("Hi, you've reached Sam. I can't take your call right now. Please leave a message "
     "after the tone.", "en-us"),
    ("The person you are calling is not available. Please record your message after the "
     "tone. When you are finished, hang up.", "en-gb"),
    ("Hello, this is the voicemail of Doctor Lee's office. Our hours are nine to five. "
     "Leave your name and number.", "en-us+f3"),
    ("Thanks for calling. Nobody is here to take your call, so leave a message.", "piper"),
    ("You have reached the mailbox of extension two one four. Please leave a message.",
     "piper"),
    ("您好，您拨打的用户暂时无法接通，请在提示音后留言。", "cmn"),
    ("您好，我现在不方便接听电话，请在嘀声后留下您的姓名和电话，我会尽快回复。", "cmn+f3"),
    ("这里是李医生诊所的语音信箱，我们的工作时间是上午九点到下午五点，请留言。", "cmn"),
    ("对不起，您拨打的电话无人接听，请在提示音后开始录音，录音完毕请挂机。", "cmn+m3"),
]


@dataclass(frozen=True, slots=True)
class Item:
    name: str
    label: str
    pcm: Pcm  # 8 kHz, after the telephone chain
    source: str
    text: str = ""
    beep_end_s: float | None = None  # machine: when the beep stops


@dataclass
class Evaluation:
    matrix: dict[str, Counter[str]] = field(default_factory=dict)  # truth -> predicted
    decision_ms: dict[str, list[int]] = field(default_factory=dict)  # by true label
    beep_errors_ms: list[int] = field(default_factory=list)  # found beep end - true end
    beeps_missed: int = 0
    wrong: list[tuple[str, str, str]] = field(default_factory=list)  # name, truth, got
    cpu_us_per_frame: float = 0.0

    @property
    def total(self) -> int:
        return sum(sum(c.values()) for c in self.matrix.values())

    @property
    def accuracy(self) -> float:
        right = sum(c[t] for t, c in self.matrix.items())
        return right / self.total if self.total else 0.0

    def recall(self, label: str) -> float:
        c = self.matrix.get(label, Counter())
        n = sum(c.values())
        return c[label] / n if n else 0.0

    def table(self) -> str:
        cols = [x for x in LABELS if any(c[x] for c in self.matrix.values()) or x != "unknown"]
        lines = ["| truth \\ decided | " + " | ".join(cols) + " | n | recall |",
                 "|---|" + "---|" * (len(cols) + 2)]
        for t in LABELS:
            if t not in self.matrix:
                continue
            c = self.matrix[t]
            lines.append(f"| {t} | " + " | ".join(str(c[x]) for x in cols)
                         + f" | {sum(c.values())} | {self.recall(t):.0%} |")
        return "\n".join(lines)


def _real(name: str) -> tuple[Pcm, int]:
    path = REAL / name
    if not path.exists():
        alt = ROOT / "var" / "testdata" / name
        if alt.exists():
            return read_wav(alt)
        raise FileNotFoundError(f"{path} missing: run scripts/fetch_amd_audio.sh (and "
                                "scripts/fetch_test_audio.sh)")
    return read_wav(path)


def _to8k(pcm: Pcm, rate: int) -> Pcm:
    return pcm if rate == RATE else resample(pcm, rate, RATE)


def speech_islands(pcm: Pcm, min_gap_s: float = 0.25) -> list[tuple[int, int]]:
    """(start, end) sample ranges of speech separated by at least ``min_gap_s`` of quiet
    (frame energy 25 dB under the loudest frames)."""
    n = len(pcm) // 160
    if n == 0:
        return []
    e = np.array([np.sqrt(np.mean(pcm[i * 160:(i + 1) * 160].astype(np.float64) ** 2)) + 1
                  for i in range(n)])
    db = 20 * np.log10(e)
    loud = db > np.percentile(db, 95) - 25
    out: list[tuple[int, int]] = []
    start, quiet = None, 0
    gap = int(min_gap_s / 0.02)
    for i, v in enumerate(loud):
        if v:
            if start is None:
                start = i
            quiet = 0
        elif start is not None:
            quiet += 1
            if quiet >= gap:
                out.append((start * 160, (i - quiet + 1) * 160))
                start, quiet = None, 0
    if start is not None:
        out.append((start * 160, n * 160))
    return out


def _phone(pcm: Pcm, rng: np.random.Generator) -> Pcm:
    """Level, line noise and a mu-law round trip."""
    x = pcm.astype(np.float64)
    peak = np.max(np.abs(x)) + 1e-9
    x = x / peak * 32767 * 10 ** (rng.uniform(-12, -3) / 20)
    x = x + rng.normal(0, 32767 * 10 ** (rng.uniform(-66, -54) / 20), len(x))
    return ulaw_decode(ulaw_encode(np.clip(x, -32768, 32767).astype(np.int16)))


def _silence(seconds: float) -> Pcm:
    return np.zeros(int(seconds * RATE), dtype=np.int16)


def _human(speech: Pcm, rng: np.random.Generator, twice: bool = False) -> Pcm:
    parts = [_silence(rng.uniform(0.2, 1.0)), speech]
    if twice:
        parts += [_silence(rng.uniform(1.2, 1.8)), speech]
    parts.append(_silence(4.0))
    return np.concatenate(parts)


def _machine(greeting: Pcm, rng: np.random.Generator) -> tuple[Pcm, float]:
    level = np.max(np.abs(greeting.astype(np.float64))) or 1.0
    hz = float(rng.choice([440.0, 850.0, 1000.0, 1400.0]))
    beep = tone(hz, float(rng.uniform(0.25, 0.8)), RATE).astype(np.float64)
    beep = (beep / (np.max(np.abs(beep)) or 1) * level * 0.7).astype(np.int16)
    head = np.concatenate([_silence(rng.uniform(0.1, 0.8)), greeting,
                           _silence(rng.uniform(0.2, 0.6)), beep])
    return np.concatenate([head, _silence(1.5)]), len(head) / RATE


def _synth(text: str, voice: str) -> Pcm:
    from asr.synth import speak

    return speak(text, voice, rate=RATE)


def build(seed: int = 15, synthesize: bool = True) -> list[Item]:
    """The whole set, in memory (~1 minute of audio per 10 items)."""
    rng = np.random.default_rng(seed)
    items: list[Item] = []

    def add_human(name: str, speech: Pcm, source: str, text: str = "") -> None:
        twice = bool(rng.random() < 0.25)
        items.append(Item(name, "human", _phone(_human(speech, rng, twice), rng), source,
                          text + (" (twice)" if twice else "")))

    def add_machine(name: str, greeting: Pcm, source: str, text: str = "") -> None:
        audio, beep_end = _machine(greeting, rng)
        items.append(Item(name, "machine", _phone(audio, rng), source, text, beep_end))

    # real short answers: the cards phrases and digits as they are (trimmed)
    for n in ("001", "002", "003", "004"):
        pcm = _to8k(*_real(f"ps_cards_{n}.wav"))
        isl = speech_islands(pcm, 0.4)
        if isl:
            add_human(f"real_cards_{n}", pcm[isl[0][0]:isl[-1][1]], "pocketsphinx cards")
    # real short stretches cut at pauses from conversation and readings
    sources: list[tuple[str, str, int]] = [
        ("pyannote_sample.wav", "pyannote sample (conversation)", 10),
        ("beckett.wav", "moonshine beckett", 5), ("arctic_a0007.wav", "CMU ARCTIC", 2),
        ("arctic_a0009.wav", "CMU ARCTIC", 2), ("ps_goforward.wav", "pocketsphinx", 2),
        ("ps_something.wav", "pocketsphinx", 2), ("ps_tidigits_2934z.wav", "TIDIGITS", 2),
        ("ps_forever_4.wav", "pocketsphinx", 2), ("ps_librivox_0880.wav", "LibriVox", 2)]
    for fname, source, limit in sources:
        pcm = _to8k(*_real(fname))
        taken = 0
        for a, b in speech_islands(pcm, 0.25):
            if taken >= limit or (b - a) / RATE < 0.3:
                continue
            if (b - a) / RATE > 1.3:  # the start of a longer turn, faded out like a word end
                end = a + int(rng.uniform(0.5, 1.1) * RATE)
                cut = pcm[a:end].astype(np.float64)
                cut[-240:] *= np.linspace(1, 0, 240)
                speech = cut.astype(np.int16)
                what = "start of a turn"
            else:
                speech, what = pcm[a:b], "whole phrase"
            add_human(f"real_{Path(fname).stem}_{taken}", speech, source, what)
            taken += 1
    # real continuous speech as greetings
    for fname, source in (("ps_librivox_0870.wav", "LibriVox"), ("ps_librivox_0890.wav",
                          "LibriVox"), ("ps_librivox_0920.wav", "LibriVox"),
                          ("ps_librivox_0930.wav", "LibriVox"), ("ps_forever_4.wav",
                          "pocketsphinx"), ("ps_cards_005.wav", "pocketsphinx cards"),
                          ("zh_xiaoyan.wav", "parrots Mandarin prompt (origin undocumented)"),
                          ("zh_shenyi.wav", "parrots Mandarin prompt (origin undocumented)"),
                          ("zh_weiwei.wav", "parrots Mandarin prompt (origin undocumented)")):
        try:
            pcm = _to8k(*_real(fname))
        except FileNotFoundError:
            if fname.startswith("zh_"):
                continue  # fetched by the speech branch's script only
            raise
        isl = speech_islands(pcm, 0.6)
        if isl:
            add_machine(f"real_greeting_{Path(fname).stem}", pcm[isl[0][0]:isl[-1][1]][
                :int(8 * RATE)], source)
    bk = _to8k(*_real("beckett.wav"))
    for i in range(3):
        add_machine(f"real_greeting_beckett_{i}", bk[i * 3 * RATE:(i * 3 + 3) * RATE],
                    "moonshine beckett")
    if synthesize:
        for i, (text, voice) in enumerate(HUMAN_TEXTS):
            trimmed = _trim(_synth(text, voice))
            add_human(f"synth_hello_{i}", trimmed, f"synthesized ({voice})", text)
        for i, (text, voice) in enumerate(MACHINE_TEXTS):
            add_machine(f"synth_greeting_{i}", _trim(_synth(text, voice)),
                        f"synthesized ({voice})", text)
    for i, (hz, pattern) in enumerate(((2100.0, [(3.3, 0.0)]), (1100.0, [(0.5, 3.0)] * 2),
                                        (2100.0, [(2.6, 0.5)]), (1100.0, [(0.5, 3.0)] * 2))):
        parts = [_silence(rng.uniform(0.1, 0.5))]
        for on, off in pattern:
            parts += [tone(hz, on, RATE), _silence(off)]
        items.append(Item(f"fax_{i}", "fax", _phone(np.concatenate(parts), rng),
                          f"{hz:.0f} Hz {'CED' if hz == 2100 else 'CNG'}"))
    for i in range(4):
        noise = rng.normal(0, 30, int(6 * RATE)).astype(np.int16)
        items.append(Item(f"silence_{i}", "silence", ulaw_decode(ulaw_encode(noise)),
                          "line noise"))
    return items


def _trim(pcm: Pcm) -> Pcm:
    isl = speech_islands(pcm, 1.0)
    return pcm[isl[0][0]:isl[-1][1]] if isl else pcm


def frames_of(pcm: Pcm) -> Iterator[Pcm]:
    for i in range(0, len(pcm) - 159, 160):
        yield pcm[i:i + 160]


def evaluate(items: list[Item], vad_factory: Callable[[], object], *,
             params: AmdParams | None = None, max_s: float = 5.0) -> Evaluation:
    """Run the detector on every item as a call would (wait for the beep on)."""
    ev = Evaluation()
    frames_done = 0
    cpu = 0.0
    for item in items:
        vad = vad_factory()
        p = params or AmdParams(total_ms=int(max_s * 1000))
        det = MachineDetector(p, wait_for_beep=True)
        t0 = time.process_time()
        for frame in frames_of(item.pcm):
            det.feed(frame, vad.prob(frame) >= 0.5)  # type: ignore[attr-defined]
            frames_done += 1
            if det.done:
                break
        cpu += time.process_time() - t0
        got = det.decision.label if det.decision else "unknown"
        ev.matrix.setdefault(item.label, Counter())[got] += 1
        if det.decision is not None:
            ev.decision_ms.setdefault(item.label, []).append(det.decision.at_ms)
        if got != item.label:
            ev.wrong.append((item.name, item.label, got))
        if item.label == "machine" and got == "machine" and item.beep_end_s is not None:
            if det.beep_end_ms is None:
                ev.beeps_missed += 1
            else:
                ev.beep_errors_ms.append(det.beep_end_ms - int(item.beep_end_s * 1000))
    ev.cpu_us_per_frame = cpu / max(frames_done, 1) * 1e6
    return ev


def write_set(items: list[Item], folder: Path) -> Path:
    """WAVs and manifest.json (file, label, source, text, seconds, beep end)."""
    folder.mkdir(parents=True, exist_ok=True)
    manifest = []
    for item in items:
        write_wav(folder / f"{item.name}.wav", item.pcm, RATE)
        manifest.append({"file": f"{item.name}.wav", "label": item.label, "source": item.source,
                         "text": item.text, "seconds": round(len(item.pcm) / RATE, 2),
                         "beep_end_s": item.beep_end_s})
    path = folder / "manifest.json"
    path.write_text(json.dumps(manifest, ensure_ascii=False, indent=1))
    return path
