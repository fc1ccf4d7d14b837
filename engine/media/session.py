"""One call's media: an RTP socket, the receive path and the send path, ticked by the pacer.

Receive (socket callback, per packet): RTCP is demultiplexed (RFC 5761 ranges) and read for
statistics; telephone-event packets go to the RFC 4733 receiver (digits reported once); audio
packets feed receiver statistics and, only while someone consumes caller audio (a recogniser, a
recording, the in-band DTMF detector), the jitter buffer. A call nobody listens to costs a
header parse per packet and nothing more.
With ``engine/rtp/_rtprecv.c`` built, that common packet (the latched source's audio, locked
SSRC, in sequence, nobody listening) never reaches Python: an ``RxLane``, installed by
``engine/rtp/rxlane.py`` as the protocol's ``datagram_received``, updates the same counters,
source lock and RFC 3550 statistics in C, and hands every other datagram to ``on_datagram``.

Tick (pacer, every 20 ms, all calls in one pass): pop and decode one caller frame for the
consumers; send one frame: queued RFC 4733 digit packets first, else the next prompt frame
(prompts are G.711-encoded once when queued, so a tick only slices bytes), else silence. Sending
silence keeps NAT bindings and the far end's jitter buffer alive, as media servers do.

Symmetric RTP (RFC 4961): when enabled, packets are sent to the address the peer's packets come
from once the first one arrives, which is what makes calls through NAT work.

Native send path (``engine/rtp/_rtpsend.c``, when built): the sender writes each packet to the
socket itself, and a session with nothing to do but send silence (no prompt, no digit to send,
nobody consuming caller audio, no recording, not on hold, no RFC 4733 event arriving, G.711)
goes *quiet*: the pacer sends its silence for it in one C loop over all quiet calls, and calls
``on_quiet_tick`` twice a second for timeouts and RTCP. Anything that gives the session work
wakes it (``_wake``) before the next tick, so nothing waits on it. A session playing a prompt
under the same conditions hands the prompt's encoded bytes to its sender as a *script* and goes
quiet too: the C loop sends the prompt's frames (byte-identical to the Python path's), and the
session takes over again the tick after its last frame (``on_script_end``) or the moment
anything wakes it, including a stop (barge-in, hang-up): ``_end_script`` then moves the play
position to what was sent.
"""

from __future__ import annotations

import asyncio
import logging
import struct
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

import numpy as np

from audio.codecs import STATIC_PAYLOAD_TYPES, new_codec
from audio.inband_dtmf import InbandDtmfDetector
from audio.pcm import FRAME_SAMPLES, Pcm
from core.call import AudioFrameEvent, DtmfEvent
from core.clock import Clock, SystemClock
from engine.media.playout import PlayItem, Playout
from engine.media.recorder import Recorder
from engine.media.subscription import MediaSubscription, Subscribers
from engine.rtp import rtcp
from engine.rtp.dtmf import DtmfReceiver, digit_packets
from engine.rtp.jitter import JitterBuffer
from engine.rtp.packet import RTP_HEADER_BYTES, RtpError, is_rtcp
from engine.rtp.packet import parse as parse_rtp
from engine.rtp.rxlane import RtpProtocol, install_lane
from engine.rtp.source import SourceGuard, Verdict
from engine.rtp.stream import RtpReceiverStats, RtpSender

if TYPE_CHECKING:
    from engine.rtp.pacer import Pacer

log = logging.getLogger("ivr.media")

RTCP_INTERVAL_TICKS = 250  # 5 s
MEDIA_CHECK_TICKS = 25  # check the media timeout twice a second (the pacer's quiet housekeeping)
_RTP_HEADER = struct.Struct("!BBHII")

CODECS = tuple(STATIC_PAYLOAD_TYPES)  # PCMU, PCMA, G722
STATELESS_CODECS = frozenset({"PCMU", "PCMA"})  # prompts can be encoded once and sliced
SILENCE = np.zeros(FRAME_SAMPLES, dtype=np.int16)


@dataclass
class MediaStats:
    rx_packets: int = 0
    rx_bad: int = 0
    rx_rtcp: int = 0
    tx_packets: int = 0
    dtmf_rx: int = 0
    dtmf_tx: int = 0
    rx_foreign: int = 0  # dropped: from another address, port or SSRC than the call's
    latched: bool = False
    extra: dict[str, int] = field(default_factory=dict)


class MediaSession(Subscribers):
    """See the module docstring. Created by the controller once SDP is negotiated."""

    def __init__(self, *, codec: str, payload_type: int, telephone_event_pt: int | None,
                 remote: tuple[str, int], local_port: int, transport: asyncio.DatagramTransport,
                 protocol: RtpProtocol, symmetric: bool = True, media_timeout_s: float = 30.0,
                 inband_dtmf: Literal["auto", "on", "off"] = "auto",
                 clock: Clock | None = None,
                 allowed_sources: frozenset[str] | None = None) -> None:
        self._pacer: Pacer | None = None  # set while a pacer ticks us (quiet mode needs it)
        self._script_item: PlayItem | None = None  # the prompt the pacer is playing for us
        self._native = False
        self._quiet_mark = 0  # sender.packet_count when the pacer last took or gave back our sends
        self._set_codec(codec)
        self.payload_type = payload_type
        self.te_pt = telephone_event_pt
        self.remote = remote
        # where RTP may come from: the SDP's address and the signalling's (docs/media.md)
        self.guard = SourceGuard(allowed_sources)
        self.local_port = local_port
        self.transport = transport
        self.symmetric = symmetric
        self.media_timeout_s = media_timeout_s
        clock = clock or SystemClock()
        self._now = clock.now
        self._wall = clock.wall
        self.sender = RtpSender(payload_type)
        # the tick (mod RTCP_INTERVAL_TICKS) of this call's RTCP report and timeout checks: the
        # pacer's tick is shared, so at a fixed tick every call would report at once (one
        # 10 ms tick per 5 s at 500 calls, RFC 3550 §6.3's synchronisation); the random SSRC
        # spreads them. The pacer runs on_quiet_tick on this phase too.
        self.housekeeping_phase = self.sender.ssrc % RTCP_INTERVAL_TICKS
        self.rx_stats: RtpReceiverStats | None = None
        self.remote_report: rtcp.ReportBlock | None = None  # the peer's last RTCP report on us
        self.jitter = JitterBuffer()
        self.dtmf_rx = DtmfReceiver()
        self.playout = Playout()
        self.stats = MediaStats()
        self.inband: InbandDtmfDetector | None = None
        if inband_dtmf == "on" or (inband_dtmf == "auto" and telephone_event_pt is None):
            self.inband = InbandDtmfDetector()
        self._subscribers: list[MediaSubscription] = []
        self._recorder: Recorder | None = None
        self.wants_audio = False
        self._refresh_wants_audio()
        self._dtmf_queue: list[tuple[int, bytes, bool]] = []  # (send at tick, payload, marker)
        self._dtmf_ts = 0
        self.on_dtmf: Callable[[DtmfEvent], None] | None = None
        self.on_media_timeout: Callable[[], None] | None = None
        self.last_rx = self._now()
        self.timed_out = False
        # the receive fast lane in C when built (module docstring), else protocol -> on_datagram
        self._lane = install_lane(protocol, self, self.guard, self.stats, clock)
        self._silence_payload = self.encode(SILENCE)
        self.closed = False
        self.tick = 0
        self._on_hold = False
        self._rx_buf: Pcm = SILENCE[:0]
        self._rx_frame_len = FRAME_SAMPLES
        self.playout.on_enqueue = self._wake
        self.playout.on_stop = self._wake
        self._bind_sender()

    @property
    def on_hold(self) -> bool:
        """The peer put us on hold (sendonly/inactive): send nothing."""
        return self._on_hold

    @on_hold.setter
    def on_hold(self, value: bool) -> None:
        self._on_hold = value
        self._wake()

    def _bind_sender(self) -> None:
        """Let the native sender write to our socket itself, towards ``remote`` (again after
        a latch or a re-INVITE). False without the C module or for a non-numeric address:
        then packets go through the asyncio transport."""
        self.sender.silence = self._silence_payload
        sock = self.transport.get_extra_info("socket")
        fd = sock.fileno() if sock is not None else -1
        self._native = fd >= 0 and self.sender.bind(fd, self.remote[0], self.remote[1])

    def _set_codec(self, name: str) -> None:
        c = new_codec(name)  # raises ValueError naming the codec when unsupported
        self.codec = c.name
        self.encode, self.decode = c.encode, c.decode
        self.stateless = c.name in STATELESS_CODECS
        self._record_decode: Callable[[bytes], Pcm] | None = None

    # -- consumers -----------------------------------------------------------------------------

    @property
    def recorder(self) -> Recorder | None:
        return self._recorder

    @recorder.setter
    def recorder(self, value: Recorder | None) -> None:
        self._recorder = value
        self._refresh_wants_audio()

    def _refresh_wants_audio(self) -> None:
        """Whether anyone consumes caller audio, kept as a flag: the tick reads it 50 times a
        second per call, so it is worked out only when a consumer comes or goes."""
        self.wants_audio = self._recorder is not None or self.inband is not None or any(
            s.wants_audio for s in self._subscribers)
        if self.wants_audio:
            self._wake()

    def _subscribers_changed(self) -> None:
        self._refresh_wants_audio()

    def _digit(self, digit: str, source: Literal["rfc4733", "inband"], duration_ms: int) -> None:
        self.stats.dtmf_rx += 1
        ev = DtmfEvent(digit, source, duration_ms, self._now())
        self._publish(ev)
        if self.on_dtmf is not None:
            self.on_dtmf(ev)

    # -- receive path --------------------------------------------------------------------------

    def on_datagram(self, data: bytes, addr: tuple[str, int]) -> None:
        """Socket callback: never raises; a bad or foreign packet is counted and dropped."""
        if self.closed:
            return
        now = self._now()
        if (data[:1] == b"\x80" and len(data) > RTP_HEADER_BYTES and not self.wants_audio
                and data[1] & 0x7F == self.payload_type):
            # the fast lane: plain v2 audio from the latched source and locked SSRC, nobody
            # consuming it; only counters and the RFC 3550 statistics change
            _, _, seq, ts, ssrc = _RTP_HEADER.unpack_from(data)
            rx = self.rx_stats
            if rx is not None and rx.ssrc == ssrc and self.guard.is_locked_audio(addr, ssrc, now):
                self.stats.rx_packets += 1
                self.last_rx = now
                rx.update_fields(seq, ts, now)
                return
        if is_rtcp(data):
            source = self.guard.source
            if source is None or addr[0] == source[0]:  # RTCP may use the port above RTP's
                self.stats.rx_rtcp += 1
                self.last_rx = now
                self._read_rtcp(data)
            else:
                self.stats.rx_foreign += 1
            return
        try:
            pkt = parse_rtp(data)
        except RtpError as e:
            self.stats.rx_bad += 1
            log.debug("bad RTP from %s: %s", addr, e)
            return
        pt = pkt.payload_type
        event = pt == self.te_pt
        verdict = self.guard.check(addr, pkt.ssrc, pkt.sequence, now, event=event)
        if not verdict.accepted:
            self.stats.rx_foreign += 1
            return
        if verdict is Verdict.LATCHED and self.symmetric and addr != self.remote:
            log.debug("symmetric RTP: latching %s -> %s", self.remote, addr)
            self.remote = addr
            self.stats.latched = True
            self._bind_sender()
        self.stats.rx_packets += 1
        self.last_rx = now
        same_stream = pkt.ssrc == self.guard.audio_ssrc
        if event:
            self._wake()  # an event in progress is polled every tick (end packets may be lost)
            for d in self.dtmf_rx.feed(pkt.payload, pkt.timestamp, now):
                self._digit(d.digit, "rfc4733", d.duration // 8)
            if not same_stream:
                return
        elif pt != self.payload_type:
            return  # comfort noise or a codec we did not negotiate
        if self.rx_stats is None or self.rx_stats.ssrc != pkt.ssrc:
            self.rx_stats = RtpReceiverStats(pkt.ssrc)
        self.rx_stats.update(pkt, now)  # events take sequence numbers of the stream too
        if self.wants_audio:
            # an event's packet fills its slot in the stream with silence instead of being
            # counted as a lost audio frame (RFC 4733 §2.5.1.3: no audio during an event)
            self.jitter.put(pkt, now, audio=not event)
            if self._recorder is not None and not event:
                self._record_caller(pkt.timestamp, pkt.payload)

    def _record_caller(self, timestamp: int, payload: bytes) -> None:
        """The recording takes the caller's audio as it arrives, placed by RTP timestamp, not
        what playout releases: frames the jitter buffer drops when it shrinks (a loaded box)
        are still what the caller said. A stateful codec (G.722) gets its own decoder here,
        so playout's decoder state is not disturbed."""
        assert self._recorder is not None
        if self._record_decode is None:
            self._record_decode = (self.decode if self.stateless
                                   else new_codec(self.codec).decode)
        try:
            pcm = self._record_decode(payload)
        except ValueError:
            return
        if len(pcm):
            self._recorder.caller_rtp(timestamp, pcm)

    def _read_rtcp(self, data: bytes) -> None:
        """The far end's view of what we send: the last report block about our SSRC."""
        try:
            packets = rtcp.parse(data)
        except RtpError:
            self.stats.rx_bad += 1
            return
        for p in packets:
            for block in getattr(p, "reports", ()):
                if block.ssrc == self.sender.ssrc:
                    self.remote_report = block

    # -- tick (pacer) --------------------------------------------------------------------------

    def on_tick(self, tick: int, now: float) -> None:
        if self.closed:
            return
        self.tick = tick
        if self.wants_audio:
            self._receive_frame(now)
        if self.dtmf_rx.holding:  # an event whose end packets may all have been lost
            for d in self.dtmf_rx.poll(now):
                self._digit(d.digit, "rfc4733", d.duration // 8)
        if self.on_hold:
            self.sender.skip(FRAME_SAMPLES)
            if self.recorder is not None:
                self.recorder.engine(SILENCE)  # the recording's timeline goes on
        else:
            self._send_frame(tick)
        if (tick - self.housekeeping_phase) % MEDIA_CHECK_TICKS == 0:
            self._housekeeping(tick, now)
        if self._native and self._pacer is not None:
            if self._can_quiet():
                self._quiet_mark = self.sender.packet_count
                self._pacer.quiet(self, self.sender)
            elif self._can_script():
                self._start_script()

    # -- quiet mode (see the module docstring) ---------------------------------------------------

    def _can_quiet(self) -> bool:
        """Nothing but silence to send until something wakes us."""
        return (self.stateless and not self.wants_audio and not self._on_hold
                and not self._dtmf_queue and not self.playout.busy
                and not self.dtmf_rx.holding and self._recorder is None and not self.closed)

    def _can_script(self) -> bool:
        """Nothing to do but play the current prompt (already encoded) until it ends."""
        item = self.playout.current
        return (item is not None and item.live is None and not item.done.done()
                and item.pos < len(item.pcm) and self.payload_type in item.encoded
                and self.stateless and not self.wants_audio and not self._on_hold
                and not self._dtmf_queue and not self.dtmf_rx.holding
                and self._recorder is None and not self.closed)

    def _start_script(self) -> None:
        """The pacer sends the rest of the current prompt for us (module docstring)."""
        item = self.playout.current
        assert item is not None and self._pacer is not None
        self.sender.script = item.encoded[self.payload_type]
        self.sender.script_pos = item.pos
        if self._script_item is not item:
            item.done.add_done_callback(self._script_stopped)  # any stop path wakes us
        self._script_item = item
        self._quiet_mark = self.sender.packet_count
        self._pacer.quiet(self, self.sender)

    def _script_stopped(self, _done: object) -> None:
        self._wake()

    def _end_script(self) -> None:
        """Take the prompt back: its position is what the pacer sent of it."""
        item = self._script_item
        if item is None:
            return
        sent = self.sender.script_pos - item.pos
        if sent > 0:
            item.pos = self.sender.script_pos
            self.playout.frames_sent += sent // FRAME_SAMPLES
        self.sender.script = None
        self._script_item = None

    def on_script_end(self) -> None:
        """The pacer sent the prompt's last frame: play what follows from the next tick."""
        self._wake()

    def attach_pacer(self, pacer: Pacer | None) -> None:
        if pacer is None and self._pacer is not None:
            self._sync_quiet_count()
            self._end_script()
        self._pacer = pacer

    def on_quiet_tick(self, tick: int, now: float) -> None:
        """Housekeeping while the pacer sends our silence (every few ticks, not every one)."""
        if self.closed:
            return
        self.tick = tick
        self._sync_quiet_count()
        if (tick - self.housekeeping_phase) % MEDIA_CHECK_TICKS == 0:
            self._housekeeping(tick, now)

    def _sync_quiet_count(self) -> None:
        n = self.sender.packet_count
        if self._pacer is not None and self._pacer.is_quiet(self):
            self.stats.tx_packets += n - self._quiet_mark
        self._quiet_mark = n

    def _wake(self) -> None:
        """Something to do: on_tick runs again from the next tick."""
        self._end_script()
        pacer = self._pacer
        if pacer is not None and pacer.is_quiet(self):
            self._sync_quiet_count()
            self.tick = pacer.tick - 1  # the last tick run, as on_tick would have left it
            pacer.wake(self)

    def _receive_frame(self, now: float) -> None:
        """Release one 20 ms caller frame. Packets of any ptime are decoded into a sample
        FIFO, so 30 ms (or 10 ms) packetisation still yields exact 20 ms frames."""
        buf = self._rx_buf
        while len(buf) < FRAME_SAMPLES:
            frame = self.jitter.pop(now)
            if frame is None:
                break
            if frame.missing or frame.payload_type != self.payload_type:
                decoded = np.zeros(self._rx_frame_len, np.int16)  # lost, or an event's slot
            else:
                try:
                    decoded = self.decode(frame.payload)
                except ValueError:
                    decoded = np.zeros(self._rx_frame_len, np.int16)
                if len(decoded):
                    self._rx_frame_len = len(decoded)
            buf = np.concatenate([buf, decoded]) if len(buf) else decoded
        if len(buf) >= FRAME_SAMPLES:
            pcm, self._rx_buf = buf[:FRAME_SAMPLES], buf[FRAME_SAMPLES:]
        else:  # underrun: what we have, padded with silence
            pcm = np.concatenate([buf, SILENCE[len(buf):]]) if len(buf) else SILENCE
            self._rx_buf = SILENCE[:0]
        if self.inband is not None:
            for key in self.inband.feed(pcm):
                self._digit(key, "inband", 0)
        if self._subscribers:
            self._publish(AudioFrameEvent(pcm, now))

    def _send_frame(self, tick: int) -> None:
        if self._dtmf_queue:
            due, payload, marker = self._dtmf_queue[0]
            if due <= tick:
                self._dtmf_queue.pop(0)
                if marker:  # a new event: its timestamp is "now" on the audio timeline
                    self._dtmf_ts = self.sender.timestamp
                    self.stats.dtmf_tx += 1
                self._send(payload, self.te_pt or 101, marker, self._dtmf_ts)
                self._sent_instead_of_audio()
                return
            if not marker:  # between packets of one digit: no audio (RFC 4733 §2.5.1.3)
                self._sent_instead_of_audio()
                return
        nxt = self.playout.next_frame()
        if nxt is not None and nxt[1] == 0 and nxt[0].first_sent_at is None:
            nxt[0].first_sent_at = self._now()  # the answer's first audio packet, this tick
        if nxt is None:
            payload = self._silence_payload if self.stateless else self.encode(SILENCE)
            pcm = SILENCE
        elif not self.stateless:  # stateful codec (G.722): encode frame by frame
            item, start = nxt
            pcm = item.pcm[:FRAME_SAMPLES] if start < 0 else item.pcm[start:start + FRAME_SAMPLES]
            if len(pcm) < FRAME_SAMPLES:
                pcm = np.concatenate([pcm, SILENCE[len(pcm):]])
            payload = self.encode(pcm)
        else:
            item, start = nxt
            if start < 0:  # live frame: encode it now
                pcm = item.pcm[:FRAME_SAMPLES]
                if len(pcm) < FRAME_SAMPLES:
                    pcm = np.concatenate([pcm, SILENCE[len(pcm):]])
                self._send_audio(self.encode(pcm))
                if self.recorder is not None:
                    self.recorder.engine(pcm)
                return
            enc = item.encoded.get(self.payload_type)
            if enc is None:
                enc = item.encoded[self.payload_type] = self.encode(item.pcm)
            payload = enc[start:start + FRAME_SAMPLES]
            pcm = item.pcm[start:start + FRAME_SAMPLES]
            if len(payload) < FRAME_SAMPLES:
                payload += self._silence_payload[len(payload):]
                pcm = np.concatenate([pcm, SILENCE[len(pcm):]])
        self._send_audio(payload)
        if self.recorder is not None:
            self.recorder.engine(pcm)

    def _send_audio(self, payload: bytes) -> None:
        """The next audio packet: natively when bound, else through the transport."""
        if self._native:
            self.stats.tx_packets += 1
            if not self.sender.send(payload, FRAME_SAMPLES):
                log.debug("rtp send failed: errno %d", self.sender.last_errno)
        else:
            self._sendto(self.sender.next_bytes(payload, FRAME_SAMPLES))

    def _sent_instead_of_audio(self) -> None:
        self.sender.skip(FRAME_SAMPLES)  # audio time moves on; next audio packet is marked
        if self.recorder is not None:
            self.recorder.engine(SILENCE)

    def _send(self, payload: bytes, pt: int, marker: bool, timestamp: int) -> None:
        s = self.sender
        if self._native:
            self.stats.tx_packets += 1
            if not s.send_event(payload, pt, marker, timestamp):
                log.debug("rtp send failed: errno %d", s.last_errno)
            return
        data = _RTP_HEADER.pack(0x80, (0x80 if marker else 0) | pt, s.sequence, timestamp,
                                s.ssrc) + payload
        s.sequence = (s.sequence + 1) & 0xFFFF
        self._sendto(data)

    def _sendto(self, data: bytes) -> None:
        self.stats.tx_packets += 1
        try:
            self.transport.sendto(data, self.remote)
        except OSError as e:  # e.g. unreachable; media goes on
            log.debug("rtp send failed: %r", e)

    def _housekeeping(self, tick: int, now: float) -> None:
        """On this call's own phase of the shared tick (awake or quiet): the media timeout,
        and every ``RTCP_INTERVAL_TICKS`` the RTCP report. The caller tests the cheap
        ``MEDIA_CHECK_TICKS`` condition first, so a tick pays no call for it."""
        self._check_timeout(now)
        if (tick - self.housekeeping_phase) % RTCP_INTERVAL_TICKS == 0:
            self._send_rtcp()

    def _check_timeout(self, now: float) -> None:
        if (not self.timed_out and self.media_timeout_s > 0 and not self.on_hold
                and now - self.last_rx > self.media_timeout_s):
            self.timed_out = True
            if self.on_media_timeout is not None:
                self.on_media_timeout()

    def _send_rtcp(self) -> None:
        reports = []
        if self.rx_stats is not None:
            reports.append(self.rx_stats.report_block(self._now()))
        packets = self.sender.sender_report(self._wall(), "ivr-engine", reports)
        try:
            self.transport.sendto(rtcp.serialize(packets), (self.remote[0], self.remote[1] + 1))
        except OSError:
            pass

    # -- control -------------------------------------------------------------------------------

    def send_digits(self, digits: str, duration_s: float = 0.1) -> None:
        """Queue RFC 4733 packets for ``digits`` (needs a negotiated telephone-event)."""
        if self.te_pt is None:
            raise ValueError("the peer did not negotiate telephone-event")
        self._wake()
        tick = self.tick + 1
        at = max(tick, self._dtmf_queue[-1][0] + 5 if self._dtmf_queue else tick)
        for digit in digits:
            for step in digit_packets(digit, duration_s):
                self._dtmf_queue.append((at + round(step.offset_s / 0.02), step.payload,
                                         step.marker))
            at += round(duration_s / 0.02) + 5

    def update_remote(self, remote: tuple[str, int], codec: str | None = None,
                      allowed_sources: frozenset[str] | None = None) -> None:
        """After a re-INVITE: a new address or codec; the RTP source is learnt again."""
        self.remote = remote
        self.stats.latched = False
        if self.guard.allowed_hosts is not None:
            self.guard.relearn(allowed_sources or frozenset({remote[0]}))
        else:
            self.guard.relearn(None)
        if codec is not None and codec != self.codec and codec in CODECS:
            self._set_codec(codec)
            self.payload_type = STATIC_PAYLOAD_TYPES[codec]
            self.sender.payload_type = self.payload_type
            self._silence_payload = self.encode(SILENCE)
        self._bind_sender()
        self._wake()

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        self._wake()
        self.sender.unbind()  # the socket's number may belong to another call soon
        if self._lane is not None:
            self._lane.detach()  # a datagram still queued goes the Python way (and is dropped)
        self.playout.stop_all("hangup")
        try:
            self.transport.sendto(rtcp.serialize([rtcp.RtcpBye([self.sender.ssrc])]),
                                  (self.remote[0], self.remote[1] + 1))
        except (OSError, TypeError, AttributeError):
            pass
        self.transport.close()
