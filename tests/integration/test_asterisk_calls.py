"""Calls through a real Asterisk: SIPp -> PJSIP -> the shipped dialplan snippet -> AudioSocket
and AMI -> the engine, and the engine's calls out through AMI Originate to SIPp.

The inbound call runs the real wiring (the sample flow, piper prompts, pocketsphinx): the
caller speaks "balance" over the menu and then keys its account number as RFC 4733 events; the
caller's RTP sink (where its SDP says it listens) hears what the engine sent; the record is the
SIP backend's record with ``backend = asterisk``.
"""

from __future__ import annotations

import asyncio
import uuid
import wave
from pathlib import Path

import numpy as np
import pytest

from app.console_setup import EngineCallPlacer
from asr.synth import speak
from audio.resample import to_8k
from audio.tones import silence, tone
from core.call import Call, CallHungUp
from engine.ami.dialler import AsteriskDialler
from flows.validator import compile_flow
from storage.tenancy import Tenants
from tests.asterisk import Asterisk
from tests.audio_match import best_correlation
from tests.integration.asterisk_harness import (
    FIXTURES,
    asterisk_engine,
    call_asterisk,
    caller_scenario,
    heard,
    open_caller_sink,
)
from tests.integration.engine_harness import dominant_hz
from tests.netutil import free_port, free_port_block
from tests.rtp_pcap import caller_pcap
from tests.sipp import SippServer

pytestmark = [pytest.mark.sipp, pytest.mark.asterisk, pytest.mark.xdist_group("asterisk")]


@pytest.mark.models
async def test_sample_flow_through_asterisk_voice_then_keys(tmp_path: Path,
                                                            asterisk: Asterisk) -> None:
    """The caller waits for the menu prompt (7.4 s) to end, says "balance", and keys its
    account number once the next prompt has begun."""
    word = to_8k(speak("balance", "piper", rate=16000), 16000)
    word_at = 9.5
    keys_at = word_at + len(word) / 8000 + 4.0
    speech = np.concatenate([silence(word_at), word, silence(keys_at + 10 - word_at)])
    pcap = caller_pcap(tmp_path / "caller.pcap", speech, ((keys_at, "123456#"),))
    sink, sink_transport, sink_port = await open_caller_sink()
    try:
        async with asterisk_engine(tmp_path, asterisk) as engine:
            assert await engine.wait_prewarmed(120)  # prompts ready: the caller's timing holds
            scenario = caller_scenario(tmp_path, pcap=pcap, hold_ms=int((keys_at + 7) * 1000),
                                       sink_port=sink_port, caller_name="张三")
            res = await call_asterisk(asterisk, tmp_path, scenario, dialled="4000")
            await engine.wait_idle(timeout_s=20)
            assert engine.records is not None
            (rec,) = engine.records.list(tenants=Tenants.every())
    finally:
        sink_transport.close()
    assert res.successful == 1, res.stdout[-1500:] + asterisk.log()[-2000:]
    assert (rec.backend, rec.direction, rec.disposition) == ("asterisk", "inbound", "answered")
    assert (rec.from_number, rec.to_number, rec.hangup_side) == ("13800138000", "4000", "caller")
    assert rec.flow_id == "account_balance" and rec.flow_result["status"] == "caller_hangup"
    entered = [e["node_id"] for e in rec.trace if e["kind"] == "node.enter"]
    assert entered[:5] == ["start", "screen", "main_menu", "get_account", "get_pin"], entered
    listen = [e for e in rec.trace if e["kind"] == "listen"]
    assert listen and listen[0]["text"].lower() == "balance", listen
    digits = [e for e in rec.trace if e["kind"] == "digits"]
    assert digits[0]["digits"] == "123456" and digits[0]["reason"] == "terminator", digits
    assert rec.digits == "123456#" and rec.media["dtmf_rx"] == 7
    (turn,) = [e for e in rec.trace if e["kind"] == "latency.turn"]  # the voice turn's ledger
    assert turn["node_id"] == "main_menu" and turn["total_ms"] > 0
    channel = next(e for e in rec.trace if e["kind"] == "asterisk.channel")
    assert channel["channel"].startswith("PJSIP/sipp-") and channel["caller_name"] == "张三"
    # the caller heard the engine's prompts: its sink got what the recording's engine leg holds
    assert rec.recording_path is not None
    with wave.open(rec.recording_path) as w:
        legs = np.frombuffer(w.readframes(w.getnframes()), np.int16).reshape(-1, 2)
    engine_leg, caller_leg = legs[:, 1], legs[:, 0]
    prompt = engine_leg[8000:24000]  # the menu prompt, seconds 1 to 3
    assert np.abs(prompt).mean() > 200
    assert best_correlation(prompt, heard(sink)) > 0.9
    assert best_correlation(word, caller_leg) > 0.9  # and the engine heard the caller


def uas_checking(header: str, regexp: str, *more: tuple[str, str]) -> str:
    """A SIPp callee that fails the call unless ``header`` matches ``regexp`` (XML-escaped),
    and each further (header, regexp) too."""
    checks = [(header, regexp), *more]
    eregs = "\n".join(f'      <ereg regexp="{r}" search_in="hdr" header="{h}" check_it="true" '
                      f'assign_to="header_ok{i}"/>' for i, (h, r) in enumerate(checks))
    refs = ",".join(f"header_ok{i}" for i in range(len(checks)))
    return ((FIXTURES / "uas_answer_check_header.xml.tmpl").read_text()
            .replace("{eregs}", eregs).replace("{refs}", refs))


async def collect_then_hang_up(call: Call) -> None:
    try:
        await call.play(tone(440, 1.0))
        await call.hangup()
    except CallHungUp:
        pass


async def test_outbound_call_with_caller_id_and_variables(tmp_path: Path,
                                                          asterisk: Asterisk) -> None:
    """Originate to a SIPp callee: SIPp checks the From header carries the caller ID; the
    channel variables reach Asterisk intact (comma, quote, Chinese); SIPp echoes the prompt
    back, so the engine's recording has it in the caller leg too."""
    port = free_port()
    scenario = tmp_path / "uas.xml"
    scenario.write_text(uas_checking("From:", "&quot;Bank&quot; &lt;sip:95588@"))
    variables = {"CAMPAIGN": 'spring, "vip" 中文', "CONTACT_ID": "42"}
    seen: dict[str, str] = {}

    async def app(call: Call) -> None:
        ami = engine.ami
        assert ami is not None
        got = await ami.send("Getvar", [("Channel", call.call_id), ("Variable", "CAMPAIGN")])
        seen["CAMPAIGN"] = got.response.get("Value")
        await collect_then_hang_up(call)

    async with asterisk_engine(
            tmp_path, asterisk,
            IVR_ASTERISK__DIAL_TEMPLATE=f"PJSIP/sipp/sip:{{number}}@127.0.0.1:{port}") as engine, \
            SippServer(scenario, local_port=port, workdir=tmp_path,
                       extra=["-m", "1", "-rtp_echo", "-mp", str(free_port_block(4))]) as uas:
        assert engine.asterisk is not None
        rec = await asyncio.wait_for(engine.asterisk.originate(
            "2000", app, caller_id='"Bank" <95588>', variables=variables, ring_timeout_s=10,
            tenant="bank"), 30)
        assert uas.proc is not None
        await asyncio.wait_for(uas.proc.wait(), 15)
        result = uas.result()
        await engine.wait_idle()
        assert engine.records is not None
        stored = engine.records.get(rec.id, tenants=Tenants.every())
    assert result.successful == 1, result
    assert seen["CAMPAIGN"] == variables["CAMPAIGN"]
    assert (rec.backend, rec.direction, rec.disposition) == ("asterisk", "outbound", "answered")
    assert (rec.from_number, rec.to_number, rec.tenant) == ("95588", "2000", "bank")
    assert (rec.hangup_cause, rec.hangup_side) == ("normal", "engine")
    assert stored is not None and stored.backend == "asterisk" and stored.sip_call_id == rec.id
    with wave.open(str(rec.recording_path)) as w:
        legs = np.frombuffer(w.readframes(w.getnframes()), np.int16).reshape(-1, 2)
    assert abs(dominant_hz(legs[:, 0]) - 440) < 15  # SIPp echoed the prompt back


async def test_campaign_dialler_sends_caller_id_and_headers(tmp_path: Path,
                                                            asterisk: Asterisk) -> None:
    """The campaigns' dialler shape over Asterisk: the From display name and user become the
    caller ID (Chinese name included), the extra SIP headers reach the callee on the INVITE
    Asterisk's PJSIP sends, the record is the SIP backend's, under the caller's call id."""
    port = free_port()
    scenario = tmp_path / "uas.xml"
    pai = "<sip:+8695588@bank.example>"
    scenario.write_text(uas_checking(
        "From:", "&quot;招商银行&quot; &lt;sip:95588@",
        ("P-Asserted-Identity:", "sip:\\+8695588@bank.example"),
        ("X-Campaign:", "spring, vip")))
    async with asterisk_engine(
            tmp_path, asterisk,
            IVR_ASTERISK__DIAL_TEMPLATE=f"PJSIP/sipp/sip:{{number}}@127.0.0.1:{port}") as engine, \
            SippServer(scenario, local_port=port, workdir=tmp_path,
                       extra=["-m", "1", "-rtp_echo", "-mp", str(free_port_block(4))]) as uas:
        assert engine.asterisk is not None
        dialler = AsteriskDialler(engine.asterisk)
        rec = await asyncio.wait_for(dialler.originate(
            "2000", collect_then_hang_up, from_user="95588", from_display="招商银行",
            headers=[("P-Asserted-Identity", pai), ("X-Campaign", "spring, vip")],
            ring_timeout_s=10, tenant="bank"), 30)
        assert uas.proc is not None
        await asyncio.wait_for(uas.proc.wait(), 15)
        result = uas.result()
        # a bad header name is refused before anything is sent, naming the field; the
        # caller's own call id (the console's, a UUID) is the record's
        own = str(uuid.uuid4())
        bad = await asyncio.wait_for(engine.asterisk.originate(
            "2000", collect_then_hang_up, headers=[("Bad Header", "x")], call_id=own), 10)
        with pytest.raises(ValueError, match="call_id: 'not-a-uuid' is not a UUID"):
            await engine.asterisk.originate("2000", collect_then_hang_up, call_id="not-a-uuid")
        await engine.wait_idle()
    assert result.successful == 1, result
    assert (rec.backend, rec.direction, rec.disposition) == ("asterisk", "outbound", "answered")
    assert (rec.from_number, rec.to_number, rec.tenant) == ("95588", "2000", "bank")
    assert (bad.id, bad.disposition) == (own, "failed")
    assert bad.hangup_cause == "bad_request: headers: 'Bad Header' is not a SIP header name"[:64]


@pytest.mark.parametrize(("refusal", "expected"), [
    ("486 Busy Here", ("busy", "busy")),
    ("480 Temporarily Unavailable", ("no_answer", "no_answer")),
    ("603 Decline", ("rejected", "declined")),
    ("404 Not Found", ("failed", "not_found")),
])
async def test_refused_outbound_calls_get_the_sip_vocabulary(
        tmp_path: Path, asterisk: Asterisk, refusal: str, expected: tuple[str, str]) -> None:
    """The same (disposition, cause) as the SIP backend gives for the same refusal
    (tests/integration/test_originate.py)."""
    status, reason = refusal.split(" ", 1)
    port = free_port()
    scenario = tmp_path / "uas_reject.xml"
    scenario.write_text((FIXTURES / "uas_reject.xml.tmpl").read_text()
                        .replace("STATUS", status).replace("REASON", reason))

    async def never(call: Call) -> None:
        raise AssertionError("the call must not be answered")

    async with asterisk_engine(
            tmp_path, asterisk,
            IVR_ASTERISK__DIAL_TEMPLATE=f"PJSIP/sipp/sip:{{number}}@127.0.0.1:{port}") as engine, \
            SippServer(scenario, local_port=port, workdir=tmp_path, extra=["-m", "1"]):
        assert engine.asterisk is not None
        rec = await asyncio.wait_for(engine.asterisk.originate("3000", never,
                                                               ring_timeout_s=10), 30)
    assert (rec.disposition, rec.hangup_cause) == expected, rec.trace
    assert rec.backend == "asterisk" and rec.answer_at is None


async def test_ringing_out_is_no_answer(tmp_path: Path, asterisk: Asterisk) -> None:
    port = free_port()

    async def never(call: Call) -> None:
        raise AssertionError("the call must not be answered")

    async with asterisk_engine(
            tmp_path, asterisk,
            IVR_ASTERISK__DIAL_TEMPLATE=f"PJSIP/sipp/sip:{{number}}@127.0.0.1:{port}") as engine, \
            SippServer(FIXTURES / "uas_ring_expect_cancel.xml", local_port=port,
                       workdir=tmp_path, extra=["-m", "1"]) as uas:
        assert engine.asterisk is not None
        rec = await asyncio.wait_for(engine.asterisk.originate("3000", never,
                                                               ring_timeout_s=2), 30)
        assert uas.proc is not None
        await asyncio.wait_for(uas.proc.wait(), 10)
        result = uas.result()
    assert (rec.disposition, rec.hangup_cause, rec.hangup_side) == ("no_answer", "no_answer",
                                                                    "engine")
    assert result.successful == 1, result  # Asterisk CANCELled the ringing INVITE


async def test_transfer_redirects_the_channel_to_the_agent(tmp_path: Path,
                                                           asterisk: Asterisk) -> None:
    """The flow transfers: AMI Redirect takes the channel into the transfer context with the
    target in IVR_TRANSFER_TARGET, which the test's dialplan hands the SIPp agent in a header
    (the agent checks it); the engine's part ends ``transferred``; caller and agent talk on."""
    scenario = tmp_path / "agent.xml"
    scenario.write_text(uas_checking("X-IVR-Target:", "sip:agents@pbx.example"))
    results: list[str] = []

    async def app(call: Call) -> None:
        await call.play(tone(440, 0.5))
        results.append((await call.transfer("sip:agents@pbx.example")).status)

    pcap = caller_pcap(tmp_path / "caller.pcap", silence(8.0))
    _, sink_transport, sink_port = await open_caller_sink()
    try:
        async with asterisk_engine(tmp_path, asterisk, lambda c: app) as engine:
            # the agent's port is picked once the engine holds its own: picked before, it could
            # be the one the engine then bound, and Asterisk's transfer reached the engine
            agent_port = free_port()
            asterisk.cli(f"dialplan set global AGENT_PORT {agent_port}")
            async with SippServer(scenario, local_port=agent_port, workdir=tmp_path,
                                  extra=["-m", "1", "-mp", str(free_port_block(4))]) as agent:
                caller = caller_scenario(tmp_path, pcap=pcap, hold_ms=6000,
                                         sink_port=sink_port)
                res = await call_asterisk(asterisk, tmp_path, caller)
                assert agent.proc is not None
                await asyncio.wait_for(agent.proc.wait(), 15)
                agent_result = agent.result()
            await engine.wait_idle()
            assert engine.records is not None
            recs = engine.records.list(tenants=Tenants.every())
            assert len(recs) == 1, (  # one call: the caller's, handed to the agent
                [(r.direction, r.from_number, r.to_number, r.backend, r.disposition,
                  r.hangup_cause) for r in recs], agent_result, asterisk.log()[-2000:])
            (rec,) = recs
    finally:
        sink_transport.close()
    assert results == ["transferred"]
    assert res.successful == 1, res.stdout[-1000:]
    assert agent_result.successful == 1, agent_result  # the agent got it, target header and all
    assert (rec.hangup_cause, rec.hangup_side, rec.disposition) == ("transferred", "engine",
                                                                    "answered")
    redirected = [e for e in rec.trace if e["kind"] == "transfer.redirected"]
    assert redirected and redirected[0]["exten"] == "agents"


async def test_console_test_call_on_an_asterisk_only_engine(tmp_path: Path,
                                                            asterisk: Asterisk) -> None:
    """``ivr run --backend asterisk``: the console's test calls go out through Asterisk (the
    SIP URI's user part dialled with dial_template), run the published flow, and come back
    with the record under the console's call id."""
    port = free_port()
    scenario = tmp_path / "uas.xml"
    scenario.write_text(uas_checking("From:", "sip:4000@"))
    doc = {"id": "acme_main", "name": "Acme main", "nodes": [
        {"id": "start", "type": "start"},
        {"id": "bye", "type": "hangup", "params": {"prompt": {"text": "您好, goodbye."}}}],
        "edges": [{"from": "start", "port": "next", "to": "bye"}]}
    async with asterisk_engine(
            tmp_path, asterisk, IVR_SIP__ENABLED="false",
            IVR_ASTERISK__DIAL_TEMPLATE=f"PJSIP/sipp/sip:{{number}}@127.0.0.1:{port}") as engine, \
            SippServer(scenario, local_port=port, workdir=tmp_path,
                       extra=["-m", "1", "-mp", str(free_port_block(4))]) as uas:
        assert engine.controller is None and engine.asterisk is not None
        placer = await asyncio.to_thread(EngineCallPlacer, engine, engine.settings)
        call_id = str(uuid.uuid4())
        record = await asyncio.wait_for(placer.place(
            "sip:2000@pbx.example", compile_flow(doc), tenant="acme", call_id=call_id,
            from_user="4000", ring_timeout_s=10), 60)
        assert uas.proc is not None
        await asyncio.wait_for(uas.proc.wait(), 15)
        result = uas.result()
    assert result.successful == 1, result
    assert (record["id"], record["backend"], record["disposition"]) == (call_id, "asterisk",
                                                                       "answered")
    assert (record["to_number"], record["from_number"], record["tenant"]) == ("2000", "4000",
                                                                              "acme")
    assert record["flow_id"] == "acme_main" and record["hangup_side"] == "engine"
