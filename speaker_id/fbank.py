"""Kaldi-compatible log-mel filterbank in numpy: the front end of CAM++ and WeSpeaker models.

The same computation as ``torchaudio.compliance.kaldi.fbank`` with the settings 3D-Speaker uses
(16 kHz, 25 ms frames every 10 ms, no dither, DC removed, pre-emphasis 0.97, Povey window, 512-point
power spectrum, 80 triangular bins on Kaldi's mel scale from 20 Hz to Nyquist, natural log floored
at float32 epsilon, ``snip_edges``), followed by per-utterance mean normalisation. Pure numpy:
no torch at run time.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import numpy.typing as npt

from audio.pcm import WIDEBAND_RATE_HZ, FloatAudio

FRAME_SAMPLES = 400  # 25 ms
SHIFT_SAMPLES = 160  # 10 ms
FFT_SIZE = 512
PREEMPHASIS = 0.97
LOW_HZ = 20.0
EPS = float(np.finfo(np.float32).eps)


def _mel(f: npt.NDArray[np.floating]) -> npt.NDArray[np.float64]:
    return 1127.0 * np.log(1.0 + f / 700.0)


@lru_cache(maxsize=4)
def kaldi_mel_banks(bins: int, rate: int = WIDEBAND_RATE_HZ) -> npt.NDArray[np.float32]:
    """(bins, FFT_SIZE // 2 + 1) triangular filters, Kaldi's layout (Nyquist column zero)."""
    n_fft_bins = FFT_SIZE // 2
    width = rate / FFT_SIZE
    mel_low, mel_high = _mel(np.array(LOW_HZ)), _mel(np.array(rate / 2.0))
    delta = (mel_high - mel_low) / (bins + 1)
    b = np.arange(bins)[:, None]
    left, center, right = mel_low + b * delta, mel_low + (b + 1) * delta, mel_low + (b + 2) * delta
    mel = _mel(width * np.arange(n_fft_bins))[None, :]
    up = (mel - left) / (center - left)
    down = (right - mel) / (right - center)
    banks = np.maximum(0.0, np.minimum(up, down))
    return np.pad(banks, ((0, 0), (0, 1))).astype(np.float32)


@lru_cache(maxsize=1)
def _povey() -> npt.NDArray[np.float64]:
    n = np.arange(FRAME_SAMPLES)
    return (0.5 - 0.5 * np.cos(2 * np.pi * n / (FRAME_SAMPLES - 1))) ** 0.85


def fbank(audio: FloatAudio, bins: int = 80, mean_norm: bool = True) -> FloatAudio:
    """16 kHz float audio -> (frames, bins) log-mel; empty when shorter than one frame."""
    x = np.asarray(audio, dtype=np.float64).reshape(-1)
    if len(x) < FRAME_SAMPLES:
        return np.zeros((0, bins), np.float32)
    n = 1 + (len(x) - FRAME_SAMPLES) // SHIFT_SAMPLES
    idx = np.arange(FRAME_SAMPLES)[None, :] + SHIFT_SAMPLES * np.arange(n)[:, None]
    frames = x[idx]
    frames = frames - frames.mean(axis=1, keepdims=True)
    prev = np.concatenate([frames[:, :1], frames[:, :-1]], axis=1)
    frames = (frames - PREEMPHASIS * prev) * _povey()[None, :]
    spec = np.abs(np.fft.rfft(frames, n=FFT_SIZE, axis=1)) ** 2
    energies = spec @ kaldi_mel_banks(bins).T.astype(np.float64)
    feats = np.log(np.maximum(energies, EPS))
    if mean_norm:
        feats = feats - feats.mean(axis=0, keepdims=True)
    return feats.astype(np.float32)
