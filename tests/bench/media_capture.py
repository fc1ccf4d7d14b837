"""Outbound RTP figures from a loopback capture, for the media benchmark.

Why a capture and not the engine's own counters: the issue asks for what a caller receives.
``dumpcap`` timestamps packets in the kernel as they cross ``lo``, so a loaded engine cannot
flatter its own pacing, and the analysis runs after the load is gone.

Pure: a classic pcap (Ethernet link type, as ``dumpcap -P -i lo`` writes) in, per-stream
arrival times out. Faster than ``engine.rtp.pcap`` for millions of records because it reads
only the few header bytes it needs and never copies payloads.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from engine.rtp.pcap import LINKTYPE_ETHERNET, PcapError

TELEPHONE_EVENT_PT = 101
AUDIO_PTS = frozenset({0, 8})
_ETH_BYTES = 14


@dataclass
class Stream:
    """One (source port, destination port) RTP flow: arrival times and RFC 4733 events."""

    times: list[float] = field(default_factory=list)
    dtmf_events: set[int] = field(default_factory=set)  # RTP timestamps of marked events


@dataclass
class MediaFigures:
    streams: int
    packets: int
    pps_mean: float
    pps_min: float
    gap_p50_ms: float
    gap_p99_ms: float
    gap_max_ms: float
    call_seconds: float
    dtmf_events: int


def read_streams(path: Path) -> dict[tuple[int, int], Stream]:
    """Group the RTP packets of a pcap by (src port, dst port); RTCP and non-RTP are skipped."""
    data = Path(path).read_bytes()
    if len(data) < 24:
        raise PcapError(f"pcap too short: {len(data)} bytes")
    magic = data[:4]
    if magic not in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1"):
        raise PcapError(f"not a little-endian classic pcap (magic {magic.hex()})")
    scale = 1e-9 if magic == b"\x4d\x3c\xb2\xa1" else 1e-6
    link = struct.unpack_from("<I", data, 20)[0]
    if link != LINKTYPE_ETHERNET:
        raise PcapError(f"link type {link}: expected Ethernet (capture on lo)")
    rec = struct.Struct("<IIII")
    ports = struct.Struct("!HH")
    streams: dict[tuple[int, int], Stream] = {}
    pos, end = 24, len(data)
    while pos + 16 <= end:
        sec, frac, incl, _ = rec.unpack_from(data, pos)
        pos += 16
        f = pos
        pos += incl
        if pos > end:
            raise PcapError(f"record at offset {f - 16} runs past the end of the file")
        ip = f + _ETH_BYTES
        if incl < _ETH_BYTES + 20 + 8 + 12 or data[ip] >> 4 != 4 or data[ip + 9] != 17:
            continue
        udp = ip + (data[ip] & 0x0F) * 4
        rtp = udp + 8
        if rtp + 12 > f + incl or data[rtp] >> 6 != 2:
            continue
        pt = data[rtp + 1] & 0x7F
        if pt not in AUDIO_PTS and pt != TELEPHONE_EVENT_PT:
            continue  # RTCP (200-204 & 0x7f = 72-76) or an unknown payload type
        key = ports.unpack_from(data, udp)
        s = streams.get(key)
        if s is None:
            s = streams[key] = Stream()
        s.times.append(sec + frac * scale)
        if pt == TELEPHONE_EVENT_PT and data[rtp + 1] & 0x80:
            s.dtmf_events.add(struct.unpack_from("!I", data, rtp + 4)[0])
    return streams


def figures(streams: dict[tuple[int, int], Stream], min_packets: int = 10) -> MediaFigures:
    """Per-stream packet rate and the inter-packet gap distribution over every stream.

    Gaps are taken over each stream's whole life (ramp-up and hang-up included), so the p99
    is the worst a caller heard, not a steady-state best case."""
    gaps: list[np.ndarray] = []
    rates: list[float] = []
    packets = 0
    call_s = 0.0
    dtmf = 0
    for s in streams.values():
        packets += len(s.times)
        dtmf += len(s.dtmf_events)
        if len(s.times) < min_packets:
            continue
        t = np.sort(np.asarray(s.times))
        span = float(t[-1] - t[0])
        call_s += span
        rates.append((len(t) - 1) / span if span > 0 else 0.0)
        gaps.append(np.diff(t))
    if not gaps:
        return MediaFigures(len(streams), packets, 0.0, 0.0, float("nan"), float("nan"),
                            float("nan"), 0.0, dtmf)
    g = np.concatenate(gaps) * 1000.0
    p50, p99 = np.percentile(g, [50, 99])
    return MediaFigures(len(streams), packets, float(np.mean(rates)), float(np.min(rates)),
                        float(p50), float(p99), float(g.max()), call_s, dtmf)


def timeline(streams: dict[tuple[int, int], Stream], bucket_s: float = 5.0
             ) -> list[tuple[float, int, float, float]]:
    """(bucket start s, live streams, gap p99 ms, gap max ms) per ``bucket_s``: shows whether
    late packets come with call set-up, steady state or tear-down."""
    ends: list[np.ndarray] = []
    gaps: list[np.ndarray] = []
    for s in streams.values():
        if len(s.times) < 2:
            continue
        t = np.sort(np.asarray(s.times))
        ends.append(t[1:])
        gaps.append(np.diff(t))
    if not ends:
        return []
    at, g = np.concatenate(ends), np.concatenate(gaps) * 1000.0
    t0 = float(at.min())
    idx = ((at - t0) // bucket_s).astype(np.int64)
    out = []
    for b in range(int(idx.max()) + 1):
        sel = g[idx == b]
        if len(sel):
            live = len(sel) / (bucket_s * 50)  # ~50 gaps per stream-second
            out.append((b * bucket_s, round(live), float(np.percentile(sel, 99)),
                        float(sel.max())))
    return out


def steady_gap_p99_ms(streams: dict[tuple[int, int], Stream], n: int,
                      share: float = 0.95) -> float:
    """Gap p99 while at least ``share`` of the ``n`` calls are up (after ramp-up, before
    tear-down): separates the cost of carrying N calls from the cost of setting them up."""
    spans = [(min(s.times), max(s.times)) for s in streams.values() if len(s.times) >= 2]
    k = int(np.ceil(share * n))
    if len(spans) < k or k == 0:
        return float("nan")
    t_start = sorted(a for a, _ in spans)[k - 1]
    t_end = sorted(b for _, b in spans)[len(spans) - k]
    gaps = []
    for s in streams.values():
        if len(s.times) < 2:
            continue
        t = np.sort(np.asarray(s.times))
        d = np.diff(t)
        sel = (t[1:] >= t_start) & (t[1:] <= t_end)
        gaps.append(d[sel])
    g = np.concatenate(gaps) * 1000.0 if gaps else np.zeros(0)
    return float(np.percentile(g, 99)) if len(g) else float("nan")
