"""Real recordings of people on real calls, in English and Mandarin, through the real wiring.

Callers are a real softphone (baresip, its microphone a WAV) and SIPp (playing an RTP capture made
from the recording); the engine runs the flow with the default recognisers (whisper tiny.en for
English menus, whisper base for Mandarin). In-grammar speech takes its branch; speech the menu
does not offer takes the ``no_match`` port (VoiceXML nomatch) with what was heard in the trace,
never a forced branch. Recordings: tests/fixtures/speech/manifest.json.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from audio.resample import to_8k
from audio.tones import silence
from audio.wavio import read_wav, write_wav
from storage.tenancy import EVERY_TENANT
from tests.integration.engine_harness import baresip_flow_call, running_engine, sip_target
from tests.netutil import free_port, free_port_block
from tests.pcap_audio import caller_scenario, write_rtp_pcap
from tests.sipp import run_sipp_async
from tests.speech_data import REAL_DIR

pytestmark = [pytest.mark.sipp, pytest.mark.xdist_group("sipp"), pytest.mark.models]


def menu_flow(path: Path, language: str, prompt: str, options: dict[str, list[str]]) -> Path:
    nodes: list[dict[str, Any]] = [
        {"id": "start", "type": "start", "params": {}},
        {"id": "menu", "type": "menu", "params": {
            "prompt": {"text": prompt},
            "options": [{"port": port, "keywords": words} for port, words in options.items()],
            "timeout_s": 8, "max_retries": 0, "barge_in": "any"}},
        {"id": "sorry", "type": "hangup", "params": {"prompt": {"text": "Sorry."}}},
        {"id": "bye", "type": "hangup", "params": {}},
    ]
    edges = [{"from": "start", "port": "next", "to": "menu"},
             {"from": "menu", "port": "no_match", "to": "sorry"},
             {"from": "menu", "port": "no_input", "to": "bye"},
             {"from": "menu", "port": "error", "to": "bye"}]
    for port in options:
        nodes.append({"id": f"to_{port}", "type": "hangup", "params": {}})
        edges.append({"from": "menu", "port": port, "to": f"to_{port}"})
    for i, n in enumerate(nodes):
        n["position"] = {"x": 0, "y": 100 * i}
    path.write_text(json.dumps({"id": "real_menu", "name": "Real speech menu (test)",
                                "language": language, "variables": {}, "nodes": nodes,
                                "edges": edges}, ensure_ascii=False))
    return path


def recording(name: str, lead_s: float = 1.5, tail_s: float = 6.0) -> np.ndarray:
    pcm, rate = read_wav(REAL_DIR / name)
    return np.concatenate([silence(lead_s), to_8k(pcm, rate), silence(tail_s)])


ENV = {"IVR_ASR__FINAL_TIMEOUT_S": "8"}  # whisper base on a busy 2-core test machine


def _outcome(rec: Any) -> tuple[list[str], list[dict[str, Any]]]:
    entered = [e["node_id"] for e in rec.trace if e["kind"] == "node.enter"]
    return entered, [e for e in rec.trace if e["kind"] in ("listen", "flow.no_match")]


async def _baresip_call(tmp_path: Path, flow: Path, wav: Path) -> Any:
    return await baresip_flow_call(tmp_path, flow, wav, **ENV)


async def _sipp_call(tmp_path: Path, flow: Path, pcm: np.ndarray) -> tuple[Any, Any]:
    pcap = write_rtp_pcap(pcm, tmp_path / "caller.pcap")
    scenario = caller_scenario(pcap, tmp_path / "caller.xml")
    async with running_engine(tmp_path, None, IVR_FLOWS__DEFAULT_FLOW=str(flow), **ENV) as engine:  # type: ignore[arg-type]
        res = await run_sipp_async(sip_target(engine), scenario, local_port=free_port(),
                                   workdir=tmp_path,
                                   extra=["-m", "1", "-mp", str(free_port_block(4))],
                                   limit_s=50)
        await engine.wait_idle(timeout_s=20)
        assert engine.records is not None
        (rec,) = engine.records.list(tenants=EVERY_TENANT)
    return rec, res


EN_OPTIONS = {"forward": ["go forward"], "somewhere": ["go somewhere"]}


async def test_english_recording_over_baresip_takes_its_branch(tmp_path: Path) -> None:
    wav = tmp_path / "caller.wav"
    write_wav(wav, recording("ps_goforward.wav"))  # "go forward ten meters", a real speaker
    flow = menu_flow(tmp_path / "flow.json", "en-US", "Where to?", EN_OPTIONS)
    rec = await _baresip_call(tmp_path, flow, wav)
    entered, heard = _outcome(rec)
    assert entered == ["start", "menu", "to_forward"], (entered, heard)


async def test_english_out_of_grammar_over_baresip_is_no_match(tmp_path: Path) -> None:
    wav = tmp_path / "caller.wav"
    write_wav(wav, recording("ps_librivox_0880.wav"))  # "he was not an ill disposed young man"
    flow = menu_flow(tmp_path / "flow.json", "en-US", "Where to?", EN_OPTIONS)
    rec = await _baresip_call(tmp_path, flow, wav)
    entered, heard = _outcome(rec)
    assert entered == ["start", "menu", "sorry"], (entered, heard)
    (nomatch,) = [e for e in heard if e["kind"] == "flow.no_match"]
    assert "young man" in nomatch["heard"].lower()


ZH_PROMPT = "请说出您要办理的业务"


async def test_mandarin_recording_over_sipp_takes_its_branch(tmp_path: Path) -> None:
    # "人生的路，走的是坦途还是坎坷……": the menu offers 人生的路 among business phrases
    flow = menu_flow(tmp_path / "flow.json", "zh-CN", ZH_PROMPT,
                     {"life": ["人生的路"], "balance": ["查询余额"], "agent": ["人工服务"]})
    rec, res = await _sipp_call(tmp_path, flow, recording("zh_weiwei.wav"))
    entered, heard = _outcome(rec)
    assert entered == ["start", "menu", "to_life"], (entered, heard, res.stdout[-800:])
    (listen,) = [e for e in heard if e["kind"] == "listen"]
    assert listen["status"] == "ok" and listen["text"] == "人生的路"


async def test_mandarin_out_of_grammar_over_sipp_is_no_match(tmp_path: Path) -> None:
    flow = menu_flow(tmp_path / "flow.json", "zh-CN", ZH_PROMPT,
                     {"balance": ["查询余额"], "agent": ["人工服务"], "cancel": ["办理退订"]})
    rec, _res = await _sipp_call(tmp_path, flow, recording("zh_xiaoyan.wav"))
    entered, heard = _outcome(rec)
    assert entered == ["start", "menu", "sorry"], (entered, heard)
    (nomatch,) = [e for e in heard if e["kind"] == "flow.no_match"]
    # what was heard depends on where barge-in and the endpointer cut the reading; it is Chinese
    assert re.search(r"[\u4e00-\u9fff]", nomatch["heard"]), nomatch
