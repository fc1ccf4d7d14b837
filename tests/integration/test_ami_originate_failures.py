"""Originate when Asterisk misbehaves, against the scripted AMI peer (tests/ami_peer.py says why
not the real Asterisk) and the engine's real AudioSocket server: each unanswered call still
gets exactly one record, in the dispositions' vocabulary, and an Originate is never sent twice.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

from core.bus import EventBus
from core.call import Call
from core.clock import FakeClock
from engine.ami.audiosocket import KIND_HANGUP, AudioSocketParser, uuid_message
from engine.ami.client import AmiClient
from engine.ami.codec import AmiMessage
from engine.ami.controller import AsteriskController, AsteriskOptions
from engine.cdr import CallRecord
from engine.cdr_builder import CallRecordBuilder
from engine.rtp.pacer import Pacer
from tests.ami_peer import Peer, client_for, peer
from tests.netutil import wait_until


@dataclass
class Rig:
    peer: Peer
    ami: AmiClient
    controller: AsteriskController
    records: list[CallRecord] = field(default_factory=list)


async def never(call: Call) -> None:
    raise AssertionError("the call must not be answered")


@asynccontextmanager
async def rig(tmp_path: Path, clock: FakeClock, handler: object) -> AsyncIterator[Rig]:
    bus, records = EventBus(), []
    builder = CallRecordBuilder(  # finished calls only (the builder also writes in-progress)
        bus, lambda rec: records.append(rec) if rec.disposition != "in_progress" else None)
    async with peer(handler) as p:  # type: ignore[arg-type]
        ami = client_for(p, clock)
        controller = AsteriskController(
            ami=ami, pacer=Pacer(), clock=clock, router=lambda call: never,
            options=AsteriskOptions(audiosocket_port=0, recordings_dir=tmp_path), bus=bus,
            records=builder)
        await controller.start()
        ami.start()
        await wait_until(lambda: ami.connected, what="login")
        try:
            yield Rig(p, ami, controller, records)
        finally:
            await controller.stop(drain_s=0)
            await ami.close()
            builder.close()


async def test_refused_originate_is_failed_with_asterisks_reason(tmp_path: Path,
                                                                 fake_clock: FakeClock) -> None:
    def handler(msg: AmiMessage, w: asyncio.StreamWriter) -> bool:
        if msg.get("Action") != "Originate":
            return False
        w.write(f"Response: Error\r\nActionID: {msg.action_id}\r\n"
                "Message: Originate failed\r\n\r\n".encode())
        return True

    async with rig(tmp_path, fake_clock, handler) as r:
        rec = await asyncio.wait_for(r.controller.originate("1000", never), 5)
    assert (rec.disposition, rec.hangup_cause, rec.backend) == ("failed", "originate_refused",
                                                                "asterisk")
    assert "Originate failed" in rec.trace[0]["detail"]


async def test_connection_lost_after_originate_is_not_redialled(tmp_path: Path,
                                                                fake_clock: FakeClock) -> None:
    def handler(msg: AmiMessage, w: asyncio.StreamWriter) -> bool:
        if msg.get("Action") != "Originate":
            return False
        w.close()  # Asterisk may have dialled: nobody knows
        return True

    async with rig(tmp_path, fake_clock, handler) as r:
        rec = await asyncio.wait_for(r.controller.originate("1000", never), 5)
        await fake_clock.advance(1.0)  # reconnect
        await wait_until(lambda: r.ami.connected, what="re-login")
        assert len(r.peer.of("Originate")) == 1  # sent once, not again after the re-login
    assert (rec.disposition, rec.hangup_cause) == ("failed", "asterisk_unavailable")
    assert "not re-sent" in rec.trace[0]["detail"]


async def test_ring_timeout_gives_up_and_a_late_answer_is_hung_up(tmp_path: Path,
                                                                  fake_clock: FakeClock) -> None:
    """Asterisk never says anything about the call: after the ring timeout and its margin the
    engine hangs the channel up (no_answer); when that channel answers after all, its
    AudioSocket connection gets the hang-up message instead of a flow."""
    def handler(msg: AmiMessage, w: asyncio.StreamWriter) -> bool:
        if msg.get("Action") not in ("Originate", "Hangup"):
            return False
        w.write(f"Response: Success\r\nActionID: {msg.action_id}\r\n\r\n".encode())
        return True  # queued; then not a word about the call

    async with rig(tmp_path, fake_clock, handler) as r:
        task = asyncio.ensure_future(r.controller.originate("1000", never, ring_timeout_s=10))
        await wait_until(lambda: bool(r.peer.of("Originate")), what="originate sent")
        originate = r.peer.of("Originate")[0]
        call_id = originate.get("ChannelId")
        assert originate.get("Data").startswith(call_id)  # the AudioSocket UUID is the call's
        # the engine may not have armed its ring timer yet when SIPp-side sees the Originate
        # (a loaded box): move the clock a second at a time, not once past the deadline
        for _ in range(60):
            if task.done():
                break
            await fake_clock.advance(1)
            await asyncio.sleep(0.02)
        rec = await asyncio.wait_for(task, 5)
        assert (rec.disposition, rec.hangup_cause, rec.hangup_side) == ("no_answer",
                                                                         "no_answer", "engine")
        assert [h.get("Channel") for h in r.peer.of("Hangup")] == [call_id]
        assert r.controller.address is not None
        reader, writer = await asyncio.open_connection(*r.controller.address)
        writer.write(uuid_message(call_id))
        got = AudioSocketParser().feed(await asyncio.wait_for(reader.read(3), 5))
        assert [m.kind for m in got] == [KIND_HANGUP]
        assert await asyncio.wait_for(reader.read(), 5) == b""  # and closed
        writer.close()
    assert len(r.records) == 1  # the late answer made no second record


async def test_a_redirect_whose_channel_leaves_before_the_answer_is_transferred(
        tmp_path: Path, fake_clock: FakeClock) -> None:
    """Asterisk moves the channel (its AudioSocket closes) before it answers the Redirect
    action, as it may on a loaded box: the flow still gets "transferred", not a hang-up."""
    loop = asyncio.get_running_loop()
    results: list[str] = []
    socket: list[asyncio.StreamWriter] = []

    async def app(call: Call) -> None:
        results.append((await call.transfer("sip:agents@pbx.example")).status)

    def handler(msg: AmiMessage, w: asyncio.StreamWriter) -> bool:
        action = msg.get("Action")
        if action not in ("Originate", "Setvar", "Redirect"):
            return False
        reply = f"Response: Success\r\nActionID: {msg.action_id}\r\n\r\n".encode()
        if action == "Redirect":
            socket[0].close()  # the channel leaves the AudioSocket application first
            loop.call_later(0.3, w.write, reply)
        else:
            w.write(reply)
        return True

    async with rig(tmp_path, fake_clock, handler) as r:
        task = asyncio.ensure_future(r.controller.originate("1000", app, ring_timeout_s=10))
        await wait_until(lambda: bool(r.peer.of("Originate")), what="originate sent")
        call_id = r.peer.of("Originate")[0].get("ChannelId")
        assert r.controller.address is not None
        _, writer = await asyncio.open_connection(*r.controller.address)
        socket.append(writer)
        writer.write(uuid_message(call_id))  # the channel answered: its AudioSocket connects
        rec = await asyncio.wait_for(task, 10)
    assert results == ["transferred"]
    assert (rec.hangup_cause, rec.hangup_side) == ("transferred", "engine")
    assert [m.get("Exten") for m in r.peer.of("Redirect")] == ["agents"]
