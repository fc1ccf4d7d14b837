"""Real answerers for campaign tests: one SIPp UAS whose behaviour is chosen by the last digit
of the dialled number, and ``ivr run`` as a separate process dialling it.

Last digit -> what the callee does::

    1  486 Busy Here                  2  480 Temporarily Unavailable
    3  503 Service Unavailable         4  rings until CANCELled (no answer)
    5  answers, says a real phrase, presses 1 (RFC 4733) 4.5 s after answering
    7  answers with a voicemail greeting (real reading) and a beep
    0, 6, 8, 9  answers and says a real phrase, then listens until the engine hangs up

The audio comes from real recordings (tests/amd_corpus.py: the pocketsphinx "cards" phrase
as the person, a Mandarin reading followed by a beep as the mailbox), through a telephone
chain, as RTP/PCMA captures SIPp plays. Every INVITE SIPp receives is in its message trace,
which :func:`invites` reads: what was really dialled, to compare with the database.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np

from tests.netutil import free_port, free_port_block
from tests.pcap_audio import write_rtp_pcap

ROOT = Path(__file__).resolve().parents[1]
DTMF_1 = "/usr/share/sip-tester/dtmf_2833_1.pcap"
PAUSE_BEFORE_KEY = '  <pause milliseconds="4500"/>'  # the person presses 1 4.5 s after answering
HUMAN_ITEM = "real_cards_001"
MACHINE_ITEM = "real_greeting_zh_xiaoyan"
INVITE_RE = re.compile(r"^INVITE sip:([^@\s]+)@", re.M)
FROM_RE = re.compile(r"^From:[^\r\n]*<sip:([^@>]+)@", re.M)
CALL_ID_RE = re.compile(r"^Call-ID:\s*([^\r\n]+)", re.M | re.I)

_200 = """
      SIP/2.0 200 OK
      [last_Via:]
      [last_From:]
      [last_To:];tag=[pid]SIPpTag01[call_number]
      [last_Call-ID:]
      [last_CSeq:]
      Contact: <sip:[local_ip]:[local_port];transport=[transport]>
      Content-Type: application/sdp
      Content-Length: [len]

      v=0
      o=user1 53655765 2353687637 IN IP[local_ip_type] [local_ip]
      s=-
      c=IN IP[media_ip_type] [media_ip]
      t=0 0
      m=audio [auto_media_port] RTP/AVP 8 101
      a=rtpmap:8 PCMA/8000
      a=rtpmap:101 telephone-event/8000
      a=fmtp:101 0-15
"""
_BYE_200 = """
      SIP/2.0 200 OK
      [last_Via:]
      [last_From:]
      [last_To:]
      [last_Call-ID:]
      [last_CSeq:]
      Content-Length: 0
"""


def _refuse(label: str, status: str) -> str:
    return f"""  <label id="{label}"/>
  <send><![CDATA[
      SIP/2.0 {status}
      [last_Via:]
      [last_From:]
      [last_To:];tag=[pid]SIPpTag01[call_number]
      [last_Call-ID:]
      [last_CSeq:]
      Content-Length: 0
    ]]></send>
  <recv request="ACK" next="end"/>
"""


def _kind_tests() -> str:
    lines = []
    for digit, var in (("1", "busy"), ("2", "unavail"), ("3", "fail"), ("4", "ring"),
                       ("5", "optout"), ("7", "machine")):
        lines.append(f'    <strcmp assign_to="s{var}" variable="kind" value="{digit}"/>')
        lines.append(f'    <test assign_to="{var}" variable="s{var}" compare="equal" '
                     f'value="0"/>')
    return "\n".join(lines)


def scenario(folder: Path, *, audio: bool = True) -> Path:
    """Write the pcaps and the scenario into ``folder``; returns the scenario's path.
    ``audio=False``: the answerers answer silently (the dial-rate benchmark, where SIPp would
    otherwise start a player thread per call)."""
    if audio:
        from tests.amd_corpus import build  # reads the recordings: only when asked

        items = {i.name: i for i in build(synthesize=False)}
        silence = np.zeros(8000 * 3, dtype=np.int16)
        human = write_rtp_pcap(np.concatenate([items[HUMAN_ITEM].pcm, silence]),
                               folder / "human.pcap")
        machine = write_rtp_pcap(np.concatenate([items[MACHINE_ITEM].pcm, silence]),
                                 folder / "machine.pcap")
    else:
        human = machine = Path("-")

    def play(pcap: Path) -> str:
        return f'  <nop><action><exec play_pcap_audio="{pcap}"/></action></nop>' if audio else ""

    jumps = "\n".join(f'  <nop next="{v}" test="{v}"/>' for v in
                      ("busy", "unavail", "fail", "ring", "optout", "machine"))
    text = f"""<?xml version="1.0" encoding="ISO-8859-1" ?>
<!DOCTYPE scenario SYSTEM "sipp.dtd">
<scenario name="campaign answerers">
  <recv request="INVITE">
    <action>
    <ereg regexp="^INVITE sip:[^@ ]*([0-9])@" search_in="msg" check_it="true"
          assign_to="all,kind"/>
{_kind_tests()}
    </action>
  </recv>
{jumps}
  <send retrans="500"><![CDATA[{_200}
    ]]></send>
  <recv request="ACK"/>
{play(human)}
  <recv request="BYE"/>
  <send next="end"><![CDATA[{_BYE_200}
    ]]></send>
{_refuse("busy", "486 Busy Here")}
{_refuse("unavail", "480 Temporarily Unavailable")}
{_refuse("fail", "503 Service Unavailable")}
  <label id="ring"/>
  <send><![CDATA[
      SIP/2.0 180 Ringing
      [last_Via:]
      [last_From:]
      [last_To:];tag=[pid]SIPpTag01[call_number]
      [last_Call-ID:]
      [last_CSeq:]
      Content-Length: 0
    ]]></send>
  <recv request="CANCEL"/>
  <send><![CDATA[
      SIP/2.0 200 OK
      [last_Via:]
      [last_From:]
      [last_To:];tag=[pid]SIPpTag01[call_number]
      [last_Call-ID:]
      [last_CSeq:]
      Content-Length: 0
    ]]></send>
  <send><![CDATA[
      SIP/2.0 487 Request Terminated
      [last_Via:]
      [last_From:]
      [last_To:];tag=[pid]SIPpTag01[call_number]
      [last_Call-ID:]
      CSeq: [cseq] INVITE
      Content-Length: 0
    ]]></send>
  <recv request="ACK" next="end"/>
  <label id="optout"/>
  <send retrans="500"><![CDATA[{_200}
    ]]></send>
  <recv request="ACK"/>
{play(human)}
{PAUSE_BEFORE_KEY if audio else ""}
{play(Path(DTMF_1))}
  <recv request="BYE"/>
  <send next="end"><![CDATA[{_BYE_200}
    ]]></send>
  <label id="machine"/>
  <send retrans="500"><![CDATA[{_200}
    ]]></send>
  <recv request="ACK"/>
{play(machine)}
  <recv request="BYE"/>
  <send><![CDATA[{_BYE_200}
    ]]></send>
  <label id="end"/>
  <Reference variables="all,sbusy,sunavail,sfail,sring,soptout,smachine"/>
</scenario>
"""
    path = folder / "uas_campaign.xml"
    path.write_text(text)
    return path


def invites(folder: Path) -> dict[str, list[str]]:
    """Call-ID -> [dialled user part, From user part] of every INVITE SIPp received (its
    message trace; a retransmission has the same Call-ID and counts once)."""
    out: dict[str, list[str]] = {}
    for log in folder.glob("uas_campaign_*_messages.log"):
        for block in re.split(r"^-{10,}.*$", log.read_text(errors="replace"), flags=re.M):
            head, _, msg = block.strip().partition("\n")
            msg = msg.lstrip()
            if "received" not in head or not msg.startswith("INVITE "):
                continue
            to = INVITE_RE.search(msg)
            frm = FROM_RE.search(msg)
            cid = CALL_ID_RE.search(msg)
            if to and cid:
                out[cid.group(1).strip()] = [to.group(1), frm.group(1) if frm else ""]
    return out


def max_overlap(spans: list[tuple[float, float]]) -> int:
    """The most calls at once among (start, end) spans."""
    edges = sorted([(a, 1) for a, _ in spans] + [(b, -1) for _, b in spans])
    best = now = 0
    for _, step in edges:
        now += step
        best = max(best, now)
    return best


def engine_env(tmp_path: Path, uas_port: int, **extra: str) -> dict[str, str]:
    """``ivr run`` dialling the SIPp UAS through one trunk; calling window open all day."""
    rtp = free_port_block(60)
    config = tmp_path / "ivr.toml"
    config.write_text(f"""
[[campaigns.trunks]]
name = "sipp"
uri = "sip:{{number}}@127.0.0.1:{uas_port}"
""")
    return {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "IVR_CONFIG": str(config),
        "IVR_STORAGE__URL": f"sqlite:///{tmp_path}/ivr.sqlite",
        "IVR_STORAGE__RECORDINGS_DIR": str(tmp_path / "rec"),
        "IVR_STORAGE__PROMPT_CACHE_DIR": str(tmp_path / "prompts"),
        "IVR_SIP__LISTEN": f"127.0.0.1:{free_port()}",
        "IVR_RTP__PORT_MIN": str(rtp), "IVR_RTP__PORT_MAX": str(rtp + 58),
        "IVR_METRICS__LISTEN": "", "IVR_CONSOLE__LISTEN": "", "IVR_SIP__DRAIN_S": "0",
        "IVR_SPEAKER__ENCRYPTION_KEY": "", "IVR_CAMPAIGNS__POLL_S": "0.3",
        **extra,
    }


def ivr(env: dict[str, str], *args: str, timeout_s: float = 300
        ) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "app.cli.main", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=timeout_s, check=False)


def start_engine(env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        return subprocess.Popen([sys.executable, "-m", "app.cli.main", "run"], cwd=ROOT,
                                env=env, stdout=out, stderr=subprocess.STDOUT)
