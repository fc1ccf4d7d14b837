"""``ivr inspect`` from a shell: a Mandarin call (a real recording) inspected with whisper base,
a Chinese scorecard imported, bad files refused with the field or line named (a second default
card: its scope), a card retired and listed so, the queue shown."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from audio.resample import to_8k
from audio.tones import silence
from audio.wavio import read_wav, write_stereo_wav
from engine.cdr import CallRecord, CallRecords
from inspection.queue import JobQueue
from storage import open_database
from tests.speech_data import REAL_DIR

pytestmark = [pytest.mark.models]

ROOT = Path(__file__).resolve().parents[2]
CARD = {"id": "zh_card", "name": "普通话质检", "sections": [
    {"name": "话术", "weight": 1, "items": [
        {"id": "tantu", "name": "提到坦途", "points": 1, "rule": {
            "type": "phrase", "speaker": "caller", "match": "fuzzy", "phrases": ["坦途"]}},
        {"id": "complaint", "points": 1, "rule": {"type": "lexicon", "lexicon": "complaint"}}]}]}


def ivr(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "app.cli.main", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=300, check=False)


def test_inspect_a_mandarin_call_from_the_shell(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/ivr.sqlite"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "IVR_STORAGE__URL": url}
    pcm, rate = read_wav(REAL_DIR / "zh_weiwei.wav")  # 人生的路，走的是坦途还是坎坷……
    said = np.concatenate([silence(1.0), to_8k(pcm, rate), silence(1.0)])
    wav = tmp_path / "zh.wav"
    write_stereo_wav(wav, said, np.zeros(len(said), np.int16))
    db = open_database(url)
    now = time.time()
    CallRecords(db).save_many([CallRecord(
        "sip-zh", "inbound", "13800138000", "95555", id="zh-call-1", invite_at=now - 30,
        answer_at=now - 29, end_at=now - 10, disposition="answered", recording_path=str(wav),
        trace=[{"at": now - 28, "kind": "flow.language", "node_id": "menu",
                "language": "zh-CN"}])])

    bad = tmp_path / "bad.json"
    bad.write_text('{"id": "x", "sections": [}', encoding="utf-8")
    r = ivr(env, "inspect", "rules", "import", str(bad))
    assert r.returncode == 2 and "not JSON" in r.stderr and "line 1" in r.stderr, r.stderr
    bad.write_text(json.dumps({**CARD, "sections": [{"name": "话术", "items": [
        {"id": "a", "rule": {"type": "phrase", "speaker": "老板", "phrases": ["x"]}}]}]}),
        encoding="utf-8")
    r = ivr(env, "inspect", "rules", "import", str(bad))
    assert r.returncode == 2 and "sections[0].items[0].rule.speaker" in r.stderr, r.stderr
    card = tmp_path / "card.json"
    card.write_text(json.dumps(CARD, ensure_ascii=False), encoding="utf-8")
    r = ivr(env, "inspect", "rules", "import", str(card))
    assert r.returncode == 0 and "version 1" in r.stdout, r.stderr
    other = tmp_path / "other.json"
    other.write_text(json.dumps({**CARD, "id": "zh_other"}, ensure_ascii=False), "utf-8")
    r = ivr(env, "inspect", "rules", "import", str(other))
    assert r.returncode == 2 and "scope: scorecard 'zh_card' already scores" in r.stderr, \
        r.stderr

    r = ivr(env, "inspect", "run", "zh-call-1", "--json")
    assert r.returncode == 0, r.stderr
    got = json.loads(r.stdout)
    assert got["language"] == "zh" and got["scorecard"] == "zh_card"
    items = {i["id"]: i for i in got["items"]}
    assert items["tantu"]["status"] == "pass"
    (hit,) = items["tantu"]["evidence"]
    assert hit["speaker"] == "caller" and "坦" in hit["text"]
    first_speech_ms = 1000
    assert first_speech_ms < hit["start_ms"] < first_speech_ms + len(pcm) * 1000 // rate
    assert items["complaint"]["status"] == "pass"
    assert got["score"] == 100.0
    turns = got["transcript"]["turns"]
    assert "坦" in "".join(t["text"] for t in turns)

    r = ivr(env, "inspect", "run", "no-such-call")
    assert r.returncode == 1 and "no call record" in r.stderr
    JobQueue(db).enqueue("zh-call-1", "", now)
    r = ivr(env, "inspect", "queue")
    assert r.returncode == 0 and "queued=1" in r.stdout, r.stdout
    r = ivr(env, "inspect", "show", "zh-call-1")
    assert r.returncode == 0 and "tantu" in r.stdout and "score:     100.0" in r.stdout
    r = ivr(env, "inspect", "rules", "retire", "zh_card")
    assert r.returncode == 0 and "retired" in r.stdout, r.stderr
    r = ivr(env, "inspect", "rules", "list")
    assert r.returncode == 0 and "retired  default  普通话质检" in r.stdout, r.stdout
