"""A real SIPp call runs the default sample flow end to end; the caller's RFC 2833 digit picks
the branch.

SIPp's built-in ``uac_pcap`` plays ~7 s of speech, then sends digit 1, then hangs up. The engine
routes the call through :func:`flows.callapp.flow_router` to ``examples/flows/account_balance.json``
(the configured default). There is no recogniser here, so the menu degrades to keypad input; the
prompts are short tones standing in for TTS (the speech area owns real synthesis). The run result
must show the menu took the ``balance`` port and the flow moved on to ``get_account``.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from app.config import load_settings
from app.engine import Engine
from core.call import ListenResult, ListenSpec
from flows.callapp import flow_router
from flows.routing import FlowRouter
from storage.tenancy import EVERY_TENANT
from tests.netutil import free_port, free_port_block
from tests.sipp import dump_builtin, run_sipp_async

pytestmark = [pytest.mark.sipp, pytest.mark.slow, pytest.mark.xdist_group("sipp")]
ROOT = Path(__file__).resolve().parents[2]


class ToneSpeech:
    """Prompts become 300 ms tones; no recogniser (listen reports an error)."""

    def __init__(self) -> None:
        self.said: list[str] = []

    async def synthesize(self, text: str, voice: str | None, language: str | None) -> Any:
        self.said.append(text)
        t = np.arange(2400) / 8000.0
        return (np.sin(2 * np.pi * 440 * t) * 6000).astype(np.int16)

    async def listen(self, call: Any, spec: ListenSpec) -> tuple[ListenResult, None]:
        return ListenResult("error", error="no recogniser in this test"), None

    async def barge_in_watcher(self, call: Any) -> None:
        await asyncio.Event().wait()  # nobody ever talks over a prompt here

    def finish_turn(self, turn: Any) -> dict[str, Any]:
        return {}


async def test_sipp_digit_1_chooses_the_balance_branch(tmp_path: Path) -> None:
    port, rtp = free_port(), free_port_block(200)
    settings = load_settings(
        environ={
            "IVR_SIP__LISTEN": f"127.0.0.1:{port}",
            "IVR_STORAGE__URL": f"sqlite:///{tmp_path}/ivr.sqlite",
            "IVR_STORAGE__RECORDINGS_DIR": str(tmp_path / "rec"),
            "IVR_RTP__PORT_MIN": str(rtp),
            "IVR_RTP__PORT_MAX": str(rtp + 198),
            "IVR_SIP__DRAIN_S": "1",
        }
    )
    speech = ToneSpeech()
    engine = Engine(settings, speech=speech)  # type: ignore[arg-type]
    engine.router = flow_router(  # type: ignore[assignment]
        FlowRouter(None, default_flow=ROOT / settings.flows.default_flow),
        clock=engine.clock,
        events=engine.bus,
    )
    flow_events = engine.bus.subscribe("flow.")
    await engine.start()
    try:
        scenario = dump_builtin("uac_pcap", tmp_path / "uac_pcap.xml")
        host, sip_port = engine.addresses["udp"]
        res = await run_sipp_async(
            f"{host}:{sip_port}",
            scenario,
            local_port=free_port(),
            workdir=tmp_path,
            extra=["-m", "1", "-mp", "16000"],
            limit_s=60,
        )
        await engine.wait_idle()
    finally:
        await engine.stop(drain_s=1.0)
    assert res.successful == 1, res.stdout[-1500:]
    # the live flow events reached the engine's bus (the console's live view reads them)
    events = []
    while not flow_events.queue.empty():
        events.append(flow_events.queue.get_nowait())
    topics = [e.topic for e in events]
    assert topics[0] == "flow.start" and topics[-1] == "flow.end", topics
    nodes = [e.data for e in events if e.topic == "flow.node"]  # left, with their outcome
    entered = [e.data["node_id"] for e in events if e.topic == "flow.enter"]
    end = events[-1].data
    assert events[0].data["flow_id"] == end["flow_id"] == "account_balance"
    menu = [n for n in nodes if n["node_id"] == "main_menu"]
    assert menu and menu[-1]["outcome"] == "balance", nodes
    assert entered[:4] == [
        "start",
        "screen",
        "main_menu",
        "get_account",
    ]
    assert end["status"] == "caller_hangup"
    # and the call record took the flow's outcome from the same events
    assert engine.records is not None
    (record,) = engine.records.list(tenants=EVERY_TENANT)
    assert record.flow_id == "account_balance" and record.flow_result["status"] == "caller_hangup"
    assert record.tenant == "default" and record.disposition == "answered"
    assert speech.said[0].startswith("Welcome to Example Bank")
    assert "Please enter your account number, then press hash." in speech.said
