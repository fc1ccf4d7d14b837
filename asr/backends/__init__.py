"""Recogniser backends: pocketsphinx (grammar/keywords), faster-whisper (free text), vosk."""
