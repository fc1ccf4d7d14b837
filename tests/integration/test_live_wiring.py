"""A live call through the engine's own wiring (``app.wiring``, not a test router): the number a
tenant routed runs that tenant's flow, a subflow resolves from the flow store, and the call
record carries the tenant and the flow's outcome. SIPp places the call; prompts are tones (a
speech double: this test is about routing and records, not voices)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from app.config import load_settings
from app.engine import Engine
from core.call import ListenResult, ListenSpec
from flows.store import FlowStore
from storage.tenancy import EVERY_TENANT
from tests.netutil import free_port, free_port_block
from tests.sipp import run_sipp_async

pytestmark = [pytest.mark.sipp, pytest.mark.xdist_group("sipp")]
FIXTURES = Path(__file__).parent.parent / "fixtures" / "sipp"

MAIN = {
    "format": 1, "id": "acme_main", "name": "Acme main", "variables": {"band": ""},
    "nodes": [
        {"id": "start", "type": "start"},
        {"id": "thanks", "type": "subflow",
         "params": {"flow_id": "acme_thanks", "inputs": {"score_value": "4"},
                    "outputs": {"band": "band"}}},
        {"id": "bye", "type": "hangup", "params": {"prompt": {"text": "Goodbye from Acme."}}},
    ],
    "edges": [{"from": "start", "port": "next", "to": "thanks"},
              {"from": "thanks", "port": "done", "to": "bye"}],
}
SUB = {
    "format": 1, "id": "acme_thanks", "name": "Acme thanks", "variables": {"score_value": 0,
                                                                           "band": ""},
    "nodes": [
        {"id": "start", "type": "start"},
        {"id": "say", "type": "play", "params": {"prompt": {"text": "Thanks from the subflow."}}},
        {"id": "set", "type": "set", "params": {"assign": {"band": "'high'"}}},
        {"id": "done", "type": "return"},
    ],
    "edges": [{"from": "start", "port": "next", "to": "say"},
              {"from": "say", "port": "next", "to": "set"},
              {"from": "set", "port": "next", "to": "done"}],
}


class ToneSpeech:
    """Prompts become 300 ms tones and are remembered; nobody speaks."""

    def __init__(self) -> None:
        self.said: list[str] = []

    async def synthesize(self, text: str, voice: str | None, language: str | None) -> Any:
        self.said.append(text)
        return (np.sin(np.arange(2400) / 8000 * 2 * np.pi * 440) * 6000).astype(np.int16)

    async def listen(self, call: Any, spec: ListenSpec) -> tuple[ListenResult, None]:
        return ListenResult("error", error="no recogniser in this test"), None

    async def barge_in_watcher(self, call: Any) -> None:
        await asyncio.Event().wait()

    def finish_turn(self, turn: Any) -> dict[str, Any]:
        return {}


async def test_tenant_route_subflow_and_record_on_a_live_call(tmp_path: Path) -> None:
    port, rtp = free_port(), free_port_block(200)
    settings = load_settings(environ={
        "IVR_SIP__LISTEN": f"127.0.0.1:{port}",
        "IVR_STORAGE__URL": f"sqlite:///{tmp_path}/ivr.sqlite",
        "IVR_STORAGE__RECORDINGS_DIR": str(tmp_path / "rec"),
        "IVR_RTP__PORT_MIN": str(rtp), "IVR_RTP__PORT_MAX": str(rtp + 198),
        "IVR_SIP__DRAIN_S": "1", "IVR_METRICS__LISTEN": "",
        "IVR_SPEAKER__ENCRYPTION_KEY": "",
    })
    speech = ToneSpeech()
    engine = Engine(settings, speech=speech)  # type: ignore[arg-type]
    await engine.start()  # the real wiring: flow store, routes, services, bus
    try:
        assert engine.db is not None
        store = FlowStore(engine.db)
        store.publish(SUB, tenant="acme")
        store.publish(MAIN, tenant="acme")
        store.set_route("4001", "acme_main", tenant="acme")
        host, sip_port = engine.addresses["udp"]
        res = await run_sipp_async(f"{host}:{sip_port}", FIXTURES / "uac_wait_bye.xml",
                                   local_port=free_port(), workdir=tmp_path,
                                   extra=["-s", "4001", "-m", "1"], limit_s=30)
        await engine.wait_idle()
        assert engine.records is not None
        (record,) = engine.records.list(tenants=EVERY_TENANT)
    finally:
        await engine.stop(drain_s=1.0)
    assert res.successful == 1, res.stdout[-1500:]
    assert speech.said == ["Thanks from the subflow.", "Goodbye from Acme."]
    assert record.tenant == "acme" and record.to_number == "4001"
    assert (record.flow_id, record.flow_version) == ("acme_main", 1)
    assert record.flow_result["status"] == "hangup"
    assert record.flow_result["variables"]["band"] == "high"  # the subflow's output came back
    entered = [e["node_id"] for e in record.trace if e["kind"] == "node.enter"]
    assert entered == ["start", "thanks", "start", "say", "set", "done", "bye"]
