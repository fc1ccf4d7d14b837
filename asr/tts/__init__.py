"""Prompt TTS: piper (bundled English voice), Kokoro (Mandarin) or espeak-ng (fallback), cached,
8 kHz."""

from asr.tts import kokoro
from asr.tts.service import RenderedPrompt, TtsError, TtsService

__all__ = ["RenderedPrompt", "TtsError", "TtsService", "kokoro"]
