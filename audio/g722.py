"""G.722 (RTP payload type 9) through the ``g722`` wheel (sippy/libg722, the spandsp codec in C).

Why a wheel and not numpy: G.722 is sub-band ADPCM, a per-sample recursive filter that cannot be
vectorised; in pure Python it would cost ~1 ms per 20 ms frame. The C codec costs tens of µs.

ADPCM is stateful, so each direction of each call needs its own :class:`G722Encoder` /
:class:`G722Decoder`. Two modes:

* ``rate=8000`` (the engine's narrowband PCM): only the lower sub-band is coded/decoded, no QMF,
  which is what a narrowband engine can use; the far end hears 0-4 kHz audio.
* ``rate=16000``: full wideband; use :mod:`audio.resample` around it as needed.

Either way one 20 ms frame is 160 payload bytes and, per RFC 3551 §4.5.2, the RTP timestamp
advances 160 (the clock rate is signalled as 8000 for historical reasons).
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

G722_PAYLOAD_TYPE = 9
G722_RTP_CLOCK_RATE = 8000
G722_BITRATE = 64000


def _codec(rate: int) -> object:
    if rate not in (8000, 16000):
        raise ValueError(f"G.722 rate must be 8000 or 16000, got {rate}")
    try:
        from G722 import G722  # noqa: PLC0415 - optional C codec, only needed for G.722 calls
    except ImportError as exc:  # pragma: no cover - the wheel is in requirements/media.txt
        raise RuntimeError("G.722 needs the 'g722' package (requirements/media.txt)") from exc
    return G722(rate, G722_BITRATE)


class G722Encoder:
    """int16 PCM at ``rate`` in, G.722 bytes out (one instance per sending stream)."""

    def __init__(self, rate: int = 8000) -> None:
        self.rate = rate
        self._c = _codec(rate)

    def encode(self, pcm: npt.NDArray[np.int16]) -> bytes:
        samples = np.ascontiguousarray(pcm, dtype=np.int16)
        return bytes(self._c.encode(samples))  # type: ignore[attr-defined]


class G722Decoder:
    """G.722 bytes in, int16 PCM at ``rate`` out (one instance per receiving stream)."""

    def __init__(self, rate: int = 8000) -> None:
        self.rate = rate
        self._c = _codec(rate)

    def decode(self, payload: bytes) -> npt.NDArray[np.int16]:
        out = self._c.decode(payload)  # type: ignore[attr-defined]
        return np.frombuffer(out, dtype=np.int16).copy()
