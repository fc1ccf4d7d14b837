"""Synthetic caller speech through a telephone chain, for tests, benchmarks and flow simulation.

Real audio, not strings: text is spoken by piper or espeak-ng, optionally mixed with noise by sox,
and sent through a G.711 round trip with sox (``-e u-law`` / ``-e a-law`` at 8 kHz, then back to
signed 16-bit), the same distortion a caller's voice suffers on a phone line.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Literal

from asr.tts.engines import default_piper_voice, espeak_synthesize, piper_synthesize
from audio.pcm import Pcm
from audio.wavio import read_wav, write_wav

Codec = Literal["u-law", "a-law"]


def _sox(*args: str) -> None:
    binary = shutil.which("sox")
    if binary is None:
        raise RuntimeError("sox is not installed (Debian package sox)")
    out = subprocess.run([binary, *args], capture_output=True, timeout=30, check=False)
    if out.returncode != 0:
        raise RuntimeError(f"sox {' '.join(args)}: {out.stderr.decode(errors='replace')[:200]}")


def speak(text: str, voice: str = "piper", speed: float = 1.0, rate: int = 16000) -> Pcm:
    """``voice``: ``piper`` (bundled) or an espeak-ng voice name such as ``en-us``, ``en-gb+f3``."""
    if voice == "piper":
        return piper_synthesize(text, default_piper_voice(), length_scale=1.0 / speed, rate=rate)
    return espeak_synthesize(text, voice, speed_wpm=int(160 * speed), rate=rate)


def telephone(
    pcm: Pcm, rate: int, codec: Codec = "u-law", noise: str | None = None, noise_vol: float = 0.03
) -> Pcm:
    """Mix ``noise`` (sox synth type: whitenoise, pinknoise, brownnoise) then G.711 round trip.

    Returns 8 kHz int16: what the engine's decoder hands to a recogniser.
    """
    with tempfile.TemporaryDirectory(prefix="asr-synth-") as d:
        src = Path(d) / "src.wav"
        write_wav(src, pcm, rate)
        if noise:
            dur = f"{len(pcm) / rate:.3f}"
            nz = Path(d) / "noise.wav"
            _sox(
                "-n",
                "-r",
                str(rate),
                "-c",
                "1",
                "-b",
                "16",
                str(nz),
                "synth",
                dur,
                noise,
                "vol",
                str(noise_vol),
            )
            mixed = Path(d) / "mixed.wav"
            _sox("-m", str(src), str(nz), str(mixed))
            src = mixed
        g711 = Path(d) / "g711.wav"
        _sox(str(src), "-r", "8000", "-c", "1", "-e", codec, str(g711))
        back = Path(d) / "back.wav"
        _sox(str(g711), "-e", "signed", "-b", "16", str(back))
        out, _ = read_wav(back)
    return out
