"""Quality gates: refuse audio too poor to judge instead of guessing.

A voiceprint score on 0.5 s of speech, a clipped shout or a line full of noise is noise itself;
such audio gets ``insufficient_audio`` and the flow can ask again. Pure: audio in, report out
(webrtcvad is a pure C function of the samples).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from audio.pcm import WIDEBAND_RATE_HZ, FloatAudio, to_int16

VAD_FRAME_MS = 20
CLIP_LEVEL = 0.99  # |sample| at or above this fraction of full scale counts as clipped
SILENCE_DBFS = -90.0


@dataclass(frozen=True, slots=True)
class QualityGate:
    """Thresholds; the defaults suit 8 kHz G.711 calls (calibrate and tune per deployment)."""

    min_speech_s: float = 1.0  # net speech after VAD for one verification attempt
    min_enroll_speech_s: float = 3.0  # net speech over all enrolment utterances together
    max_clipped_ratio: float = 0.01
    min_level_dbfs: float = -45.0  # RMS of the speech frames
    min_snr_db: float = 8.0
    vad_mode: int = 2  # webrtcvad aggressiveness 0..3

    def __post_init__(self) -> None:
        if self.min_speech_s <= 0:
            raise ValueError("QualityGate.min_speech_s must be positive")
        if not 0 <= self.vad_mode <= 3:
            raise ValueError("QualityGate.vad_mode must be 0..3")
        if not 0 <= self.max_clipped_ratio <= 1:
            raise ValueError("QualityGate.max_clipped_ratio must be in [0, 1]")


@dataclass(frozen=True, slots=True)
class QualityReport:
    speech_s: float
    duration_s: float
    clipped_ratio: float
    level_dbfs: float
    snr_db: float
    problems: tuple[str, ...] = field(default=())

    @property
    def ok(self) -> bool:
        return not self.problems


def _dbfs(power: float) -> float:
    return 10 * float(np.log10(power)) if power > 0 else SILENCE_DBFS


def speech_mask(audio: FloatAudio, vad_mode: int = 2) -> np.ndarray:
    """One bool per 20 ms frame of 16 kHz audio: webrtcvad's speech decision."""
    import webrtcvad  # noqa: PLC0415 - C extension, imported where used

    n = VAD_FRAME_MS * WIDEBAND_RATE_HZ // 1000
    frames = len(audio) // n
    pcm = to_int16(audio[: frames * n]).tobytes()
    vad = webrtcvad.Vad(vad_mode)
    return np.array([vad.is_speech(pcm[i * n * 2 : (i + 1) * n * 2], WIDEBAND_RATE_HZ)
                     for i in range(frames)], dtype=bool)


def assess(audio: FloatAudio, gate: QualityGate, *,
           min_speech_s: float | None = None) -> QualityReport:
    """Measure 16 kHz audio against ``gate``; ``problems`` names each failed rule.

    Problems: ``too_short`` (net speech), ``clipped``, ``too_quiet``, ``noisy`` (SNR between the
    speech frames and the non-speech frames, or the quietest tenth when the VAD finds no pause).
    """
    need = gate.min_speech_s if min_speech_s is None else min_speech_s
    n = VAD_FRAME_MS * WIDEBAND_RATE_HZ // 1000
    duration = len(audio) / WIDEBAND_RATE_HZ
    mask = speech_mask(audio, gate.vad_mode) if len(audio) >= n else np.zeros(0, dtype=bool)
    frames = audio[: len(mask) * n].reshape(-1, n) if len(mask) else np.zeros((0, n), np.float32)
    power = (frames.astype(np.float64) ** 2).mean(axis=1) if len(frames) else np.zeros(0)
    speech_s = float(mask.sum()) * VAD_FRAME_MS / 1000
    clipped = float(np.mean(np.abs(audio) >= CLIP_LEVEL)) if len(audio) else 0.0
    speech_power = float(power[mask].mean()) if mask.any() else 0.0
    if (~mask).sum() >= 5:
        noise_power = float(np.median(power[~mask]))
    elif len(power):
        noise_power = float(np.percentile(power, 10))
    else:
        noise_power = 0.0
    level = _dbfs(speech_power)
    snr = level - _dbfs(max(noise_power, 1e-10))
    problems: list[str] = []
    if speech_s < need:
        problems.append("too_short")
    if clipped > gate.max_clipped_ratio:
        problems.append("clipped")
    if speech_s > 0 and level < gate.min_level_dbfs:
        problems.append("too_quiet")
    if speech_s > 0 and snr < gate.min_snr_db:
        problems.append("noisy")
    return QualityReport(speech_s=speech_s, duration_s=duration, clipped_ratio=clipped,
                         level_dbfs=level, snr_db=snr, problems=tuple(problems))
