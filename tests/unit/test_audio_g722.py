"""G.722 through the C codec: round-trip quality, per-stream state, the codec registry."""

from __future__ import annotations

import numpy as np
import pytest

from audio.codecs import new_codec
from audio.g722 import G722Decoder, G722Encoder
from audio.tones import tone


def _snr_db(ref: np.ndarray, out: np.ndarray, max_delay: int = 64) -> float:
    ref = ref.astype(np.float64)[800:-200]
    best = 0.0
    for k in range(max_delay):
        seg = out.astype(np.float64)[800 + k:800 + k + len(ref)]
        err = ref - seg
        best = max(best, 10 * np.log10(np.sum(ref**2) / max(np.sum(err**2), 1e-9)))
    return best


@pytest.mark.parametrize("rate", [8000, 16000])
def test_round_trip_quality_and_frame_size(rate: int) -> None:
    x = tone((440.0, 1000.0, 2500.0 if rate == 16000 else 1800.0), 1.0, rate=rate, dbfs=-15)
    enc, dec = G722Encoder(rate), G722Decoder(rate)
    n = rate // 50
    payloads = [enc.encode(x[i:i + n]) for i in range(0, len(x), n)]
    assert {len(p) for p in payloads} == {160}  # 64 kbit/s, 20 ms
    y = np.concatenate([dec.decode(p) for p in payloads])
    assert len(y) == len(x) and y.dtype == np.int16
    assert _snr_db(x, y) > 30


def test_state_is_per_stream() -> None:
    x = tone(700.0, 0.2, dbfs=-10)
    a, b = G722Encoder(), G722Encoder()
    first = [a.encode(x[i:i + 160]) for i in range(0, 1600, 160)]
    # a fresh encoder fed the same audio gives the same bytes: no hidden shared state
    assert [b.encode(x[i:i + 160]) for i in range(0, 1600, 160)] == first
    # ...while one encoder's output depends on its history (ADPCM)
    assert first[5] != G722Encoder().encode(x[800:960])


def test_rejects_bad_rate() -> None:
    with pytest.raises(ValueError, match="rate must be 8000 or 16000, got 44100"):
        G722Encoder(44100)


@pytest.mark.parametrize(("name", "pt"), [("PCMU", 0), ("pcma", 8), ("G722", 9)])
def test_registry_round_trip(name: str, pt: int) -> None:
    c = new_codec(name)
    assert c.payload_type == pt and c.rtp_clock_rate == 8000
    x = tone(1000.0, 0.4, dbfs=-12)
    y = np.concatenate([c.decode(c.encode(x[i:i + 160])) for i in range(0, len(x), 160)])
    assert _snr_db(x, y) > 25
    with pytest.raises(ValueError, match="unsupported codec 'opus'"):
        new_codec("opus")
