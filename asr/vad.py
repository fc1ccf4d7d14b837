"""Voice activity detection on 20 ms, 8 kHz frames: silero (ONNX) or webrtcvad.

Silero runs its ONNX file directly with onnxruntime: the ``silero_vad`` Python module imports
torch, so we only locate its data directory through ``importlib.util.find_spec`` (which does not
execute the package) and read ``silero_vad.onnx`` from there. One ``InferenceSession`` is shared
by every call (onnxruntime sessions are thread-safe and ~120 us per window here, cheap enough to
run on the event loop); each call keeps its own recurrent state in a :class:`SileroVad` stream.

webrtcvad is ~40x cheaper but gives false early ends under background noise; it is the fast
alternative for many-call setups with clean audio.
"""

from __future__ import annotations

import importlib.util
import threading
from pathlib import Path
from typing import Protocol

import numpy as np

from audio.pcm import Pcm

SILERO_WINDOW_8K = 256  # silero v5 takes exactly 256 samples (32 ms) at 8 kHz
SILERO_CONTEXT_8K = 32  # ... prefixed by the last 32 samples of the previous window
_lock = threading.Lock()
_sessions: dict[str, object] = {}


class VadError(RuntimeError):
    """The VAD model is missing or unusable; the message names the path."""


class Vad(Protocol):
    """Per-call voice activity: one speech probability (0..1) per 20 ms frame."""

    def prob(self, frame: Pcm) -> float: ...

    def reset(self) -> None: ...


def default_silero_path() -> Path:
    """The ONNX file shipped in the ``silero-vad`` package, found without importing it."""
    spec = importlib.util.find_spec("silero_vad")
    if spec is None or not spec.submodule_search_locations:
        raise VadError("package silero-vad is not installed (requirements/nodeps.txt)")
    path = Path(next(iter(spec.submodule_search_locations))) / "data" / "silero_vad.onnx"
    if not path.is_file():
        raise VadError(f"silero model not found at {path}")
    return path


def _session(path: Path) -> object:
    import onnxruntime as ort  # noqa: PLC0415 - optional heavy backend, loaded on first use

    key = str(path)
    with _lock:
        sess = _sessions.get(key)
        if sess is None:
            opts = ort.SessionOptions()
            opts.intra_op_num_threads = 1  # many small calls: threads only add overhead
            opts.inter_op_num_threads = 1
            try:
                sess = ort.InferenceSession(
                    key, sess_options=opts, providers=["CPUExecutionProvider"]
                )
            except Exception as e:  # onnxruntime raises its own untyped errors
                raise VadError(f"cannot load VAD model {path}: {e}") from e
            _sessions[key] = sess
    return sess


class SileroVad:
    """Silero v5 at 8 kHz over 20 ms frames.

    Frames (160 samples) and silero windows (256) do not line up, so samples are buffered and the
    probability of the latest complete window is reported for each frame: at most 32 ms stale.
    """

    def __init__(
        self, model_path: str | Path | None = None, energy_floor_dbfs: float | None = -55.0
    ) -> None:
        """``energy_floor_dbfs``: frames quieter than this are silence whatever the model says.

        Silero's recurrent state keeps the probability high for ~200 ms after a clean line goes
        quiet, which adds straight to end-of-turn latency; the floor cuts that tail on quiet
        lines and is a no-op on noisy ones (their noise sits above it). None disables it.
        """
        self._sess = _session(Path(model_path) if model_path else default_silero_path())
        self._floor = (
            None if energy_floor_dbfs is None else 32768.0 * 10 ** (energy_floor_dbfs / 20)
        )
        self._sr = np.array(8000, dtype=np.int64)
        self.reset()

    def reset(self) -> None:
        self._state = np.zeros((2, 1, 128), dtype=np.float32)
        self._context = np.zeros(SILERO_CONTEXT_8K, dtype=np.float32)
        self._pending = np.zeros(0, dtype=np.float32)
        self._last = 0.0

    def prob(self, frame: Pcm) -> float:
        self._pending = np.concatenate([self._pending, frame.astype(np.float32) / 32768.0])
        while len(self._pending) >= SILERO_WINDOW_8K:
            win = self._pending[:SILERO_WINDOW_8K]
            self._pending = self._pending[SILERO_WINDOW_8K:]
            x = np.concatenate([self._context, win])[None, :]
            out, self._state = self._sess.run(  # type: ignore[attr-defined]
                None, {"input": x, "state": self._state, "sr": self._sr}
            )
            self._context = win[-SILERO_CONTEXT_8K:]
            self._last = float(out[0][0])
        if self._floor is not None:
            rms = float(np.sqrt(np.mean(frame.astype(np.float64) ** 2)))
            if rms < self._floor:
                return 0.0
        return self._last


class WebrtcVad:
    """webrtcvad (``webrtcvad-wheels``): a 0/1 decision per 20 ms frame, ``mode`` 0..3."""

    def __init__(self, mode: int = 3) -> None:
        import webrtcvad  # noqa: PLC0415 - optional heavy backend, loaded on first use

        if not 0 <= mode <= 3:
            raise ValueError(f"webrtc vad mode must be 0..3, got {mode}")
        self._vad = webrtcvad.Vad(mode)

    def reset(self) -> None:
        pass

    def prob(self, frame: Pcm) -> float:
        return 1.0 if self._vad.is_speech(frame.astype("<i2").tobytes(), 8000) else 0.0


class EnergyVad:
    """A level threshold (dBFS); for tests and as a last resort when no model is installed."""

    def __init__(self, threshold_dbfs: float = -40.0) -> None:
        self.threshold_dbfs = threshold_dbfs

    def reset(self) -> None:
        pass

    def prob(self, frame: Pcm) -> float:
        rms = float(np.sqrt(np.mean(frame.astype(np.float64) ** 2))) + 1e-9
        return 1.0 if 20 * np.log10(rms / 32768.0) > self.threshold_dbfs else 0.0


def make_vad(kind: str, model_path: str | None = None) -> Vad:
    """A fresh per-call VAD: ``silero``, ``webrtc`` (or ``webrtc:MODE``) or ``energy``."""
    if kind == "silero":
        return SileroVad(model_path)
    if kind.startswith("webrtc"):
        _, _, mode = kind.partition(":")
        return WebrtcVad(int(mode) if mode else 3)
    if kind == "energy":
        return EnergyVad()
    raise ValueError(f"vad: unknown kind {kind!r} (silero, webrtc[:0-3], energy)")
