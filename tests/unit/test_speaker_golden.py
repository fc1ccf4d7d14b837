"""Golden test: our GE2E port reproduces the original ``resemblyzer`` package's embedding.

The reference was computed once with resemblyzer 0.1.4 + librosa 0.11 + torch 2.13 CPU in a
separate venv (``VoiceEncoder().embed_utterance(preprocess_wav(wav))``) on the first 3 s of
moonshine's ``beckett.wav``; our numpy mel + LSTM copy must give the same vector.
"""

from __future__ import annotations

import base64

import numpy as np
import pytest

from audio.wavio import read_wav_float
from speaker_id.backends import cosine, load_backend
from speaker_id.testdata import beckett

pytest.importorskip("torch", reason="GE2E (resemblyzer) is optional: requirements/torch.txt")

REFERENCE_B64 = (
    "AAAAAAAAAAAAAAAAAAAAAAAAAAAcOBQ+AAAAAAAAAADmXiI97H6OOx9sgzya/aQ9AAAAAP6SBz0AAAAAAAAAAKvDqz0A"
    "AAAAAAAAAAAAAAAAAAAA/hpoPQAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA6bYkPi/vgzx/YbY9AAAAAMMr"
    "eTypBhE944WtPQAAAAAAAAAAAAAAAAAAAAAhC/s8jtnKPQAAAAAAAAAAAAAAAAAAAAC8NIs9w/8YPAAAAAAAAAAANnqZ"
    "PQAAAAAAAAAAAAAAAH98KzwlAsg6AAAAAAAAAAAAAAAA/abfPAAAAACyUbk9AAAAAPql/D0AAAAAT/41PPWHFz4AAAAA"
    "AAAAAAAAAAAAAAAAr5qsPOXqTT3IWsY8AAAAAAAAAADVTPs6AAAAAKEEPT0AAAAAAAAAAAzDqj2qpwk9SftbPYDcPD0A"
    "AAAAAAAAAAAAAACEEAc+6Vm8PQAAAAAAAAAA8HgCPQAAAAAAAAAARJqEPQAAAAAAAAAAAAAAAAAAAAAAAAAAnP0nO70c"
    "Zj2/L709n1gcPQAAAADyBtc9AAAAAOtYzT0AAAAAr+sLPRwQdT4aTVQ+YCEFPgAAAAB8ehQ+7sRsPQAAAAD6gsk9iPtW"
    "PBSVMTwAAAAA/KIoOZzfkjuMwlU9AAAAAG3kDT5sAo89AAAAAAAAAAAAAAAATu8JPSkKXTxuy6c9AAAAADGLCDwAAAAA"
    "YLXZPe1+DD4AAAAAAAAAAC2PyT0AAAAAhWaUPQAAAADLEEY7AAAAAAAAAAAbHyQ+vN7CPJm/Ez4AAAAAAAAAAAAAAABy"
    "Ya09AAAAAAAAAADx4y0+AAAAAAAAAAAAAAAAJ/u1O0BdsDqutaI7+wQ9OwAAAAAAAAAA4VTuPWuTOD4AAAAAAAAAAPrR"
    "oz0iP8A8AAAAAAAAAAAAAAAAAAAAAIuKqjuF/LY7XlhFPvyRezxz0B49AAAAAMXgwz0AAAAAAAAAAET6njwAAAAAAAAA"
    "AHbioT0AAAAAeSuNPPK3AD0AAAAACfaYPGyNRDzYwnc93eK5Pa6TnzxmvJ09Grz5PZ1UqTwAAAAAAAAAAAAAAAAAAAAA"
    "e7vmPO5tbTwAAAAAAAAAAAAAAABAg+c9luvxPQAAAAAAAAAAAAAAAEyJCz7MX0c8AAAAALoyTj3dMLo8AAAAAAAAAAAA"
    "AAAAsnxaPGAVGz6kJJQ9AAAAAAAAAABaYqA9WkvjO7SiwTwAAAAAAAAAAL9iBDyOa7I90/UgPlqWbj1l0gs9LpE/Podb"
    "NT0AAAAAj1GjPgAAAABf9Zc8kGcmPgAAAAAd2N89WH46PQAAAAAAAAAA4CyXPQAAAAAAAAAAAAAAAA=="
)


def test_embedding_matches_original_resemblyzer() -> None:
    reference = np.frombuffer(base64.b64decode(REFERENCE_B64), dtype="<f4")
    audio, rate = read_wav_float(beckett())
    assert rate == 16000
    ours = load_backend("resemblyzer").embed(audio[:48000])
    assert cosine(ours, reference) > 0.99999
    assert np.abs(ours - reference).max() < 1e-5  # reflect padding instead would give 1e-4
