"""An engine wired to the test session's real Asterisk, SIPp callers into Asterisk, and what
the caller heard (an RTP sink where the caller's SDP says it listens)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import numpy as np

from app.engine import Engine
from audio.g711 import ulaw_decode
from engine.rtp.packet import parse as parse_rtp
from tests.asterisk import Asterisk
from tests.integration.engine_harness import RtpSink, running_engine
from tests.netutil import free_port, free_port_block
from tests.sipp import SippResult, run_sipp_async

FIXTURES = Path(__file__).parent.parent / "fixtures" / "sipp"
AMI_CONNECT_S = 20.0


@asynccontextmanager
async def asterisk_engine(tmp_path: Path, asterisk: Asterisk,
                          router: Callable[[Any], Any] | None = None,
                          **overrides: str) -> AsyncIterator[Engine]:
    """A whole engine (SIP too) whose Asterisk backend uses ``asterisk``; AMI logged in."""
    env = {**asterisk.engine_env(), **overrides}
    async with running_engine(tmp_path, router, **env) as engine:  # type: ignore[arg-type]
        assert engine.ami is not None and engine.asterisk is not None
        ok = await engine.ami.wait_connected(AMI_CONNECT_S)
        assert ok, f"AMI login failed: {engine.ami.stats.last_error}\n{asterisk.log()[-3000:]}"
        yield engine


def caller_scenario(tmp_path: Path, *, pcap: Path, hold_ms: int, sink_port: int,
                    caller: str = "13800138000", caller_name: str = "caller") -> Path:
    text = (FIXTURES / "uac_asterisk.xml.tmpl").read_text(encoding="utf-8")
    for key, value in {"pcap": str(pcap), "hold_ms": str(hold_ms), "sink_port": str(sink_port),
                       "caller": caller, "caller_name": caller_name}.items():
        text = text.replace("{" + key + "}", value)
    path = tmp_path / f"uac_asterisk_{sink_port}.xml"
    path.write_bytes(text.encode("utf-8"))
    return path


async def open_caller_sink() -> tuple[RtpSink, asyncio.DatagramTransport, int]:
    """The RTP sink named in the caller's SDP (even port, RTCP above it left free)."""
    port = free_port_block(2)
    loop = asyncio.get_running_loop()
    transport, proto = await loop.create_datagram_endpoint(RtpSink,
                                                           local_addr=("127.0.0.1", port))
    return proto, transport, port


async def call_asterisk(asterisk: Asterisk, tmp_path: Path, scenario: Path, *,
                        dialled: str = "4000", limit_s: float = 90) -> SippResult:
    return await run_sipp_async(
        f"127.0.0.1:{asterisk.sip_port}", scenario, local_port=free_port(), workdir=tmp_path,
        extra=["-m", "1", "-s", dialled, "-mp", str(free_port_block(4))], limit_s=limit_s)


def heard(sink: RtpSink) -> np.ndarray:
    """The PCMU audio the sink received, in sequence order."""
    packets = []
    for _, data in sink.packets:
        try:
            pkt = parse_rtp(data)
        except ValueError:
            continue
        if pkt.payload_type == 0:
            packets.append((pkt.sequence, pkt.payload))
    packets.sort()
    return (np.concatenate([ulaw_decode(p) for _, p in packets]) if packets
            else np.zeros(0, np.int16))


def best_correlation(needle: np.ndarray, haystack: np.ndarray) -> float:
    """Max normalised cross-correlation of ``needle`` anywhere in ``haystack``: about 1 when
    the caller heard exactly what the engine sent (through Asterisk's transcoding)."""
    a = needle.astype(np.float64) - needle.mean()
    b = haystack.astype(np.float64)
    if len(a) == 0 or len(b) < len(a) or not a.any():
        return 0.0
    n = len(b) + len(a)
    size = 1 << (n - 1).bit_length()
    corr = np.fft.irfft(np.fft.rfft(b, size) * np.conj(np.fft.rfft(a, size)), size)[
        : len(b) - len(a) + 1]
    windows = np.convolve(b * b, np.ones(len(a)), "valid")
    sums = np.convolve(b, np.ones(len(a)), "valid")
    energy = np.sqrt(np.maximum(windows - sums * sums / len(a), 1e-9) * float((a * a).sum()))
    return float(np.max(corr / energy))
