"""Speech for the IVR engine: VAD, endpointing, streaming recognisers, barge-in, TTS, ledger.

A pure library: 8 kHz int16 frames (or text) in, typed results out; no telephony, no config
reading. Blocking inference runs in :class:`asr.pool.InferencePool`; everything else here either is
a pure state machine (``endpoint``, ``bargein``, ``ledger``) or an asyncio driver over them
(``listen``). Models are loaded once per process through :mod:`asr.models` and shared. Audio
follows the one convention in :mod:`audio.pcm`.
"""
