"""The Asterisk backend's media path over real TCP, with the test in Asterisk's place on the
AudioSocket side (AMI absent): what the engine sends is paced at 20 ms and carries the prompt,
keys reach the flow in order, a caller's EOF or a framing error ends one call and not another,
and the call record is the SIP backend's record with ``backend = asterisk``.

The test speaks AudioSocket itself rather than through Asterisk to control timing and send
malformed bytes; the same paths against the real Asterisk are in test_asterisk_calls.py.
"""

from __future__ import annotations

import asyncio
import time
import uuid
import wave
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from app.loop import run as run_loop
from audio.tones import tone
from core.bus import EventBus
from core.call import Call, CallHungUp, DigitSpec
from core.clock import SystemClock
from core.tasks import TaskScope
from engine.ami.audiosocket import (
    KIND_AUDIO,
    KIND_HANGUP,
    AudioSocketParser,
    audio_message,
    dtmf_message,
    uuid_message,
)
from engine.ami.controller import AsteriskController, AsteriskOptions
from engine.cdr import CallRecord
from engine.cdr_builder import CallRecordBuilder
from engine.rtp.pacer import Pacer
from tests.integration.engine_harness import dominant_hz
from tests.netutil import wait_until


@dataclass
class Rig:
    controller: AsteriskController
    records: list[CallRecord] = field(default_factory=list)
    digits: list[str] = field(default_factory=list)


async def keypad_app(call: Call, rig: Rig) -> None:
    await call.play(tone(440, 1.0))
    got = await call.collect_digits(DigitSpec(max_digits=2, terminator=None,
                                              first_digit_timeout_s=5))
    rig.digits.append(got.digits)
    await call.hangup()


@asynccontextmanager
async def rig(tmp_path: Path, **options: Any) -> AsyncIterator[Rig]:
    clock = SystemClock()
    bus = EventBus()
    pacer = Pacer()
    scope = TaskScope("test-pacer")
    scope.spawn(pacer.run(clock), "pacer")
    records: list[CallRecord] = []  # finished calls (the builder also writes in-progress ones)
    builder = CallRecordBuilder(
        bus, lambda rec: records.append(rec) if rec.disposition != "in_progress" else None)
    r = Rig(controller=None, records=records)  # type: ignore[arg-type]

    async def app(call: Call) -> None:
        try:
            await keypad_app(call, r)
        except CallHungUp:
            pass

    r.controller = AsteriskController(
        ami=None, pacer=pacer, clock=clock, router=lambda call: app,
        options=AsteriskOptions(audiosocket_port=0, record_calls=True,
                                recordings_dir=tmp_path / "rec", **options),
        bus=bus, records=builder)
    await r.controller.start()
    try:
        yield r
    finally:
        await r.controller.stop(drain_s=1.0)
        pacer.stop()
        await scope.close()
        builder.close()


class FakeAsteriskSide:
    """Asterisk's end of one AudioSocket connection: sends the UUID and 20 ms frames in real
    time, records what the engine sends with arrival times."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
        self.audio: list[tuple[float, bytes]] = []
        self.hangup = asyncio.Event()
        self.eof = asyncio.Event()

    async def read(self) -> None:
        parser = AudioSocketParser()
        try:
            while data := await self.reader.read(4096):
                for msg in parser.feed(data):
                    if msg.kind == KIND_AUDIO:
                        self.audio.append((time.monotonic(), msg.payload))
                    elif msg.kind == KIND_HANGUP:
                        self.hangup.set()
        except ConnectionResetError:
            # the engine closed after its hang-up message while our frames were still in
            # flight to it: the kernel resets rather than ends such a connection
            pass
        self.eof.set()

    async def talk(self, seconds: float) -> None:
        frame = audio_message(np.zeros(160, np.int16).tobytes())
        for _ in range(int(seconds / 0.02)):
            self.writer.write(frame)
            await asyncio.sleep(0.02)


async def connect(controller: AsteriskController) -> FakeAsteriskSide:
    assert controller.address is not None
    reader, writer = await asyncio.open_connection(*controller.address)
    side = FakeAsteriskSide(reader, writer)
    writer.write(uuid_message(str(uuid.uuid4())))
    return side


async def test_prompt_paced_keys_in_order_engine_hangs_up(tmp_path: Path) -> None:
    await prompt_paced_keys_in_order(tmp_path)


def test_the_same_on_uvloop(tmp_path: Path) -> None:
    """``ivr run`` runs on uvloop (runtime.event_loop = auto), whose transports are not
    asyncio's classes: the AudioSocket server must take them as they are."""
    run_loop(prompt_paced_keys_in_order(tmp_path), "uvloop")


async def prompt_paced_keys_in_order(tmp_path: Path) -> None:
    async with rig(tmp_path) as r:
        side = await connect(r.controller)
        reading = asyncio.ensure_future(side.read())
        talking = asyncio.ensure_future(side.talk(3.0))
        await asyncio.sleep(1.3)
        side.writer.write(dtmf_message("4") + dtmf_message("2"))
        await asyncio.wait_for(side.hangup.wait(), 5)
        talking.cancel()
        side.writer.close()
        await asyncio.wait_for(reading, 5)
        await wait_until(lambda: bool(r.records), what="the call record")
    assert r.digits == ["42"]
    pcm = np.frombuffer(b"".join(p for _, p in side.audio), "<i2")
    assert abs(dominant_hz(pcm[:3200]) - 440) < 10  # the prompt came first
    arrivals = np.array([t for t, _ in side.audio])
    gaps = np.diff(arrivals) * 1000
    assert len(arrivals) > 55 and np.percentile(gaps, 50) == pytest.approx(20, abs=4)
    (rec,) = r.records
    assert (rec.backend, rec.direction, rec.disposition) == ("asterisk", "inbound", "answered")
    assert (rec.hangup_cause, rec.hangup_side, rec.digits) == ("normal", "engine", "42")
    assert rec.codec == "slin" and rec.media["dtmf_rx"] == 2
    assert rec.recording_path is not None
    with wave.open(rec.recording_path) as w:  # caller left, engine right
        frames = np.frombuffer(w.readframes(w.getnframes()), np.int16).reshape(-1, 2)
    assert abs(dominant_hz(frames[:8000, 1]) - 440) < 10 and np.abs(frames[:, 0]).max() == 0
    kinds = [e["kind"] for e in rec.trace]
    assert kinds.index("play.end") < kinds.index("digits") < kinds.index("hangup")


async def test_caller_eof_ends_the_call_and_framing_error_ends_only_its_own(
        tmp_path: Path) -> None:
    async with rig(tmp_path) as r:
        good = await connect(r.controller)
        bad = await connect(r.controller)
        reading = asyncio.ensure_future(good.read())
        await wait_until(lambda: len(r.controller.calls) == 2, what="two calls")
        bad.writer.write(b"\x42\x00\x00")  # no such message kind
        await wait_until(lambda: len(r.records) == 1, what="the broken call's record")
        assert len(r.controller.calls) == 1
        # the caller hangs up: Asterisk ends the stream (a FIN; a close() with the engine's
        # frames still unread by a busy test process would be a reset instead)
        good.writer.write_eof()
        await asyncio.wait_for(reading, 5)
        await wait_until(lambda: len(r.records) == 2, what="the second record")
    broken, hung_up = r.records
    assert (broken.hangup_cause, broken.hangup_side) == ("media_error", "system")
    assert (hung_up.hangup_cause, hung_up.hangup_side) == ("normal", "caller")
    assert all(rec.backend == "asterisk" for rec in r.records)


async def test_connections_from_elsewhere_or_beyond_the_cap_are_refused(tmp_path: Path) -> None:
    """AudioSocket has no credentials: a connection from outside asterisk.audiosocket_allow is
    dropped at once, before any call exists; beyond asterisk.max_calls a call is refused (so
    Asterisk's dialplan goes on) while the calls already in are untouched."""
    async with rig(tmp_path, audiosocket_allow=("10.9.9.9/32",)) as r:
        side = await connect(r.controller)
        await asyncio.wait_for(side.read(), 5)  # closed by the engine
        assert r.controller.server.refused["untrusted"] == 1 and not r.controller.calls
    async with rig(tmp_path, max_calls=1) as r:
        first = await connect(r.controller)
        reading = asyncio.ensure_future(first.read())
        await wait_until(lambda: len(r.controller.calls) == 1, what="the first call")
        second = await connect(r.controller)
        await asyncio.wait_for(second.read(), 5)
        assert r.controller.server.refused["full"] == 1
        assert len(r.controller.calls) == 1 and not reading.done()  # the first goes on
        first.writer.write_eof()
        await asyncio.wait_for(reading, 5)
        await wait_until(lambda: len(r.records) == 1, what="the first call's record")
    assert r.records[0].hangup_cause == "normal"
