"""``ivr call URI --play FILE`` against a real SIPp UAS, then ``ivr calls list|show`` on the same
database, all through the installed ``ivr`` command in a subprocess (what an operator runs)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import wave
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from audio.inband_dtmf import InbandDtmfDetector
from audio.tones import tone
from audio.wavio import write_wav
from tests.netutil import free_port, free_port_block
from tests.sipp import sipp_binary

FIXTURES = Path(__file__).parent.parent / "fixtures" / "sipp"

pytestmark = [pytest.mark.sipp, pytest.mark.xdist_group("sipp")]
IVR = str(Path(sys.executable).with_name("ivr"))


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    rtp = free_port_block(20)
    return {**os.environ,
            "IVR_STORAGE__URL": f"sqlite:///{tmp_path}/ivr.sqlite",
            "IVR_STORAGE__RECORDINGS_DIR": str(tmp_path / "recordings"),
            "IVR_SIP__LISTEN": "127.0.0.1:0",
            "IVR_RTP__PORT_MIN": str(rtp), "IVR_RTP__PORT_MAX": str(rtp + 18)}


@pytest.fixture
def uas(tmp_path: Path) -> Iterator[int]:
    """SIPp's built-in ``uas`` (answers PCMU, echoes RTP) for one call."""
    port = free_port()
    workdir = tmp_path / "sipp"
    workdir.mkdir()
    proc = subprocess.Popen(
        [sipp_binary(), "-sn", "uas", "-i", "127.0.0.1", "-p", str(port), "-nostdin", "-m", "1",
         "-rtp_echo", "-mp", str(free_port_block(4))],
        cwd=workdir, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        yield port
    finally:
        proc.terminate()
        proc.wait(5)


def ivr(env: dict[str, str], *args: str, timeout: float = 40) -> subprocess.CompletedProcess[str]:
    return subprocess.run([IVR, *args], env=env, capture_output=True, text=True,
                          timeout=timeout, check=False)


def test_call_play_then_list_and_show(tmp_path: Path, env: dict[str, str], uas: int) -> None:
    prompt = tmp_path / "prompt.wav"
    write_wav(prompt, tone(440, 1.0))
    out = ivr(env, "call", f"sip:svc@127.0.0.1:{uas}", "--play", str(prompt), "--wait", "0.5")
    assert out.returncode == 0, out.stdout + out.stderr
    fields = dict(line.split(None, 1) for line in out.stdout.splitlines()
                  if line and not line.startswith(" ") and len(line.split(None, 1)) == 2)
    assert fields["disposition"] == "answered" and fields["direction"] == "outbound"
    assert fields["codec"] == "PCMU" and fields["hangup_side"] == "engine"
    assert "play.end" in out.stdout  # the trace is printed
    call_id = fields["id"]

    listed = ivr(env, "calls", "list", "--json")
    assert listed.returncode == 0, listed.stderr
    (rec,) = json.loads(listed.stdout)
    assert rec["id"] == call_id and rec["disposition"] == "answered"
    assert rec["to_number"] == f"sip:svc@127.0.0.1:{uas}"
    plays = [e for e in rec["trace"] if e["kind"] == "play.end"]
    assert plays == [{**plays[0], "prompt": str(prompt), "reason": "completed",
                      "played_ms": 1000}]
    assert rec["media"]["tx"] >= 50  # the 1 s prompt went out as RTP
    assert rec["media"]["rx"] > 0  # ... and SIPp's -rtp_echo sent it back
    # the recording: the prompt on the engine's (right) channel
    with wave.open(rec["recording_path"]) as w:
        frames = np.frombuffer(w.readframes(w.getnframes()), np.int16).reshape(-1, 2)
    assert np.abs(frames[:, 1]).max() > 5000

    table = ivr(env, "calls", "list")
    assert table.returncode == 0 and call_id[:8] in table.stdout and "answered" in table.stdout

    for key in (call_id, call_id[:8], rec["sip_call_id"]):
        shown = ivr(env, "calls", "show", key)
        assert shown.returncode == 0, shown.stderr
        assert f"id              {call_id}" in shown.stdout
    shown_json = ivr(env, "calls", "show", call_id, "--json")
    assert json.loads(shown_json.stdout)["id"] == call_id


def test_calls_show_unknown_id_exits_1(env: dict[str, str]) -> None:
    out = ivr(env, "calls", "show", "nonexistent")
    assert out.returncode == 1
    assert "no call record matches 'nonexistent'" in out.stderr


def test_call_with_missing_prompt_exits_2_before_dialling(tmp_path: Path,
                                                          env: dict[str, str]) -> None:
    out = ivr(env, "call", "sip:svc@127.0.0.1:9", "--play", str(tmp_path / "missing.wav"))
    assert out.returncode == 2
    assert "missing.wav does not exist" in out.stderr


def test_digits_go_in_band_when_the_callee_has_no_telephone_event(
        env: dict[str, str], uas: int) -> None:
    """SIPp's uas answers PCMU without telephone-event: the keys are played as tones, which the
    recording's engine leg (right) decodes to exactly the keys."""
    out = ivr(env, "call", f"sip:svc@127.0.0.1:{uas}", "--digits", "12#", "--wait", "0.2")
    assert out.returncode == 0, out.stdout + out.stderr
    (rec,) = json.loads(ivr(env, "calls", "list", "--json").stdout)
    kinds = [e["kind"] for e in rec["trace"]]
    assert "dtmf.inband" in kinds and "error" not in kinds
    assert rec["media"]["dtmf_tx"] == 0
    with wave.open(rec["recording_path"]) as w:
        frames = np.frombuffer(w.readframes(w.getnframes()), np.int16).reshape(-1, 2)
    det = InbandDtmfDetector()
    keys = [k for i in range(0, len(frames), 160) for k in det.feed(frames[i:i + 160, 1])]
    assert "".join(keys) == "12#"


def test_call_with_bad_digits_exits_2(env: dict[str, str]) -> None:
    out = ivr(env, "call", "sip:svc@127.0.0.1:9", "--digits", "1x2")
    assert out.returncode == 2
    assert "'x' are not DTMF keys" in out.stderr


def test_digits_as_rfc4733_when_offered(tmp_path: Path, env: dict[str, str]) -> None:
    """A callee that offers telephone-event (101) gets the keys as RFC 4733 events, read from
    the RTP the engine sends to the test's own socket."""
    sink_port = free_port_block(2)
    sip_port = free_port()
    workdir = tmp_path / "sipp"
    workdir.mkdir()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sink:
        sink.bind(("127.0.0.1", sink_port))
        sink.setblocking(False)
        proc = subprocess.Popen(
            [sipp_binary(), "-sf", str(FIXTURES / "uas_sink_bye.xml"), "-i", "127.0.0.1", "-p",
             str(sip_port), "-nostdin", "-m", "1", "-d", "10000", "-set", "sinkport",
             str(sink_port)], cwd=workdir, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            out = ivr(env, "call", f"sip:svc@127.0.0.1:{sip_port}", "--digits", "12#",
                      "--wait", "0.3")
        finally:
            proc.terminate()
            proc.wait(5)
        packets = []
        while True:
            try:
                packets.append(sink.recv(2048))
            except BlockingIOError:
                break
    assert out.returncode == 0, out.stdout + out.stderr
    events = [p[12] for p in packets if p[1] & 0x7F == 101 and p[1] & 0x80]  # marker: a new key
    assert events == [1, 2, 11]  # RFC 4733 event codes: '#' is 11
    (rec,) = json.loads(ivr(env, "calls", "list", "--json").stdout)
    assert rec["media"]["dtmf_tx"] == 3
