"""A real softphone (baresip) calls the engine: its microphone is a WAV file (``aufile``).

(a) espeak-ng speech: the engine's two-leg recording (caller left) matches the WAV once aligned
by cross-correlation, with an SNR close to what G.711 itself allows; (b) a WAV of in-band DTMF
tones with noise, twist and short gaps: the engine (``IVR_RTP__INBAND_DTMF=on``) reports exactly
the digits; (c) keys typed on baresip's console go out as RFC 4733 events and arrive once each;
(d) the engine calls baresip and transfers it with REFER: baresip calls the target (a SIPp UAS)
and reports the outcome in NOTIFYs, and the engine leaves the call.
"""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import wave
from pathlib import Path

import numpy as np
import pytest

from audio.tones import add_noise, dtmf_sequence, silence
from audio.wavio import load_wav, write_wav
from core.call import TransferResult
from engine.sipcall import SipCall
from storage.tenancy import EVERY_TENANT
from tests.audio_match import block_snrs
from tests.baresip import Baresip
from tests.integration.engine_harness import Seen, collecting_app, running_engine, sip_target
from tests.netutil import free_port, free_port_block, wait_until
from tests.sipp import SippServer

pytestmark = [pytest.mark.sipp, pytest.mark.xdist_group("sipp"), pytest.mark.exclusive_cpu]

# Measured here: 37.3 dB on loopback (the G.711 mu-law quantisation floor for this speech).
# One lost or misplaced 20 ms packet of speech costs ~12 dB; a misalignment costs everything.
MIN_SNR_DB = 20.0
SPEECH = ("Thank you for calling. This is a test of the interactive voice response engine. "
          "Please record this sentence: one two three four five.")
DTMF_KEYS = "1123456789*0#"


def speech_wav(dest: Path) -> Path:
    """espeak-ng speech, converted by sox to 8 kHz mono s16 (what aufile plays as-is)."""
    raw = dest.with_suffix(".22k.wav")
    subprocess.run(["espeak-ng", "-w", str(raw), SPEECH], check=True, capture_output=True)
    subprocess.run(["sox", str(raw), "-r", "8000", "-c", "1", "-b", "16", str(dest)],
                   check=True, capture_output=True)
    return dest


async def test_speech_recording_matches_the_microphone_wav(tmp_path: Path) -> None:
    if shutil.which("espeak-ng") is None or shutil.which("sox") is None:
        pytest.fail("espeak-ng and sox are needed (scripts/apt-packages.txt)")
    wav = speech_wav(tmp_path / "speech.wav")
    source = load_wav(wav)
    seen = Seen()
    async with running_engine(tmp_path, lambda c: collecting_app(seen),
                              IVR_RTP__RECORD_CALLS="true") as engine:
        async with Baresip(tmp_path / "baresip", wav, dial=f"sip:ivr@{sip_target(engine)}",
                           quit_after_s=25) as phone:
            await asyncio.wait_for(seen.done.wait(), 20)  # baresip hangs up at end of file
            await phone.quit()
        await engine.wait_idle()
        assert engine.records is not None
        (rec,) = engine.records.list(tenants=EVERY_TENANT)
    assert rec.disposition == "answered" and rec.hangup_side == "caller", phone.log()[-2000:]
    assert rec.codec == "PCMU" and rec.recording_path is not None
    with wave.open(rec.recording_path) as w:
        assert w.getnchannels() == 2 and w.getframerate() == 8000
        frames = np.frombuffer(w.readframes(w.getnframes()), np.int16).reshape(-1, 2)
    snrs, lags = block_snrs(source, frames[:, 0])
    shifts = sum(1 for a, b in zip(lags, lags[1:], strict=False) if a != b)
    print(f"baresip speech -> engine recording: median block SNR {np.median(snrs):.1f} dB, "
          f"worst {snrs.min():.1f} dB over {len(snrs)} speech blocks of 100 ms; lag "
          f"{lags[0] / 8:.1f} ms, {shifts} shifts; jitter {rec.media['jitter']}")
    assert len(snrs) > 40  # the whole utterance was compared
    assert np.median(snrs) > MIN_SNR_DB + 10
    assert np.mean(snrs > MIN_SNR_DB) >= 0.85  # a shift spoils only the block it falls in
    assert np.abs(frames[:, 1]).max() == 0  # the app played nothing: the right leg is silent
    wrong, _ = block_snrs(source[::-1].copy(), frames[:, 0])
    assert np.median(wrong) < 3  # the measure can fail: reversed speech does not match


async def test_inband_dtmf_through_baresip(tmp_path: Path) -> None:
    """40-60 ms tones, 50 ms gaps, 5 dB twist, 18 dB SNR, a repeated key: the exact sequence."""
    tones = dtmf_sequence(DTMF_KEYS, on_s=0.05, off_s=0.05, dbfs=-16.0, twist_db=5.0,
                          lead_s=0.5)
    pcm = add_noise(np.concatenate([tones, silence(0.5)]), 18.0, seed=3)
    wav = tmp_path / "dtmf.wav"
    write_wav(wav, pcm)
    seen = Seen()
    async with running_engine(tmp_path, lambda c: collecting_app(seen),
                              IVR_RTP__INBAND_DTMF="on", IVR_RTP__RECORD_CALLS="false") as engine:
        async with Baresip(tmp_path / "baresip", wav, dial=f"sip:ivr@{sip_target(engine)}",
                           quit_after_s=20) as phone:
            await asyncio.wait_for(seen.done.wait(), 15)
            await phone.quit()
        await engine.wait_idle()
        assert engine.records is not None
        (rec,) = engine.records.list(tenants=EVERY_TENANT)
    assert "".join(seen.digits) == DTMF_KEYS, phone.log()[-2000:]
    sources = {e.data.get("source") for e in seen.calls[0].trace.entries if e.kind == "dtmf"}
    assert sources == {"inband"}
    assert rec.digits == DTMF_KEYS


async def test_rfc4733_keys_from_baresip_console(tmp_path: Path) -> None:
    """Keys sent to baresip's UDP console leave it as RFC 4733 events: each reported once."""
    wav = tmp_path / "quiet.wav"
    write_wav(wav, silence(8.0))
    seen = Seen()
    async with running_engine(tmp_path, lambda c: collecting_app(seen),
                              IVR_RTP__INBAND_DTMF="off", IVR_RTP__RECORD_CALLS="false"
                              ) as engine, Baresip(tmp_path / "baresip", wav,
                                                   dial=f"sip:ivr@{sip_target(engine)}",
                                                   quit_after_s=20) as phone:
        def audio_flows() -> bool:  # a real peer's packet counter has no event: poll it
            phone.check_alive()
            return bool(seen.calls and seen.calls[0].media.stats.rx_packets > 10)

        await wait_until(audio_flows, 15, "baresip's audio reaching the engine")
        for key in "4#7":
            phone.send(key)
            await asyncio.sleep(0.15)  # held down for 150 ms
            phone.release()
            await asyncio.sleep(0.25)
        await asyncio.sleep(0.5)
        phone.send("/hangup")
        await asyncio.wait_for(seen.done.wait(), 10)
        await phone.quit()
    assert seen.digits == ["4", "#", "7"], phone.log()[-2000:]
    sources = {e.data.get("source") for e in seen.calls[0].trace.entries if e.kind == "dtmf"}
    assert sources == {"rfc4733"}


async def test_baresip_accepts_refer_and_calls_the_target(tmp_path: Path) -> None:
    wav = tmp_path / "quiet.wav"
    write_wav(wav, silence(10.0))
    agent_port = free_port()
    target = f"sip:agent@127.0.0.1:{agent_port}"
    results: list[TransferResult] = []
    calls: list[SipCall] = []

    async def app(call: SipCall) -> None:
        calls.append(call)
        results.append(await call.transfer(target))

    (tmp_path / "agent").mkdir()
    async with running_engine(tmp_path, lambda c: app) as engine, SippServer(
            "uas", local_port=agent_port, workdir=tmp_path / "agent",
            extra=["-m", "1", "-mp", str(free_port_block(4))]) as agent:
        async with Baresip(tmp_path / "baresip", wav, auto_answer=True,
                           quit_after_s=20) as phone:
            assert engine.controller is not None
            rec = await asyncio.wait_for(engine.controller.originate(
                f"sip:caller@127.0.0.1:{phone.sip_port}", app), 15)
            await phone.quit()  # hangs up baresip's call with the agent: the agent gets BYE
        assert agent.proc is not None
        await asyncio.wait_for(agent.proc.wait(), 10)
    assert results == [TransferResult("transferred", "REFER accepted (202), NOTIFY 200")], (
        phone.log()[-2000:])
    assert rec.hangup_cause == "transferred" and rec.hangup_side == "engine"
    notifies = [e.data["body"] for e in calls[0].trace.entries if e.kind == "notify"]
    assert notifies[-1].startswith("SIP/2.0 200")  # the last one reports the final answer
    assert f"transferring call {rec.sip_call_id} to '<{target}>'" in phone.log()
    assert agent.result().successful == 1, agent.result().errors  # baresip really called it
