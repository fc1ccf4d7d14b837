"""Write 8 kHz PCM as an RTP/PCMA capture SIPp can play (``play_pcap_audio``), and a caller
scenario that plays it, then waits for the engine's BYE.

SIPp replays the UDP payloads of a pcap at their recorded pace to the negotiated media address;
it reads Ethernet/IPv4/UDP framing, so each 20 ms packet is wrapped in minimal headers (checksums
zero: SIPp does not check them).
"""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np

from audio.g711 import alaw_encode
from audio.pcm import FRAME_SAMPLES, Pcm, frames

PCMA_PT = 8


def write_rtp_pcap(pcm: Pcm, path: Path, ssrc: int = 0x1234ABCD) -> Path:
    out = [struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1)]
    for i, frame in enumerate(frames(np.asarray(pcm, dtype=np.int16))):
        rtp = struct.pack("!BBHII", 0x80, PCMA_PT, i & 0xFFFF, i * FRAME_SAMPLES, ssrc)
        payload = rtp + alaw_encode(frame)
        udp = struct.pack("!HHHH", 6000, 6002, 8 + len(payload), 0) + payload
        ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), i & 0xFFFF, 0, 64, 17, 0,
                         bytes([127, 0, 0, 1]), bytes([127, 0, 0, 1])) + udp
        eth = b"\x00" * 12 + b"\x08\x00" + ip
        usec = i * 20_000
        out.append(struct.pack("<IIII", usec // 1_000_000, usec % 1_000_000, len(eth), len(eth)))
        out.append(eth)
    path.write_bytes(b"".join(out))
    return path


def caller_scenario(pcap: Path, dest: Path) -> Path:
    """INVITE offering PCMA, play ``pcap``, then answer the engine's BYE."""
    dest.write_text(f"""<?xml version="1.0" encoding="ISO-8859-1" ?>
<!DOCTYPE scenario SYSTEM "sipp.dtd">
<scenario name="caller plays a recording">
  <send retrans="500"><![CDATA[
      INVITE sip:[service]@[remote_ip]:[remote_port] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      From: sipp <sip:sipp@[local_ip]:[local_port]>;tag=[pid]SIPpTag00[call_number]
      To: [service] <sip:[service]@[remote_ip]:[remote_port]>
      Call-ID: [call_id]
      CSeq: 1 INVITE
      Contact: sip:sipp@[local_ip]:[local_port]
      Max-Forwards: 70
      Content-Type: application/sdp
      Content-Length: [len]

      v=0
      o=user1 53655765 2353687637 IN IP[local_ip_type] [local_ip]
      s=-
      c=IN IP[media_ip_type] [media_ip]
      t=0 0
      m=audio [media_port] RTP/AVP 8 101
      a=rtpmap:8 PCMA/8000
      a=rtpmap:101 telephone-event/8000
      a=fmtp:101 0-15
    ]]></send>
  <recv response="100" optional="true"/>
  <recv response="180" optional="true"/>
  <recv response="200" rtd="true"/>
  <send><![CDATA[
      ACK sip:[service]@[remote_ip]:[remote_port] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      From: sipp <sip:sipp@[local_ip]:[local_port]>;tag=[pid]SIPpTag00[call_number]
      To: [service] <sip:[service]@[remote_ip]:[remote_port]>[peer_tag_param]
      Call-ID: [call_id]
      CSeq: 1 ACK
      Contact: sip:sipp@[local_ip]:[local_port]
      Max-Forwards: 70
      Content-Length: 0
    ]]></send>
  <nop><action><exec play_pcap_audio="{pcap}"/></action></nop>
  <recv request="BYE" timeout="40000"/>
  <send><![CDATA[
      SIP/2.0 200 OK
      [last_Via:]
      [last_From:]
      [last_To:]
      [last_Call-ID:]
      [last_CSeq:]
      Content-Length: 0
    ]]></send>
</scenario>
""")
    return dest
