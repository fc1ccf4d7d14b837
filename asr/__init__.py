"""Speech for the IVR engine: VAD, endpointing, streaming recognisers, barge-in, TTS, ledger.

A pure library: 8 kHz int16 frames (or text) in, typed results out; no telephony, no config
reading. Blocking inference runs in :class:`asr.pool.InferencePool`; everything else here either is
a pure state machine (``endpoint``, ``bargein``, ``ledger``) or an asyncio driver over them
(``listen``). Models are loaded once per process through :mod:`asr.models` and shared.
"""

from __future__ import annotations

SAMPLE_RATE_HZ = 8000
FRAME_SAMPLES = 160  # 20 ms at 8 kHz, the engine's frame
FRAME_S = FRAME_SAMPLES / SAMPLE_RATE_HZ
