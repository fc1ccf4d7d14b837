"""``/metrics`` and ``/healthz`` on a running engine: calls, SIP counters and the pacer, and the
speech latency histogram after a real caller turn (baresip, keyword menu)."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

import aiohttp
import pytest

from tests.baresip import Baresip
from tests.integration.engine_harness import running_engine, sip_target
from tests.integration.test_speech_calls import FLOW, caller_wav

pytestmark = [pytest.mark.sipp, pytest.mark.xdist_group("sipp"), pytest.mark.models]


async def test_metrics_after_a_speech_call(tmp_path: Path) -> None:
    wav = caller_wav(tmp_path / "caller.wav", "support", lead_s=3.0)
    async with running_engine(tmp_path, None, IVR_FLOWS__DEFAULT_FLOW=str(FLOW)) as engine:  # type: ignore[arg-type]
        assert engine.metrics_address is not None
        host, port = engine.metrics_address
        base = f"http://{host}:{port}"
        ended = engine.bus.subscribe("call.ended")
        async with Baresip(tmp_path / "baresip", wav, dial=f"sip:ivr@{sip_target(engine)}",
                           quit_after_s=40) as phone:
            await asyncio.wait_for(ended.queue.get(), 35)
            await phone.quit()
        await engine.wait_idle()
        async with aiohttp.ClientSession() as http:
            async with http.get(f"{base}/healthz") as r:
                assert r.status == 200 and (await r.json())["status"] == "ok"
            async with http.get(f"{base}/metrics") as r:
                assert r.status == 200
                text = await r.text()
    assert 'ivr_calls_ended_total{direction="inbound",disposition="answered"} 1' in text
    assert "ivr_calls_active 0" in text
    assert "ivr_sip_messages_received_total" in text
    assert 'ivr_pacer_tick_lateness_ms{quantile="0.99"}' in text
    assert 'ivr_turn_latency_seconds_count{kind="grammar"} 1' in text
    assert "ivr_cdr_written_total" in text and "ivr_cdr_dead_lettered_total 0" in text
    assert 'ivr_calls_total{direction="inbound"} 1' in text
    assert 'ivr_sip_responses_total{class="2xx"}' in text
    received = re.search(r"^ivr_rtp_packets_received_total (\d+)", text, re.M)
    assert received is not None and int(received.group(1)) > 100  # the caller's speech
    assert "ivr_rtp_jitter_ms" in text and "ivr_asr_jobs_pending 0" in text
