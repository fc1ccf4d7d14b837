"""Write what a SIPp caller plays (``play_pcap_audio``): one PCMU RTP stream as a pcap file.

SIPp's shipped pcaps are one recording and one digit each, with unrelated SSRCs and timestamps.
A caller that speaks a real word and then presses keys is one stream here: 20 ms PCMU packets
from 8 kHz PCM, with RFC 4733 events (payload type 101) taking the audio's slots while a key is
down (``engine.rtp.dtmf.digit_packets``), one SSRC, continuous sequence numbers.
"""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np

from audio.g711 import ulaw_encode
from audio.pcm import FRAME_SAMPLES, Pcm
from engine.rtp.dtmf import digit_packets

PCAP_HEADER = struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1)  # Ethernet
TELEPHONE_EVENT_PT = 101
DIGIT_S = 0.12
DIGIT_GAP_S = 0.3


def _frame(payload: bytes, src_port: int, dst_port: int) -> bytes:
    udp = struct.pack("!HHHH", src_port, dst_port, 8 + len(payload), 0) + payload
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), 0, 0, 64, 17, 0,
                     bytes([127, 0, 0, 1]), bytes([127, 0, 0, 1])) + udp
    return b"\x00" * 12 + b"\x08\x00" + ip


def caller_pcap(path: Path, speech: Pcm, digits: tuple[tuple[float, str], ...] = (),
                ssrc: int = 0x1234ABCD) -> Path:
    """``speech`` (8 kHz PCM) as RTP, with each ``(at_s, keys)`` pressed at ``at_s`` seconds
    (keys one after another, ``DIGIT_GAP_S`` apart). Returns ``path``."""
    n_frames = (len(speech) + FRAME_SAMPLES - 1) // FRAME_SAMPLES
    pcm = np.zeros(n_frames * FRAME_SAMPLES, np.int16)
    pcm[:len(speech)] = speech
    events: dict[int, list[tuple[bytes, bool, int]]] = {}  # frame -> (payload, marker, ts)
    for at_s, keys in digits:
        start = at_s
        for key in keys:
            first = int(round(start / 0.02))
            for step in digit_packets(key, DIGIT_S):
                events.setdefault(first + int(round(step.offset_s / 0.02)), []).append(
                    (step.payload, step.marker, first * FRAME_SAMPLES))
            start += DIGIT_S + DIGIT_GAP_S
    last = max([n_frames - 1, *events])
    seq, out = 1000, [PCAP_HEADER]
    for i in range(last + 1):
        t = i * 0.02
        sec, usec = int(t), int(round((t - int(t)) * 1e6))
        if i in events:
            packets = [(TELEPHONE_EVENT_PT, payload, marker, ts)
                       for payload, marker, ts in events[i]]
        else:
            chunk = pcm[i * FRAME_SAMPLES:(i + 1) * FRAME_SAMPLES]
            if len(chunk) < FRAME_SAMPLES:
                chunk = np.zeros(FRAME_SAMPLES, np.int16)
            packets = [(0, ulaw_encode(chunk), False, i * FRAME_SAMPLES)]
        for pt, payload, marker, ts in packets:
            rtp = struct.pack("!BBHII", 0x80, (0x80 if marker else 0) | pt, seq & 0xFFFF,
                              ts & 0xFFFFFFFF, ssrc) + payload
            seq += 1
            frame = _frame(rtp, 6000, 6002)
            out.append(struct.pack("<IIII", sec, usec, len(frame), len(frame)) + frame)
    path.write_bytes(b"".join(out))
    return path
