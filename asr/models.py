"""Load each model once per process and share it; remember how long loading took.

Loading is slow (vosk Korean ~2.7 s, whisper ~0.5 s, pocketsphinx ~0.15 s) and memory-heavy, so
every caller asks here instead of constructing engines. Loading is blocking: call ``get_engine``
from the inference pool or at start-up, never from a coroutine on the event loop.
"""

from __future__ import annotations

import atexit
import threading
import time
from pathlib import Path

from asr.recognizer import Engine, RecognizerError

ENGINES = ("pocketsphinx", "whisper", "whisper-base", "vosk")
_lock = threading.Lock()
_engines: dict[tuple[str, str], Engine] = {}
load_seconds: dict[str, float] = {}  # "<engine>:<path>" -> seconds, for doctor/metrics


@atexit.register
def _release() -> None:
    """Free the models while their native modules still exist: left to interpreter teardown,
    vosk's ``Model.__del__`` runs after its module globals are gone and raises."""
    with _lock:
        _engines.clear()


def get_engine(name: str, model_path: str | Path | None = None, workers: int = 2) -> Engine:
    """The shared engine ``name`` for ``model_path`` (bundled model when None)."""
    key = (name, str(model_path or ""))
    with _lock:
        eng = _engines.get(key)
        if eng is not None:
            return eng
        t0 = time.perf_counter()
        if name == "pocketsphinx":
            from asr.backends.sphinx import SphinxEngine  # noqa: PLC0415 - optional heavy backend, loaded on first use

            eng = SphinxEngine(model_path)
        elif name in ("whisper", "whisper-base"):
            from asr.backends.whisper import WhisperEngine  # noqa: PLC0415 - optional heavy backend, loaded on first use

            eng = WhisperEngine(model_path, num_workers=1, cpu_threads=workers, name=name)
        elif name == "vosk":
            from asr.backends.vosk_engine import VoskEngine  # noqa: PLC0415 - optional heavy backend, loaded on first use

            eng = VoskEngine(model_path)
        else:
            raise RecognizerError(name, f"unknown engine (known: {', '.join(ENGINES)})")
        load_seconds[f"{name}:{key[1] or 'bundled'}"] = time.perf_counter() - t0
        _engines[key] = eng
        return eng
