"""``call.transfer(target)`` against real SIPp peers: REFER accepted, REFER refused -> bridge.

The engine places the call (``controller.originate``) so that it is the transferor; the SIPp
UAS plays the transferee. When the transferee accepts the REFER (202 + NOTIFY sipfrag 200) the
engine hangs up its leg; when it refuses, the engine calls the target itself and relays audio
both ways. What the target receives is read at the test's own RTP sink, not from engine counters.
"""

from __future__ import annotations

import asyncio
import struct
from pathlib import Path

import numpy as np
import pytest

from audio.g711 import alaw_decode, ulaw_decode
from core.call import TransferResult
from engine.rtp.packet import parse as parse_rtp
from engine.sipcall import SipCall
from storage.tenancy import EVERY_TENANT
from tests.audio_match import block_snrs
from tests.integration.engine_harness import open_sink, running_engine
from tests.netutil import free_port, free_port_block
from tests.sipp import SIPP_DATA, SippServer

pytestmark = [pytest.mark.sipp, pytest.mark.xdist_group("sipp")]
FIXTURES = Path(__file__).parent.parent / "fixtures" / "sipp"


def pcap_rtp_audio(path: Path) -> np.ndarray:
    """The PCMA audio of a libpcap capture of RTP over UDP/IPv4/Ethernet (SIPp's g711a.pcap)."""
    data = path.read_bytes()
    linktype = struct.unpack_from("<I", data, 20)[0]
    assert linktype == 1, f"{path}: link type {linktype}, expected Ethernet"
    pos, chunks = 24, []
    while pos + 16 <= len(data):
        incl = struct.unpack_from("<IIII", data, pos)[2]
        frame = data[pos + 16: pos + 16 + incl]
        pos += 16 + incl
        ihl = (frame[14] & 0x0F) * 4
        pkt = parse_rtp(frame[14 + ihl + 8:])
        if pkt.payload_type == 8:
            chunks.append(alaw_decode(pkt.payload))
    return np.concatenate(chunks)


async def test_refer_accepted_is_a_blind_transfer(tmp_path: Path) -> None:
    """202 to the REFER and a NOTIFY reporting 200: the engine reports "transferred" and sends
    BYE; SIPp's ereg (check_it) fails the call unless Refer-To names the target."""
    results: list[TransferResult] = []
    calls: list[SipCall] = []
    peer_port, target = free_port(), f"sip:agent@127.0.0.1:{free_port()}"

    async def app(call: SipCall) -> None:
        calls.append(call)
        results.append(await call.transfer(target))

    peer_dir = tmp_path / "peer"
    peer_dir.mkdir()
    async with running_engine(tmp_path, lambda c: app) as engine, SippServer(
            FIXTURES / "uas_refer_accept.xml", local_port=peer_port, workdir=peer_dir,
            extra=["-m", "1", "-mp", str(free_port_block(4)), "-set", "notify", "200 OK"]) as peer:
        assert engine.controller is not None
        rec = await asyncio.wait_for(
            engine.controller.originate(f"sip:svc@127.0.0.1:{peer_port}", app), 20)
        assert peer.proc is not None
        await asyncio.wait_for(peer.proc.wait(), 10)
    res = peer.result()
    assert res.successful == 1, res.errors
    assert results == [TransferResult("transferred", "REFER accepted (202), NOTIFY 200")]
    assert rec.disposition == "answered" and rec.hangup_cause == "transferred"
    kinds = [e.kind for e in calls[0].trace.entries]
    # the NOTIFY came before the engine hung up: the transfer's outcome was known
    assert kinds.index("transfer.start") < kinds.index("notify") < kinds.index("hangup")


async def test_refer_refused_bridges_audio_and_hangs_up_both(tmp_path: Path) -> None:
    """603 to the REFER: the engine calls the target itself and relays leg 1's speech (PCMA from
    g711a.pcap) and digit to leg 2 (PCMU, at the test's sink); leg 2 hangs up and leg 1 gets a
    BYE."""
    results: list[TransferResult] = []
    peer_port, agent_port = free_port(), free_port()
    target = f"sip:agent@127.0.0.1:{agent_port}"
    sink, sink_transport, sink_port = await open_sink()

    async def app(call: SipCall) -> None:
        results.append(await call.transfer(target))

    dirs = [tmp_path / "peer", tmp_path / "agent"]
    for d in dirs:
        d.mkdir()
    try:
        async with running_engine(tmp_path, lambda c: app) as engine, SippServer(
                FIXTURES / "uas_refer_refuse.xml", local_port=peer_port, workdir=dirs[0],
                extra=["-m", "1", "-mp", str(free_port_block(4))]) as peer, SippServer(
                FIXTURES / "uas_sink_bye.xml", local_port=agent_port, workdir=dirs[1],
                extra=["-m", "1", "-d", "4000", "-set", "sinkport", str(sink_port)]) as agent:
            assert engine.controller is not None
            rec = await asyncio.wait_for(
                engine.controller.originate(f"sip:svc@127.0.0.1:{peer_port}", app), 30)
            assert peer.proc is not None and agent.proc is not None
            await asyncio.wait_for(asyncio.gather(peer.proc.wait(), agent.proc.wait()), 10)
            await engine.wait_idle()
            assert engine.records is not None
            records = engine.records.list(tenants=EVERY_TENANT)
    finally:
        sink_transport.close()
    assert peer.result().successful == 1, peer.result().errors  # it got the engine's BYE
    assert agent.result().successful == 1, agent.result().errors
    assert len(results) == 1 and results[0].status == "bridged", results
    assert rec.disposition == "answered" and rec.hangup_cause == "bridge_end"
    second = [r for r in records if r.to_number == target]
    assert len(second) == 1 and second[0].hangup_side == "callee"
    rtp = [parse_rtp(d) for _, d in sink.packets if d[1] & 0x7F == 0]
    assert len(rtp) > 150  # ~4 s of the bridge at 50 packets/s
    got = np.concatenate([ulaw_decode(p.payload) for p in rtp])
    assert np.abs(got).mean() > 100  # speech arrived; the app itself played nothing
    speech = pcap_rtp_audio(SIPP_DATA / "g711a.pcap")[: 2 * 8000]  # before the digit
    # the bridge relays leg 1's audio through its jitter buffer: compared block by block, so a
    # playout stall or drop on a loaded box spoils one block, not the whole comparison
    snrs, _ = block_snrs(speech, got)
    print(f"bridge: leg1 speech -> leg2 sink: median block SNR {np.median(snrs):.1f} dB, "
          f"{np.mean(snrs > 20):.0%} of {len(snrs)} speech blocks over 20 dB")
    assert len(snrs) >= 8 and np.median(snrs) > 25  # A-law -> PCM -> mu-law keeps the waveform
    assert np.mean(snrs > 20) >= 0.8
    wrong, _ = block_snrs(speech[::-1].copy(), got)
    assert np.median(wrong) < 3  # the measure can fail: reversed speech does not match
    # leg 1's RFC 2833 digit 1 is relayed to leg 2 as telephone-event packets (PT 101, event 1)
    events = {parse_rtp(d).payload[0] for _, d in sink.packets if d[1] & 0x7F == 101}
    assert events == {1}
    assert second[0].media["dtmf_tx"] == 1


async def test_refer_accepted_but_transfer_failed_bridges(tmp_path: Path) -> None:
    """202, then a NOTIFY reporting 486: the transferee could not reach the target, so the
    engine keeps its leg and bridges to the target itself (RFC 5589 §6: the transferor recovers)."""
    results: list[TransferResult] = []
    peer_port, agent_port = free_port(), free_port()
    target = f"sip:agent@127.0.0.1:{agent_port}"
    sink, sink_transport, sink_port = await open_sink()

    async def app(call: SipCall) -> None:
        results.append(await call.transfer(target))

    dirs = [tmp_path / "peer", tmp_path / "agent"]
    for d in dirs:
        d.mkdir()
    try:
        async with running_engine(tmp_path, lambda c: app) as engine, SippServer(
                FIXTURES / "uas_refer_accept.xml", local_port=peer_port, workdir=dirs[0],
                extra=["-m", "1", "-mp", str(free_port_block(4)), "-set", "notify",
                       "486 Busy Here"]) as peer, SippServer(
                FIXTURES / "uas_sink_bye.xml", local_port=agent_port, workdir=dirs[1],
                extra=["-m", "1", "-d", "1000", "-set", "sinkport", str(sink_port)]) as agent:
            assert engine.controller is not None
            await asyncio.wait_for(
                engine.controller.originate(f"sip:svc@127.0.0.1:{peer_port}", app), 20)
            assert peer.proc is not None and agent.proc is not None
            await asyncio.wait_for(asyncio.gather(peer.proc.wait(), agent.proc.wait()), 10)
    finally:
        sink_transport.close()
    assert peer.result().successful == 1, peer.result().errors
    assert agent.result().successful == 1, agent.result().errors
    assert len(results) == 1 and results[0].status == "bridged", results
    assert len(sink.packets) > 30  # the bridge's leg 2 carried media


async def test_bridge_first_leg_hangs_up_second_gets_bye(tmp_path: Path) -> None:
    """The other direction: the party that refused the REFER hangs up mid-bridge; the engine
    sends BYE to the target (SIPp's built-in uas succeeds only when that BYE arrives)."""
    results: list[TransferResult] = []
    peer_port, agent_port = free_port(), free_port()
    target = f"sip:agent@127.0.0.1:{agent_port}"

    async def app(call: SipCall) -> None:
        results.append(await call.transfer(target))

    dirs = [tmp_path / "peer", tmp_path / "agent"]
    for d in dirs:
        d.mkdir()
    async with running_engine(tmp_path, lambda c: app) as engine, SippServer(
            FIXTURES / "uas_refer_refuse_bye.xml", local_port=peer_port, workdir=dirs[0],
            extra=["-m", "1", "-d", "1500", "-mp", str(free_port_block(4))]) as peer, SippServer(
            "uas", local_port=agent_port, workdir=dirs[1],
            extra=["-m", "1", "-mp", str(free_port_block(4))]) as agent:
        assert engine.controller is not None
        rec = await asyncio.wait_for(
            engine.controller.originate(f"sip:svc@127.0.0.1:{peer_port}", app), 20)
        assert peer.proc is not None and agent.proc is not None
        await asyncio.wait_for(asyncio.gather(peer.proc.wait(), agent.proc.wait()), 10)
        await engine.wait_idle()
        assert engine.records is not None
        records = engine.records.list(tenants=EVERY_TENANT)
    assert peer.result().successful == 1, peer.result().errors
    assert agent.result().successful == 1, agent.result().errors  # it got the engine's BYE
    assert len(results) == 1 and results[0].status == "bridged", results
    assert rec.hangup_side == "callee"  # leg 1 (the SIPp peer) ended it
    (second,) = [r for r in records if r.to_number == target]
    assert second.hangup_cause == "bridge_end" and second.hangup_side == "engine"
