"""Audio, one convention for the whole project.

Inside the engine audio is 8 kHz mono int16 PCM in 20 ms frames (:mod:`audio.pcm` holds the
constants and the ``Pcm`` type); recognisers and speaker encoders take 16 kHz. This package has
the codecs (G.711, G.722), resampling, WAV I/O (any PCM/float/G.711 WAV in), tones and the
in-band DTMF detector. Pure numpy/scipy: nothing here touches the network or the event loop, and
nothing here imports another package of the project.
"""
