"""One call's media over an AudioSocket connection: the caller's frames in, prompts out.

It is what :class:`~engine.media.session.MediaSession` is for RTP, over TCP from Asterisk:

* receive: Asterisk writes the caller's audio as 8 kHz slin messages as the channel reads them
  (TCP keeps them in order, so there is no jitter buffer); they are cut into 20 ms frames for
  the subscribers (``events()``, the recogniser, message recording) and the call recording, and
  skipped at the cost of a length check when nobody consumes them. Keys arrive as DTMF messages.
* send: on the shared pacer's tick, one 20 ms frame: the next prompt frame, else silence.
  Asterisk writes each message to the channel as it arrives, so pacing here is what keeps the
  caller's audio at real time; and without something to read for 2 s Asterisk ends the app.
  Prompts are converted to little-endian bytes once when first sent, so a tick slices bytes.
  When Asterisk stops reading (the socket's send buffer fills) frames are dropped and counted
  rather than queued: late audio is worse than lost audio.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from audio.pcm import FRAME_SAMPLES, Pcm
from core.call import AudioFrameEvent, DtmfEvent
from engine.ami.audiosocket import HANGUP_MESSAGE, audio_message
from engine.media.playout import Playout
from engine.media.recorder import Recorder
from engine.media.subscription import MediaSubscription, Subscribers

log = logging.getLogger("ivr.ami.media")

FRAME_BYTES = FRAME_SAMPLES * 2
SLIN_KEY = -1  # PlayItem.encoded key of a prompt's slin bytes (RTP payload types are >= 0)
MAX_WRITE_BUFFER_BYTES = 50 * (FRAME_BYTES + 3)  # 1 s of audio waiting in the socket
MEDIA_CHECK_TICKS = 25
SILENCE = np.zeros(FRAME_SAMPLES, dtype=np.int16)
SILENCE_MESSAGE = audio_message(SILENCE.astype("<i2").tobytes())


@dataclass
class AudioSocketStats:
    rx_frames: int = 0  # audio messages from Asterisk
    rx_bytes: int = 0
    rx_other_rate: int = 0  # audio at a rate other than 8 kHz (not from the AudioSocket app)
    tx_frames: int = 0
    tx_dropped: int = 0  # not written: Asterisk was not reading
    dtmf_rx: int = 0

    def as_dict(self) -> dict[str, int]:
        return {"rx": self.rx_frames, "tx": self.tx_frames, "tx_dropped": self.tx_dropped,
                "rx_bytes": self.rx_bytes, "rx_other_rate": self.rx_other_rate,
                "dtmf_rx": self.dtmf_rx}


class AudioSocketMedia(Subscribers):
    """See the module docstring. A :class:`~engine.media.subscription.MediaFeed` for the call
    parts and a paced stream for the :class:`~engine.rtp.pacer.Pacer`."""

    def __init__(self, transport: asyncio.WriteTransport, *, now: Callable[[], float],
                 media_timeout_s: float = 30.0) -> None:
        self.transport = transport
        self._now = now
        self.media_timeout_s = media_timeout_s
        self.playout = Playout()
        self.recorder: Recorder | None = None
        self.stats = AudioSocketStats()
        self.on_dtmf: Callable[[DtmfEvent], None] | None = None
        self.on_media_timeout: Callable[[], None] | None = None
        self._early_digits: list[DtmfEvent] = []  # keys before the call took its media
        self._subscribers: list[MediaSubscription] = []
        self._rx_buf = bytearray()
        self.last_rx = now()
        self.timed_out = False
        self.closed = False

    # -- consumers -----------------------------------------------------------------------------

    @property
    def wants_audio(self) -> bool:
        return self.recorder is not None or any(s.wants_audio for s in self._subscribers)

    def set_dtmf_handler(self, handler: Callable[[DtmfEvent], None]) -> None:
        """The call's key handler; keys that came before it are delivered now, in order."""
        self.on_dtmf = handler
        early, self._early_digits = self._early_digits, []
        for ev in early:
            handler(ev)

    # -- receive path (the connection's protocol calls these; they never raise) ---------------

    def on_audio(self, payload: bytes, rate_hz: int | None) -> None:
        now = self._now()
        self.last_rx = now
        self.stats.rx_frames += 1
        self.stats.rx_bytes += len(payload)
        if rate_hz != 8000:
            self.stats.rx_other_rate += 1
            return
        if not self.wants_audio:
            self._rx_buf.clear()
            return
        buf = self._rx_buf
        buf += payload
        while len(buf) >= FRAME_BYTES:
            pcm: Pcm = np.frombuffer(bytes(buf[:FRAME_BYTES]), dtype="<i2").astype(np.int16)
            del buf[:FRAME_BYTES]
            if self.recorder is not None:
                self.recorder.caller(pcm)
            if self._subscribers:
                self._publish(AudioFrameEvent(pcm, now))

    def on_digit(self, digit: str) -> None:
        self.stats.dtmf_rx += 1
        ev = DtmfEvent(digit, "asterisk", 0, self._now())
        self._publish(ev)
        if self.on_dtmf is not None:
            self.on_dtmf(ev)
        else:
            self._early_digits.append(ev)

    # -- send path (the pacer's tick) ----------------------------------------------------------

    def on_tick(self, tick: int, now: float) -> None:
        if self.closed:
            return
        nxt = self.playout.next_frame()
        if nxt is None:
            self._write(SILENCE_MESSAGE, SILENCE)
        else:
            item, start = nxt
            if start == 0 and item.first_sent_at is None:
                item.first_sent_at = now  # the answer's first audio frame (latency ledger)
            if start < 0:  # a live item: this frame only
                pcm = _padded(item.pcm[:FRAME_SAMPLES])
                self._write(audio_message(pcm.astype("<i2").tobytes()), pcm)
            else:
                data = item.encoded.get(SLIN_KEY)
                if data is None:
                    data = item.encoded[SLIN_KEY] = item.pcm.astype("<i2").tobytes()
                chunk = data[start * 2:(start + FRAME_SAMPLES) * 2]
                if len(chunk) < FRAME_BYTES:
                    chunk += bytes(FRAME_BYTES - len(chunk))
                pcm = _padded(item.pcm[start:start + FRAME_SAMPLES])
                self._write(audio_message(chunk), pcm)
        if tick % MEDIA_CHECK_TICKS == 0:
            self._check_timeout(now)

    def _write(self, message: bytes, pcm: Pcm) -> None:
        if self.recorder is not None:
            self.recorder.engine(pcm)
        if self.transport.is_closing():
            return
        if self.transport.get_write_buffer_size() > MAX_WRITE_BUFFER_BYTES:
            self.stats.tx_dropped += 1
            return
        self.transport.write(message)
        self.stats.tx_frames += 1

    def _check_timeout(self, now: float) -> None:
        if (not self.timed_out and self.media_timeout_s > 0
                and now - self.last_rx > self.media_timeout_s):
            self.timed_out = True
            if self.on_media_timeout is not None:
                self.on_media_timeout()

    # -- control -------------------------------------------------------------------------------

    def send_hangup(self) -> None:
        """Ask Asterisk to end the app (the dialplan goes on at the next priority)."""
        self.playout.stop_all("hangup")
        if not self.transport.is_closing():
            self.transport.write(HANGUP_MESSAGE)

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        self.playout.stop_all("hangup")
        self.transport.close()


def _padded(pcm: Pcm) -> Pcm:
    if len(pcm) >= FRAME_SAMPLES:
        return pcm
    return np.concatenate([pcm, SILENCE[len(pcm):]])
