"""Speech on real calls: a real softphone (baresip) talks to the engine running the real wiring
(flows + speech + compliance). Its microphone is a piper-spoken word after some silence, heard
through G.711: the caller talks over the menu prompt (barge-in), the word is recognised by the
bundled pocketsphinx in keyword mode, the flow takes that branch, and the turn's latency ledger
is in the call record."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from asr.synth import speak
from audio.resample import to_8k
from audio.tones import silence
from audio.wavio import write_wav
from tests.integration.engine_harness import baresip_flow_call

pytestmark = [pytest.mark.sipp, pytest.mark.xdist_group("sipp"), pytest.mark.models]
FLOW = Path(__file__).parent.parent / "fixtures" / "flows" / "speech_menu.json"


def caller_wav(path: Path, word: str, lead_s: float) -> Path:
    pcm = to_8k(speak(word, "piper", rate=16000), 16000)
    write_wav(path, np.concatenate([silence(lead_s), pcm, silence(4.0)]))
    return path


@pytest.mark.parametrize("word", ["support", "sales"])
async def test_caller_talks_over_the_menu_and_is_understood(tmp_path: Path, word: str) -> None:
    wav = caller_wav(tmp_path / "caller.wav", word, lead_s=3.0)
    rec = await baresip_flow_call(tmp_path, FLOW, wav)
    kinds = [e["kind"] for e in rec.trace]
    entered = [e["node_id"] for e in rec.trace if e["kind"] == "node.enter"]
    bargein = [e for e in rec.trace if e["kind"] == "bargein"]
    listen = [e for e in rec.trace if e["kind"] == "listen"]
    turns = [e for e in rec.trace if e["kind"] == "latency.turn"]
    assert bargein and bargein[0]["cause"] == "speech", kinds
    assert listen and word in listen[0]["text"].lower(), listen
    assert entered == ["start", "menu", f"to_{word}"], entered
    (turn,) = turns
    assert turn["node_id"] == "menu"
    marks = turn["marks"]
    assert marks["speech_end"] <= marks["recognizer_final"] <= marks["decision"]
    assert marks["decision"] <= marks["first_audio"]
    assert turn["total_ms"] > 0
    assert rec.flow_result["status"] == "hangup"
    played = [e for e in rec.trace if e["kind"] == "play.end"]
    assert played[0]["reason"] == "speech"  # the menu prompt was cut by the caller


async def test_silent_caller_gets_no_input_path(tmp_path: Path) -> None:
    wav = tmp_path / "silence.wav"
    write_wav(wav, silence(20.0))
    rec = await baresip_flow_call(tmp_path, FLOW, wav)
    entered = [e["node_id"] for e in rec.trace if e["kind"] == "node.enter"]
    assert entered == ["start", "menu", "bye"], entered
    assert not [e for e in rec.trace if e["kind"] == "bargein"]
    assert rec.hangup_side == "engine"
