"""The media half of a call against real SIPp peers: DTMF in, prompts out, hold, recording.

Everything the engine sends is checked from the outside: a loopback RTP sink in the test (not
the engine's own counters) receives the engine's packets; payload type, tone frequency and
inter-packet gaps are read from those bytes.
"""

from __future__ import annotations

import asyncio
import wave
from pathlib import Path

import numpy as np
import pytest

from audio.g711 import alaw_decode, ulaw_decode
from audio.tones import tone
from engine.rtp.packet import parse as parse_rtp
from storage.tenancy import EVERY_TENANT
from tests.integration.engine_harness import (
    Seen,
    collecting_app,
    dominant_hz,
    open_sink,
    running_engine,
    sip_target,
)
from tests.netutil import free_port, free_port_block
from tests.sipp import dump_builtin, run_sipp_async

pytestmark = [pytest.mark.sipp, pytest.mark.xdist_group("sipp")]
FIXTURES = Path(__file__).parent.parent / "fixtures" / "sipp"


async def test_uac_pcap_digit_1_and_two_leg_recording(tmp_path: Path) -> None:
    """SIPp's built-in uac_pcap (PCMA audio, then RFC 2833 digit 1): exactly '1' is reported."""
    seen = Seen()
    scenario = dump_builtin("uac_pcap", tmp_path / "uac_pcap.xml")
    async with running_engine(tmp_path, lambda call: collecting_app(seen)) as engine:
        res = await run_sipp_async(sip_target(engine), scenario, local_port=free_port(),
                                   workdir=tmp_path,
                                   extra=["-m", "1", "-mp", str(free_port_block(4))],
                                   limit_s=40)
        await engine.wait_idle()
        assert engine.records is not None
        (rec,) = engine.records.list(tenants=EVERY_TENANT)
    assert res.successful == 1, res.stdout[-1500:]
    assert seen.digits == ["1"]
    assert rec.disposition == "answered" and rec.digits == "1"
    assert rec.hangup_side == "caller" and rec.codec == "PCMA"
    assert rec.recording_path is not None
    with wave.open(rec.recording_path) as w:
        assert w.getnchannels() == 2 and w.getframerate() == 8000
        frames = np.frombuffer(w.readframes(w.getnframes()), np.int16).reshape(-1, 2)
    caller, engine_leg = frames[:, 0], frames[:, 1]
    assert np.abs(caller).mean() > 100  # the pcap's speech is in the left channel
    assert np.abs(engine_leg).max() == 0  # the test app played nothing: right is silent
    assert rec.media["rx"] > 200 and rec.media["dtmf_rx"] == 1


async def test_every_rfc2833_digit_reported_once(tmp_path: Path) -> None:
    seen = Seen()
    async with running_engine(tmp_path, lambda call: collecting_app(seen)) as engine:
        res = await run_sipp_async(sip_target(engine), FIXTURES / "uac_dtmf_all.xml",
                                   local_port=free_port(), workdir=tmp_path,
                                   extra=["-m", "1", "-mp", str(free_port_block(4))], limit_s=40)
        await asyncio.wait_for(seen.done.wait(), 5)
    assert res.successful == 1, res.stdout[-1500:]
    assert "".join(seen.digits) == "0123456789*#"


@pytest.mark.parametrize(("pt", "codec"), [(0, "PCMU"), (8, "PCMA")])
async def test_engine_sends_the_prompt_paced(tmp_path: Path, pt: int, codec: str) -> None:
    """A 1 kHz prompt arrives at a loopback sink as that tone, in the negotiated codec, with
    consecutive sequence numbers, paced at 50 packets/s (measured at the sink)."""
    seen = Seen()
    sink, transport, sink_port = await open_sink()
    try:
        async with running_engine(tmp_path, lambda call: collecting_app(
                seen, prompt=tone(1000, 2.0))) as engine:
            res = await run_sipp_async(
                sip_target(engine), FIXTURES / "uac_sink.xml", local_port=free_port(),
                workdir=tmp_path,
                extra=["-m", "1", "-set", "sinkport", str(sink_port), "-set", "pt", str(pt),
                       "-set", "codec", codec, "-d", "3000"], limit_s=30)
    finally:
        transport.close()
    assert res.successful == 1, res.stdout[-1500:]
    rtp = [(t, parse_rtp(d)) for t, d in sink.packets if d[1] & 0x7F == pt]
    assert len(rtp) >= 120  # ~3 s at 50/s
    assert {p.payload_type for _, p in rtp} == {pt}
    decode = ulaw_decode if pt == 0 else alaw_decode
    pcm = np.concatenate([decode(p.payload) for _, p in rtp])
    frames = pcm[: len(pcm) // 160 * 160].reshape(-1, 160).astype(np.float64)
    loud = frames[np.sqrt((frames**2).mean(axis=1)) > 1000]
    assert 98 <= len(loud) <= 101  # the 2 s prompt, and silence after it
    assert abs(dominant_hz(loud[:50].ravel()) - 1000) < 10
    seqs = [p.sequence for _, p in rtp]
    assert all((b - a) % 65536 == 1 for a, b in zip(seqs, seqs[1:], strict=False))
    # Pacing: 50 packets/s. Gap percentiles under load are the benchmark's business
    # (tests/bench/bench_media.py), not a timed assertion here.
    gaps = np.diff([t for t, _ in rtp]) * 1000
    assert 19.0 <= np.median(gaps) <= 21.0


async def test_sip_info_dtmf(tmp_path: Path) -> None:
    seen = Seen()
    async with running_engine(tmp_path, lambda call: collecting_app(seen)) as engine:
        res = await run_sipp_async(sip_target(engine), FIXTURES / "uac_info_dtmf.xml",
                                   local_port=free_port(), workdir=tmp_path,
                                   extra=["-m", "1", "-mp", str(free_port_block(4))], limit_s=30)
        await asyncio.wait_for(seen.done.wait(), 5)
    assert res.successful == 1, res.stdout[-1500:] + res.errors
    assert seen.digits == ["5", "7", "#"]


async def test_hold_and_unhold_by_reinvite(tmp_path: Path) -> None:
    seen = Seen()
    async with running_engine(tmp_path, lambda call: collecting_app(seen)) as engine:
        res = await run_sipp_async(sip_target(engine), FIXTURES / "uac_hold.xml",
                                   local_port=free_port(), workdir=tmp_path,
                                   extra=["-m", "1", "-mp", str(free_port_block(4))], limit_s=30)
        await asyncio.wait_for(seen.done.wait(), 5)
    assert res.successful == 1, res.stdout[-1500:] + res.errors  # ereg checks the answers
    kinds = [e.kind for e in seen.calls[0].trace.entries]
    assert kinds.index("hold") < kinds.index("unhold")


async def test_media_timeout_hangs_up_with_reason(tmp_path: Path) -> None:
    """SIPp's plain uac sends no RTP: after media_timeout_s the engine hangs up."""
    seen = Seen()
    async with running_engine(tmp_path, lambda call: collecting_app(seen),
                              IVR_RTP__MEDIA_TIMEOUT_S="1.0") as engine:
        await run_sipp_async(sip_target(engine), "uac", local_port=free_port(),
                             workdir=tmp_path, extra=["-m", "1", "-d", "6000"], limit_s=30)
        await engine.wait_idle()
        assert engine.records is not None
        (rec,) = engine.records.list(tenants=EVERY_TENANT)
    assert rec.hangup_cause == "media_timeout" and rec.hangup_side == "system"
    assert rec.duration_s < 4


async def test_digit_survives_packet_loss(tmp_path: Path) -> None:
    """uac_pcap with SIPp dropping 5% of what it sends: the digit still arrives once (RFC
    4733's repeated packets), and the jitter buffer accounts the gaps."""
    seen = Seen()
    scenario = dump_builtin("uac_pcap", tmp_path / "uac_pcap.xml")
    async with running_engine(tmp_path, lambda call: collecting_app(seen)) as engine:
        res = await run_sipp_async(sip_target(engine), scenario, local_port=free_port(),
                                   workdir=tmp_path,
                                   extra=["-m", "1", "-mp", str(free_port_block(4)),
                                          "-lost", "5"], limit_s=60)
        await asyncio.wait_for(seen.done.wait(), 10)
    assert res.successful == 1, res.stdout[-1500:]
    assert seen.digits == ["1"]


async def test_record_a_message_from_the_caller(tmp_path: Path) -> None:
    """``Call.record``: a beep, then the caller's audio (uac_pcap's speech) for max_seconds."""
    results: list = []

    async def app(call) -> None:  # type: ignore[no-untyped-def]
        await call.answer()
        results.append(await call.record(3.0, beep=True))
        await asyncio.sleep(30)  # keep the line until SIPp hangs up

    scenario = dump_builtin("uac_pcap", tmp_path / "uac_pcap.xml")
    async with running_engine(tmp_path, lambda call: app) as engine:
        res = await run_sipp_async(sip_target(engine), scenario, local_port=free_port(),
                                   workdir=tmp_path,
                                   extra=["-m", "1", "-mp", str(free_port_block(4))],
                                   limit_s=40)
        await engine.wait_idle()
    assert res.successful == 1, res.stdout[-1500:]
    (rec,) = results
    assert rec.reason == "max_length" and 2.9 <= rec.duration_s <= 3.1
    with wave.open(str(rec.path)) as w:
        assert w.getnchannels() == 1 and w.getframerate() == 8000
        pcm = np.frombuffer(w.readframes(w.getnframes()), np.int16)
    assert np.abs(pcm).mean() > 100  # speech, not silence


async def test_keys_sent_both_as_rfc2833_and_info_count_once(tmp_path: Path) -> None:
    """linphone's default sends every key twice (RFC 2833 and SIP INFO): 1 2 3 4 5 must come
    out as 12345, not 1122334455, whichever of the two arrives first (issue 11, item 4)."""
    seen = Seen()
    async with running_engine(tmp_path, lambda call: collecting_app(seen)) as engine:
        res = await run_sipp_async(sip_target(engine), FIXTURES / "uac_dtmf_both.xml",
                                   local_port=free_port(), workdir=tmp_path,
                                   extra=["-m", "1", "-mp", str(free_port_block(4))], limit_s=40)
        await asyncio.wait_for(seen.done.wait(), 5)
        trace = seen.calls[0].trace.entries
    assert res.successful == 1, res.stdout[-1500:] + res.errors
    assert "".join(seen.digits) == "12345"
    ignored = [e.data for e in trace if e.kind == "dtmf.ignored"]
    assert len(ignored) == 5 and {e["digit"] for e in ignored} == set("12345")
