"""Prompt TTS: piper (bundled English voice) or espeak-ng (fallback, Mandarin), cached, 8 kHz."""

from asr.tts.service import RenderedPrompt, TtsError, TtsService, sensitive_word_check

__all__ = ["RenderedPrompt", "TtsError", "TtsService", "sensitive_word_check"]
