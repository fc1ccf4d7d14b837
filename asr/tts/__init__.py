"""Prompt TTS: piper (bundled English voice) or espeak-ng (fallback, Mandarin), cached, 8 kHz."""

from asr.tts.service import RenderedPrompt, TtsError, TtsService

__all__ = ["RenderedPrompt", "TtsError", "TtsService"]
