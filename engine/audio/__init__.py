"""Audio inside the engine: 8 kHz mono int16 PCM in 20 ms frames, plus codecs and helpers.

G.711 tables, resampling for prompts/recognisers, WAV in/out, tone generation and the in-band
DTMF detector. Pure numpy/scipy; nothing here touches the network or the event loop.
"""

SAMPLE_RATE = 8000
FRAME_MS = 20
FRAME_SAMPLES = SAMPLE_RATE * FRAME_MS // 1000
