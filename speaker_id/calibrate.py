"""Calibration: labelled audio (one folder per speaker) -> EER, FAR/FRR, threshold for a target FAR.

The engine's ``speaker.threshold`` should come from such a run on audio like the deployment's
(telephone band, the enrolment phrase, the callers' languages), not from a guess: score
distributions move with the channel, the language and the encoder.

The metric functions are pure (scores in, numbers out); ``embed_folder`` does the I/O.
"""

from __future__ import annotations

import itertools
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from audio.pcm import WIDEBAND_RATE_HZ, FloatAudio
from audio.resample import resample_float
from audio.wavio import read_wav_float
from speaker_id.backends import EmbeddingBackend, Vector, cosine
from speaker_id.quality import QualityGate, assess

AUDIO_SUFFIXES = (".wav",)


def far_frr(targets: Sequence[float], nontargets: Sequence[float],
            threshold: float) -> tuple[float, float]:
    """FAR: impostor scores accepted (>= threshold); FRR: genuine scores rejected (< threshold)."""
    if not targets or not nontargets:
        raise ValueError("targets and nontargets must both be non-empty")
    t, n = np.asarray(targets), np.asarray(nontargets)
    return float(np.mean(n >= threshold)), float(np.mean(t < threshold))


def equal_error_rate(targets: Sequence[float], nontargets: Sequence[float]) -> tuple[float, float]:
    """(EER, threshold): sweep every observed score, take where FAR and FRR cross.

    The EER is the mean of FAR and FRR at the threshold where they are closest.
    """
    if not targets or not nontargets:
        raise ValueError("targets and nontargets must both be non-empty")
    candidates = np.unique(np.concatenate([targets, nontargets, [np.inf]]))
    best = (2.0, 0.0, 0.0)
    for thr in candidates:
        far, frr = far_frr(targets, nontargets, float(thr))
        gap = abs(far - frr)
        if gap < best[0] or (gap == best[0] and (far + frr) / 2 < best[1]):
            best = (gap, (far + frr) / 2, float(thr))
    return best[1], best[2]


def threshold_for_far(nontargets: Sequence[float], target_far: float) -> float:
    """Lowest threshold whose FAR is at most ``target_far`` (just above the guarding impostor)."""
    if not nontargets:
        raise ValueError("nontargets must be non-empty")
    if not 0.0 <= target_far <= 1.0:
        raise ValueError(f"target_far must be in [0, 1], got {target_far}")
    n = np.sort(np.asarray(nontargets, dtype=np.float64))[::-1]  # highest first
    allowed = int(np.floor(target_far * len(n) + 1e-9))  # impostors we may accept
    if allowed >= len(n):
        return float(n[-1])
    return float(np.nextafter(n[allowed], np.inf))


@dataclass(frozen=True, slots=True)
class CalibrationReport:
    speakers: int
    utterances: int
    skipped: int  # failed the quality gate
    targets: tuple[float, ...]
    nontargets: tuple[float, ...]
    eer: float
    eer_threshold: float
    at_thresholds: tuple[tuple[float, float, float], ...]  # (threshold, FAR, FRR)
    target_far: float
    threshold_at_target_far: float
    frr_at_target_far: float
    band: str = "wide"
    notes: tuple[str, ...] = field(default=())

    def render(self) -> str:
        t, n = np.asarray(self.targets), np.asarray(self.nontargets)
        lines = [
            f"band: {self.band}; speakers {self.speakers}, utterances {self.utterances} "
            f"(skipped by quality gate: {self.skipped})",
            f"trials: {len(t)} same-speaker, {len(n)} different-speaker",
            f"same-speaker scores: min {t.min():.3f} mean {t.mean():.3f} max {t.max():.3f}",
            f"different-speaker scores: min {n.min():.3f} mean {n.mean():.3f} max {n.max():.3f}",
            f"EER {self.eer:.1%} at threshold {self.eer_threshold:.3f}",
            "threshold   FAR     FRR",
        ]
        lines += [f"{thr:9.3f}  {far:6.1%}  {frr:6.1%}" for thr, far, frr in self.at_thresholds]
        lines.append(f"threshold for FAR <= {self.target_far:.1%}: "
                     f"{self.threshold_at_target_far:.3f} (FRR there {self.frr_at_target_far:.1%})")
        lines += [f"note: {note}" for note in self.notes]
        return "\n".join(lines)


def score_trials(labels: Sequence[str], vectors: Sequence[Vector]) -> tuple[list[float],
                                                                            list[float]]:
    """Every pair of utterances: same label -> target trial, else non-target."""
    targets: list[float] = []
    nontargets: list[float] = []
    for i, j in itertools.combinations(range(len(labels)), 2):
        (targets if labels[i] == labels[j] else nontargets).append(cosine(vectors[i], vectors[j]))
    return targets, nontargets


def report_from_scores(targets: Sequence[float], nontargets: Sequence[float], *,
                       speakers: int, utterances: int, skipped: int,
                       thresholds: Sequence[float], target_far: float,
                       band: str = "wide") -> CalibrationReport:
    eer, eer_thr = equal_error_rate(targets, nontargets)
    rows = tuple((thr, *far_frr(targets, nontargets, thr)) for thr in thresholds)
    thr_far = threshold_for_far(nontargets, target_far)
    notes = []
    if len(nontargets) < 1 / max(target_far, 1e-9):
        notes.append(f"only {len(nontargets)} impostor trials: a FAR of {target_far:.1%} is not "
                     "resolvable; collect more speakers before trusting this threshold")
    return CalibrationReport(
        speakers=speakers, utterances=utterances, skipped=skipped, targets=tuple(targets),
        nontargets=tuple(nontargets), eer=eer, eer_threshold=eer_thr, at_thresholds=rows,
        target_far=target_far, threshold_at_target_far=thr_far,
        frr_at_target_far=far_frr(targets, nontargets, thr_far)[1], band=band,
        notes=tuple(notes))


def telephone_band_sox(path: Path) -> tuple[FloatAudio, int]:
    """The file as a G.711 call carries it: sox to 8 kHz mu-law and back to 16-bit PCM."""
    sox = shutil.which("sox")
    if sox is None:
        raise RuntimeError("sox is not installed (Debian package sox): needed for --telephone")
    with tempfile.TemporaryDirectory(prefix="ivr-spk-") as tmp:
        ulaw, pcm = Path(tmp) / "ulaw.wav", Path(tmp) / "pcm.wav"
        subprocess.run([sox, str(path), "-r", "8000", "-c", "1", "-e", "u-law", str(ulaw)],
                       check=True, capture_output=True)
        subprocess.run([sox, str(ulaw), "-e", "signed-integer", "-b", "16", str(pcm)],
                       check=True, capture_output=True)
        return read_wav_float(pcm)


def labelled_files(folder: Path) -> list[tuple[str, Path]]:
    """(speaker, file) for FOLDER/<speaker>/*.wav, sorted; the folder name is the label."""
    if not folder.is_dir():
        raise FileNotFoundError(f"calibration folder {folder} does not exist")
    out = [(d.name, f) for d in sorted(folder.iterdir()) if d.is_dir()
           for f in sorted(d.iterdir()) if f.suffix.lower() in AUDIO_SUFFIXES]
    if len({label for label, _ in out}) < 2:
        raise ValueError(f"{folder}: need at least two speaker sub-folders with .wav files")
    return out


def calibrate_folder(folder: Path, backend: EmbeddingBackend, *, telephone: bool,
                     thresholds: Sequence[float], target_far: float,
                     gate: QualityGate | None = None,
                     progress: Callable[[str], None] | None = None) -> CalibrationReport:
    """Embed every utterance (through the telephone band if asked) and score all pairs."""
    gate = gate or QualityGate()
    labels: list[str] = []
    vectors: list[Vector] = []
    skipped = 0
    for label, path in labelled_files(folder):
        audio, rate = telephone_band_sox(path) if telephone else read_wav_float(path)
        clip = resample_float(audio, rate, WIDEBAND_RATE_HZ)
        q = assess(clip, gate)
        if not q.ok:
            skipped += 1
            if progress:
                progress(f"skip {path}: {','.join(q.problems)}")
            continue
        labels.append(label)
        vectors.append(backend.embed(clip))
    targets, nontargets = score_trials(labels, vectors)
    if not targets or not nontargets:
        raise ValueError(f"{folder}: need >= 2 usable utterances of one speaker and >= 2 speakers "
                         f"(usable: {len(labels)}, skipped {skipped})")
    return report_from_scores(targets, nontargets, speakers=len(set(labels)),
                              utterances=len(labels), skipped=skipped, thresholds=thresholds,
                              target_far=target_far,
                              band="telephone (8 kHz G.711 mu-law via sox)" if telephone
                              else "wide (as recorded)")
