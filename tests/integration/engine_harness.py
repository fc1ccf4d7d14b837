"""Start a whole engine (SIP, media, pacer, CDR) on free loopback ports for integration tests."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from app.config import load_settings
from app.engine import Engine
from core.call import CallHungUp, DigitSpec, ListenResult, ListenSpec
from core.clock import Clock
from engine.controller import CallApp
from engine.sipcall import SipCall
from storage.tenancy import EVERY_TENANT
from tests.netutil import free_port, free_port_block


@dataclass
class Seen:
    """What the test application observed, per call."""

    digits: list[str] = field(default_factory=list)
    calls: list[SipCall] = field(default_factory=list)
    done: asyncio.Event = field(default_factory=asyncio.Event)


def collecting_app(seen: Seen, prompt: Any = None) -> CallApp:
    """Answer, optionally play ``prompt`` (no barge-in), then collect digits until hang-up."""

    async def app(call: SipCall) -> None:
        seen.calls.append(call)
        try:
            await call.answer()
            if prompt is not None:
                await call.play(prompt)
            while True:
                got = await call.collect_digits(DigitSpec(max_digits=1, terminator=None,
                                                          first_digit_timeout_s=60))
                seen.digits.append(got.digits)
        except CallHungUp:
            pass
        finally:
            seen.done.set()

    return app


@asynccontextmanager
async def running_engine(tmp_path: Path, router: Callable[[SipCall], CallApp],
                         clock: Clock | None = None, **overrides: str) -> AsyncIterator[Engine]:
    port = free_port()
    rtp = free_port_block(200)
    env = {
        "IVR_SIP__LISTEN": f"127.0.0.1:{port}",
        "IVR_STORAGE__URL": f"sqlite:///{tmp_path}/ivr.sqlite",
        "IVR_STORAGE__RECORDINGS_DIR": str(tmp_path / "recordings"),
        "IVR_STORAGE__PROMPT_CACHE_DIR": str(tmp_path / "prompts"),
        "IVR_RTP__PORT_MIN": str(rtp),
        "IVR_RTP__PORT_MAX": str(rtp + 198),
        "IVR_SIP__DRAIN_S": "1",
        "IVR_METRICS__LISTEN": "127.0.0.1:0",
    }
    env.update(overrides)
    engine = Engine(load_settings(environ=env), router=router, clock=clock)
    await engine.start()
    try:
        yield engine
    finally:
        await engine.stop(drain_s=1.0)


class ToneSpeech:
    """A speech double for tests about routing, records and events, not voices: prompts become
    300 ms tones and are remembered; nobody speaks (listen reports an error)."""

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


def sip_target(engine: Engine) -> str:
    host, port = engine.addresses["udp"]
    return f"{host}:{port}"


class RtpSink(asyncio.DatagramProtocol):
    """Receives what the engine sends, with arrival times (the test's own clock)."""

    def __init__(self) -> None:
        self.packets: list[tuple[float, bytes]] = []

    def datagram_received(self, data: bytes, addr: Any) -> None:
        self.packets.append((asyncio.get_running_loop().time(), data))


async def open_sink() -> tuple[RtpSink, asyncio.DatagramTransport, int]:
    port = free_port_block(2)
    loop = asyncio.get_running_loop()
    transport, proto = await loop.create_datagram_endpoint(
        RtpSink, local_addr=("127.0.0.1", port), family=socket.AF_INET)
    return proto, transport, port


def dominant_hz(pcm: np.ndarray, rate: int = 8000) -> float:
    spectrum = np.abs(np.fft.rfft(pcm.astype(np.float64) * np.hanning(len(pcm))))
    return float(np.argmax(spectrum) * rate / len(pcm))


async def baresip_flow_call(tmp_path: Path, flow: Path, wav: Path, **overrides: str) -> Any:
    """One call from a real softphone (baresip, ``wav`` as its microphone) into an engine
    running ``flow`` as its default flow; returns the call record once it is written.

    The recogniser's final may take up to 5 s here (the product's 1.5 s budget is measured by
    tests/bench/bench_turns.py): these tests check what was understood, and on a 2-core box
    running the suite on both cores a final has missed 1.5 s (listen status ``error``)."""
    from tests.baresip import Baresip

    overrides = {"IVR_ASR__FINAL_TIMEOUT_S": "5", **overrides}
    async with running_engine(tmp_path, None, IVR_FLOWS__DEFAULT_FLOW=str(flow),  # type: ignore[arg-type]
                              **overrides) as engine:
        ended = engine.bus.subscribe("call.ended")
        async with Baresip(tmp_path / "baresip", wav, dial=f"sip:ivr@{sip_target(engine)}",
                           quit_after_s=45) as phone:
            await asyncio.wait_for(ended.queue.get(), 40)
            await phone.quit()
        await engine.wait_idle(timeout_s=20)
        assert engine.records is not None
        (rec,) = engine.records.list(tenants=EVERY_TENANT)
    return rec
