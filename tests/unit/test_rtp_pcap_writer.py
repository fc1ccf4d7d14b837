"""The SIPp caller pcap the Asterisk tests play: one RTP stream whose audio and keys the
engine's own RTP readers decode back (so a test failure is never the caller's fault)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from audio.g711 import ulaw_decode
from audio.tones import tone
from engine.rtp.dtmf import DtmfReceiver
from engine.rtp.packet import parse as parse_rtp
from engine.rtp.pcap import read_udp_payloads
from tests.rtp_pcap import caller_pcap


def test_speech_and_keys_decode_back(tmp_path: Path) -> None:
    speech = tone(440, 3.0)
    path = caller_pcap(tmp_path / "c.pcap", speech, ((1.0, "12#"),))
    packets = [parse_rtp(p) for _, _, _, p in read_udp_payloads(path)]
    seqs = [p.sequence for p in packets]
    assert seqs == list(range(seqs[0], seqs[0] + len(seqs)))  # one stream, no gaps
    assert len({p.ssrc for p in packets}) == 1
    rx = DtmfReceiver()
    keys = [d.digit for i, p in enumerate(packets) if p.payload_type == 101
            for d in rx.feed(p.payload, p.timestamp, i * 0.02)]
    assert keys == ["1", "2", "#"]
    audio = np.concatenate([ulaw_decode(p.payload) for p in packets if p.payload_type == 0])
    assert len(audio) > 2.0 * 8000 and np.abs(audio[:4000]).mean() > 1000
