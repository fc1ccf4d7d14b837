"""Per-stream RTP state: the sender's counters and the receiver's RFC 3550 statistics.

Pure: the asyncio session calls these with packets and ``now``. The receiver statistics follow
RFC 3550 Appendix A.1 (sequence validation with probation and wraparound), A.3 (loss) and A.8
(interarrival jitter) so the RR/SR we send carry numbers a peer's monitoring can trust.
"""

from __future__ import annotations

import importlib
import os
import secrets
import struct
from dataclasses import dataclass
from typing import TYPE_CHECKING

from engine.rtp.packet import RtpPacket
from engine.rtp.rtcp import (
    SDES_CNAME,
    ReportBlock,
    RtcpPacket,
    RtcpReceiverReport,
    RtcpSdes,
    RtcpSenderReport,
)

_RTP_HEADER = struct.Struct("!BBHII")  # V=2, no padding/extension/CSRC: what we send
NTP_EPOCH_OFFSET_S = 2208988800  # 1900-01-01 to 1970-01-01
MAX_DROPOUT = 3000
MAX_MISORDER = 100
MIN_SEQUENTIAL = 2
RTP_SEQ_MOD = 1 << 16


def ntp_from_unix(unix_s: float) -> int:
    """64-bit NTP timestamp for a Unix time (for SR; wall clock is passed in, never read)."""
    secs = int(unix_s) + NTP_EPOCH_OFFSET_S
    frac = int((unix_s - int(unix_s)) * (1 << 32)) & 0xFFFFFFFF
    return (secs & 0xFFFFFFFF) << 32 | frac


def rtt_from_report(block: ReportBlock, unix_now: float) -> float | None:
    """Round-trip time (s) from a report block about our stream (RFC 3550 §6.4.1: A - LSR -
    DLSR, in 1/65536 s). ``None`` when the peer has not received an SR from us yet."""
    if block.lsr == 0:
        return None
    a = (ntp_from_unix(unix_now) >> 16) & 0xFFFFFFFF
    rtt = (a - block.lsr - block.dlsr) & 0xFFFFFFFF
    return None if rtt & 0x80000000 else rtt / 65536.0


NATIVE_SWITCH = "IVR_RTP_NATIVE"  # "0": the Python send path even when the C one is built


class PySenderBase:
    """The counters :class:`RtpSender` keeps, in Python: what ``engine/rtp/_rtpsend.c``'s
    ``SenderBase`` holds when that is built. This one has no socket of its own (``bind`` says
    False), so a media session sends through its asyncio transport instead."""

    payload_type: int
    ssrc: int
    sequence: int
    timestamp: int
    last_sent_timestamp: int
    _talkspurt: bool
    packet_count: int
    octet_count: int
    silence: bytes | None = None  # what a quiet tick sends (native only)
    script: bytes | None = None  # a prompt a quiet tick sends before silence (native only)
    script_pos = 0
    sent = 0
    send_errors = 0
    last_errno = 0
    fd = -1

    def bind(self, fd: int, host: str, port: int) -> bool:
        return False

    def unbind(self) -> None:
        return None

    def send(self, payload: bytes, samples: int) -> bool:
        raise RuntimeError("the Python sender has no socket; bind() said so")

    def send_event(self, payload: bytes, payload_type: int, marker: bool, timestamp: int) -> bool:
        raise RuntimeError("the Python sender has no socket; bind() said so")


def _native_base() -> type[PySenderBase] | None:
    if os.environ.get(NATIVE_SWITCH, "1") == "0":
        return None
    try:
        base: type[PySenderBase] = importlib.import_module("engine.rtp._rtpsend").SenderBase
        return base
    except ImportError:  # not built (scripts/bootstrap.sh builds it): the Python path
        return None


if TYPE_CHECKING:
    _SenderBase = PySenderBase
else:
    _SenderBase = _native_base() or PySenderBase
NATIVE_SEND = _SenderBase is not PySenderBase


class RtpSender(_SenderBase):
    """Sender counters: random SSRC/seq/timestamp start (RFC 3550 §5.1), wrap, talkspurt marker.

    The timestamp always advances by the samples of each 20 ms slot, sent or not, so after a
    silence gap the receiver sees the true elapsed time; the first packet after a gap gets M=1.
    With the C base (``NATIVE_SEND``) the counters live in C and ``bind``/``send`` put the
    packet on the wire in the same call; the arithmetic is the same either way.
    """

    def __init__(self, payload_type: int, clock_rate: int = 8000,
                 ssrc: int | None = None, sequence: int | None = None,
                 timestamp: int | None = None) -> None:
        super().__init__()
        self.payload_type = payload_type
        self.clock_rate = clock_rate
        self.ssrc = secrets.randbits(32) if ssrc is None else ssrc
        self.sequence = secrets.randbits(16) if sequence is None else sequence
        self.timestamp = secrets.randbits(32) if timestamp is None else timestamp
        self.packet_count = 0
        self.octet_count = 0
        self._talkspurt = True  # the very first packet carries the marker
        self.last_sent_timestamp = self.timestamp

    def next_packet(self, payload: bytes, samples: int, payload_type: int | None = None,
                    marker: bool | None = None) -> RtpPacket:
        """Build the next packet for ``payload`` covering ``samples`` samples, then advance."""
        m = self._talkspurt if marker is None else marker
        pkt = RtpPacket(
            payload_type=self.payload_type if payload_type is None else payload_type,
            sequence=self.sequence, timestamp=self.timestamp, ssrc=self.ssrc,
            payload=payload, marker=m,
        )
        self._advance(len(payload), samples)
        return pkt

    def next_bytes(self, payload: bytes, samples: int, payload_type: int | None = None) -> bytes:
        """:meth:`next_packet` serialised, without building the packet object: the send path
        of every call runs this 50 times a second (a plain 12-byte header, no CSRC/extension).
        """
        pt = self.payload_type if payload_type is None else payload_type
        data = _RTP_HEADER.pack(0x80, pt | (0x80 if self._talkspurt else 0),
                                self.sequence, self.timestamp, self.ssrc) + payload
        self._advance(len(payload), samples)
        return data

    def _advance(self, payload_bytes: int, samples: int) -> None:
        """After a packet went out: next sequence and timestamp, counters for the SR."""
        self._talkspurt = False
        self.last_sent_timestamp = self.timestamp
        self.sequence = (self.sequence + 1) & 0xFFFF
        self.timestamp = (self.timestamp + samples) & 0xFFFFFFFF
        self.packet_count += 1
        self.octet_count += payload_bytes

    def skip(self, samples: int) -> None:
        """A slot with nothing sent (silence suppression): time moves, next packet is marked."""
        self.timestamp = (self.timestamp + samples) & 0xFFFFFFFF
        self._talkspurt = True

    def sender_report(self, unix_now: float, cname: str,
                      reports: list[ReportBlock] | None = None) -> list[RtcpPacket]:
        """Compound SR + SDES(CNAME) for this sender."""
        return [
            RtcpSenderReport(self.ssrc, ntp_from_unix(unix_now), self.last_sent_timestamp,
                             self.packet_count, self.octet_count, reports or []),
            RtcpSdes([(self.ssrc, [(SDES_CNAME, cname.encode())])]),
        ]


@dataclass(slots=True)
class _LastSr:
    middle: int
    arrival: float


class RtpReceiverStats:
    """RFC 3550 A.1 source validation + A.3 loss + A.8 jitter for one remote SSRC."""

    def __init__(self, ssrc: int, clock_rate: int = 8000) -> None:
        self.ssrc = ssrc
        self.clock_rate = clock_rate
        self.max_seq = 0
        self.cycles = 0
        self.base_seq = 0
        self.bad_seq = RTP_SEQ_MOD + 1
        self.probation = MIN_SEQUENTIAL
        self.received = 0
        self.expected_prior = 0
        self.received_prior = 0
        self.jitter = 0.0  # timestamp units
        self._transit: int | None = None
        self._last_sr: _LastSr | None = None
        self._initialised = False

    def _init_seq(self, seq: int) -> None:
        self.base_seq = seq
        self.max_seq = seq
        self.bad_seq = RTP_SEQ_MOD + 1
        self.cycles = 0
        self.received = 0
        self.received_prior = 0
        self.expected_prior = 0

    def update(self, pkt: RtpPacket, arrival: float) -> bool:
        """Account one packet; False if A.1 says it is not (yet) valid (probation, big jump)."""
        return self.update_fields(pkt.sequence, pkt.timestamp, arrival)

    def update_fields(self, seq: int, timestamp: int, arrival: float) -> bool:
        """:meth:`update` from the header fields alone (the receive path's fast lane parses
        no packet object)."""
        if not self._initialised:
            self._init_seq(seq)
            self.max_seq = (seq - 1) & 0xFFFF
            self._initialised = True
        if self.probation:
            if seq == (self.max_seq + 1) & 0xFFFF:
                self.probation -= 1
                self.max_seq = seq
                if self.probation == 0:
                    self._init_seq(seq)
                    self.received += 1
                    self._jitter(timestamp, arrival)
                    return True
            else:
                self.probation = MIN_SEQUENTIAL - 1
                self.max_seq = seq
            return False
        udelta = (seq - self.max_seq) & 0xFFFF
        if udelta < MAX_DROPOUT:
            if seq < self.max_seq:
                self.cycles += RTP_SEQ_MOD
            self.max_seq = seq
        elif udelta <= RTP_SEQ_MOD - MAX_MISORDER:
            if seq == self.bad_seq:
                self._init_seq(seq)  # two sequential packets: the source restarted
                self._transit = None
            else:
                self.bad_seq = (seq + 1) & 0xFFFF
                return False
        # else: duplicate or reordered packet, counted below
        self.received += 1
        self._jitter(timestamp, arrival)
        return True

    def _jitter(self, timestamp: int, arrival: float) -> None:
        arrival_ts = int(arrival * self.clock_rate)
        transit = (arrival_ts - timestamp) & 0xFFFFFFFF
        if self._transit is not None:
            d = (transit - self._transit) & 0xFFFFFFFF
            if d & 0x80000000:
                d -= 1 << 32
            self.jitter += (abs(d) - self.jitter) / 16.0
        self._transit = transit

    @property
    def extended_max(self) -> int:
        return self.cycles + self.max_seq

    @property
    def expected(self) -> int:
        return self.extended_max - self.base_seq + 1

    @property
    def cumulative_lost(self) -> int:
        """Expected minus received; negative with duplicates, clamped to 24-bit signed."""
        lost = self.expected - self.received
        return max(-0x800000, min(0x7FFFFF, lost))

    def on_sender_report(self, sr: RtcpSenderReport, arrival: float) -> None:
        """Remember the last SR for LSR/DLSR in our next report block."""
        self._last_sr = _LastSr((sr.ntp_timestamp >> 16) & 0xFFFFFFFF, arrival)

    def report_block(self, now: float) -> ReportBlock:
        """A.3 report block; resets the interval counters for the fraction-lost figure."""
        expected = self.expected
        exp_int = expected - self.expected_prior
        self.expected_prior = expected
        rec_int = self.received - self.received_prior
        self.received_prior = self.received
        lost_int = exp_int - rec_int
        fraction = 0 if exp_int == 0 or lost_int <= 0 else (lost_int << 8) // exp_int
        lsr = dlsr = 0
        if self._last_sr is not None:
            lsr = self._last_sr.middle
            dlsr = int((now - self._last_sr.arrival) * 65536)
        return ReportBlock(self.ssrc, min(fraction, 255), self.cumulative_lost,
                           self.extended_max & 0xFFFFFFFF, int(self.jitter), lsr, dlsr)


def receiver_report(own_ssrc: int, cname: str, sources: list[RtpReceiverStats],
                    now: float) -> list[RtcpPacket]:
    """Compound RR + SDES(CNAME) for a stream that only receives (or before it sends)."""
    return [
        RtcpReceiverReport(own_ssrc, [s.report_block(now) for s in sources[:31]]),
        RtcpSdes([(own_ssrc, [(SDES_CNAME, cname.encode())])]),
    ]
