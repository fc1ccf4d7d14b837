"""Hang-up SMS (挂机短信) after real SIPp calls: the engine's own wiring sends what a flow's
``send_sms`` node asks and what the ``[sms]`` rules say for the call's disposition, through
SMPP to the simulator. Prompts are tones (a speech double: this is about SMS, not voices)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from app.config import load_settings
from app.engine import Engine
from core.call import Call
from flows.store import FlowStore
from tests.integration.engine_harness import running_engine
from tests.integration.test_live_wiring import ToneSpeech
from tests.netutil import free_port, free_port_block, wait_until
from tests.sipp import SippServer, run_sipp_async
from tests.smsc import SimSmsc

pytestmark = [pytest.mark.sipp, pytest.mark.xdist_group("sipp")]
FIXTURES = Path(__file__).parent.parent / "fixtures" / "sipp"

TEMPLATES = [
    {"id": "thanks", "tenant": "acme", "text": "感谢致电Acme，本次通话结果：{{ disposition }}。",
     "signature": "Acme"},
    {"id": "missed", "tenant": "default",
     "text": "您好，刚才的来电未能接通（{{ disposition }}），稍后再联系您。"},
]
RULES = [
    {"name": "after_answer", "template": "thanks", "on": ["answered"], "tenant": "acme",
     "flow_status": "hangup", "last_node": "bye", "quiet_hours": ""},
    {"name": "missed", "template": "missed", "on": ["busy", "no_answer"], "quiet_hours": ""},
]
FLOW = {
    "format": 1, "id": "acme_sms", "name": "Acme SMS",
    "nodes": [
        {"id": "start", "type": "start"},
        {"id": "sms", "type": "send_sms",
         "params": {"to": "'13700137000'", "text": "您的工单{{ call_id | mask(4) }}已受理",
                    "variable": "sms_id"}},
        {"id": "bye", "type": "hangup", "params": {"prompt": {"text": "Goodbye."}}},
    ],
    "edges": [{"from": "start", "port": "next", "to": "sms"},
              {"from": "sms", "port": "sent", "to": "bye"}],
}


def sms_env(tmp_path: Path, sim: SimSmsc) -> dict[str, str]:
    return {
        "IVR_STORAGE__URL": f"sqlite:///{tmp_path}/ivr.sqlite",
        "IVR_COMPLIANCE__WINDOW_START": "00:00", "IVR_COMPLIANCE__WINDOW_END": "23:59:59.999",
        "IVR_SMS__GATEWAY": "smpp", "IVR_SMS__SMPP_PORT": str(sim.port),
        "IVR_SMS__SMPP_SYSTEM_ID": "ivr", "IVR_SMS__SMPP_PASSWORD": "pw",
        "IVR_SMS__TEMPLATES": json.dumps(TEMPLATES, ensure_ascii=False),
        "IVR_SMS__RULES": json.dumps(RULES),
    }


async def test_flow_node_and_hangup_rule_after_an_inbound_sipp_call(tmp_path: Path) -> None:
    sim = SimSmsc(free_port())
    await sim.start()
    port, rtp = free_port(), free_port_block(200)
    settings = load_settings(environ={
        "IVR_SIP__LISTEN": f"127.0.0.1:{port}",
        "IVR_STORAGE__RECORDINGS_DIR": str(tmp_path / "rec"),
        "IVR_RTP__PORT_MIN": str(rtp), "IVR_RTP__PORT_MAX": str(rtp + 198),
        "IVR_SIP__DRAIN_S": "1", "IVR_METRICS__LISTEN": "", "IVR_SPEAKER__ENCRYPTION_KEY": "",
        **sms_env(tmp_path, sim)})
    engine = Engine(settings, speech=ToneSpeech())  # type: ignore[arg-type]
    scenario = tmp_path / "uac_from_mobile.xml"
    scenario.write_text((FIXTURES / "uac_wait_bye.xml").read_text()
                        .replace("sipp <sip:sipp@", "13900139000 <sip:13900139000@"))
    await engine.start()
    try:
        assert engine.db is not None and engine.sms is not None
        store = FlowStore(engine.db)
        store.publish(FLOW, tenant="acme")
        store.set_route("4001", "acme_sms", tenant="acme")
        ended = engine.bus.subscribe("call.ended")
        host, sip_port = engine.addresses["udp"]
        res = await run_sipp_async(f"{host}:{sip_port}", scenario, local_port=free_port(),
                                   workdir=tmp_path, extra=["-s", "4001", "-m", "1"],
                                   limit_s=30)
        assert res.successful == 1, res.stdout[-1500:]
        await wait_until(lambda: len(sim.accepted) >= 2, 15, "two messages at the SMSC")
        call_end = ended.queue.get_nowait()
        messages = await engine.sms.recent(call_id=call_end.call_id)
    finally:
        await engine.stop(drain_s=1.0)
        await sim.stop()
    assert call_end.data["disposition"] == "answered"
    got = dict((dest, text) for dest, text in sim.messages())
    assert got["8613700137000"].startswith("您的工单****")  # the flow's node, variables filled
    assert got["8613900139000"] == "【Acme】感谢致电Acme，本次通话结果：answered。"  # the rule
    assert {m.rule for m in messages} == {"flow:sms", "after_answer"}
    assert {m.tenant for m in messages} == {"acme"}


async def test_busy_outbound_call_gets_the_missed_call_sms(tmp_path: Path) -> None:
    sim = SimSmsc(free_port())
    await sim.start()
    scenario = tmp_path / "uas_reject.xml"
    scenario.write_text((FIXTURES / "uas_reject.xml.tmpl").read_text()
                        .replace("STATUS", "486").replace("REASON", "Busy Here"))
    port = free_port()

    async def never(call: Call) -> None:
        raise AssertionError("the call must not be answered")

    try:
        async with running_engine(tmp_path, lambda c: never, **sms_env(tmp_path, sim)) as engine, \
                SippServer(scenario, local_port=port, workdir=tmp_path, extra=["-m", "1"]):
            assert engine.controller is not None
            rec = await asyncio.wait_for(engine.controller.originate(
                f"sip:13800138000@127.0.0.1:{port}", never), 15)
            await wait_until(lambda: len(sim.accepted) >= 1, 10, "the missed-call SMS")
    finally:
        await sim.stop()
    assert rec.disposition == "busy"
    assert sim.messages() == [("8613800138000", "您好，刚才的来电未能接通（busy），稍后再联系您。")]
