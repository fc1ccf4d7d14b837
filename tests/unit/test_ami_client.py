"""The AMI client's connection handling against a scripted AMI peer on loopback.

A scripted peer, not the real Asterisk, on purpose: these tests need a server that stops
answering Pings, drops the connection right after an Originate was written but before its
response, or answers in a chosen order; the real Asterisk (tests/integration/test_asterisk_*)
cannot be made to do those things on cue. Timers run on a FakeClock.
"""

from __future__ import annotations

import asyncio

import pytest

from core.clock import FakeClock
from engine.ami.client import (
    AmiActionFailed,
    AmiConnectionLost,
    AmiLoginFailed,
    AmiSettings,
    AmiTimeout,
    check_login,
)
from engine.ami.codec import AmiMessage
from engine.ami.events import AmiEvent, HangupEvent
from tests.ami_peer import client_for, peer
from tests.netutil import wait_until


async def test_md5_login_filters_and_typed_events(fake_clock: FakeClock) -> None:
    async with peer() as p:
        client = client_for(p, fake_clock)
        seen: list[AmiEvent] = []
        client.on_event("Hangup", seen.append)
        client.start()
        await wait_until(lambda: client.connected, what="login")
        login = p.of("Login")[0]
        assert login.get("AuthType") == "MD5" and "Secret" not in login  # never in clear
        assert login.get("Events") == "call,dialplan,system"
        assert len(p.of("Filter")) == 6
        p.writers[0].write(b"Event: Newexten\r\nChannel: x\r\n\r\n"
                           b"Event: Hangup\r\nUniqueid: 1.1\r\nCause: 16\r\n\r\n")
        await wait_until(lambda: bool(seen), what="event")
        assert isinstance(seen[0], HangupEvent) and seen[0].cause == 16
        assert client.stats.events_dropped == 1  # Newexten: nobody listens
        await client.close()


async def test_wrong_secret_is_a_clear_login_error(fake_clock: FakeClock) -> None:
    async with peer() as p:
        settings = AmiSettings(port=p.port, username="ivr", secret="wrong", connect_timeout_s=2)
        with pytest.raises(AmiLoginFailed, match="refused: Authentication failed"):
            await check_login(settings, fake_clock)


async def test_error_response_raises_with_asterisks_message(fake_clock: FakeClock) -> None:
    def handler(msg: AmiMessage, w: asyncio.StreamWriter) -> bool:
        if msg.get("Action") != "Hangup":
            return False
        w.write(f"Response: Error\r\nActionID: {msg.action_id}\r\n"
                "Message: No such channel\r\n\r\n".encode())
        return True

    async with peer(handler) as p:
        client = client_for(p, fake_clock)
        client.start()
        await wait_until(lambda: client.connected, what="login")
        with pytest.raises(AmiActionFailed, match="Hangup: No such channel"):
            await client.send("Hangup", [("Channel", "PJSIP/x")])
        await client.close()


async def test_reconnects_relogs_in_and_resends_what_was_not_answered(
        fake_clock: FakeClock) -> None:
    """A Ping (safe to repeat) in flight when the connection drops is sent again after the
    re-login; an Originate in flight fails instead (it may have run: never dial twice)."""
    hold = True

    def handler(msg: AmiMessage, w: asyncio.StreamWriter) -> bool:
        if msg.get("Action") in ("Ping", "Originate") and hold:
            return True  # no answer: the connection drops first
        if msg.get("Action") == "Ping":
            w.write(f"Response: Success\r\nActionID: {msg.action_id}\r\nPing: Pong\r\n\r\n"
                    .encode())
            return True
        return False

    async with peer(handler) as p:
        client = client_for(p, fake_clock, reconnect_min_s=0.5)
        states: list[tuple[bool, str]] = []
        client.on_connection(lambda up, why: states.append((up, why)))
        client.start()
        await wait_until(lambda: client.connected, what="login")
        ping = asyncio.ensure_future(client.send("Ping", timeout_s=60))
        orig = asyncio.ensure_future(client.send("Originate", [("Channel", "PJSIP/1")],
                                                 timeout_s=60, retry_safe=False))
        await wait_until(lambda: len(p.of("Originate")) == 1, what="originate written")
        hold = False
        p.drop()
        await wait_until(lambda: not client.connected, what="loss seen")
        with pytest.raises(AmiConnectionLost, match="not re-sent, it may have run"):
            await orig
        await fake_clock.advance(1.0)  # the reconnect delay
        await wait_until(lambda: client.connected, what="re-login")
        result = await ping
        assert result.response.get("Ping") == "Pong"
        assert p.connections == 2 and len(p.of("Login")) == 2
        assert len(p.of("Ping")) == 2 and len(p.of("Originate")) == 1
        assert [s[0] for s in states] == [True, False, True]
        await client.close()


async def test_actions_queue_while_down_and_go_after_login(fake_clock: FakeClock) -> None:
    async with peer() as p:
        client = client_for(p, fake_clock)
        pending = asyncio.ensure_future(client.send("Ping", timeout_s=30))
        await asyncio.sleep(0)
        assert not pending.done()
        client.start()
        await asyncio.wait_for(pending, 5)
        await client.close()


async def test_unanswered_action_times_out_on_the_clock(fake_clock: FakeClock) -> None:
    async with peer(lambda msg, w: msg.get("Action") == "Status") as p:
        client = client_for(p, fake_clock)
        client.start()
        await wait_until(lambda: client.connected, what="login")
        fut = asyncio.ensure_future(client.send("Status", timeout_s=3))
        await wait_until(lambda: bool(p.of("Status")), what="status written")
        await fake_clock.advance(3.1)
        with pytest.raises(AmiTimeout, match="Status: no response"):
            await fut
        await client.close()


async def test_silent_peer_is_dropped_after_the_keepalive(fake_clock: FakeClock) -> None:
    """Nothing arrives for ping_interval_s: a Ping; no Pong within ping_timeout_s: the
    connection is dropped and a new one made (a half-open TCP connection would hang)."""
    async with peer(lambda msg, w: msg.get("Action") == "Ping") as p:
        client = client_for(p, fake_clock, ping_interval_s=10, ping_timeout_s=2,
                            reconnect_min_s=0.5)
        client.start()
        await wait_until(lambda: client.connected, what="login")
        await fake_clock.advance(10.5)
        await wait_until(lambda: bool(p.of("Ping")), what="keep-alive ping")
        await fake_clock.advance(2.5)
        await wait_until(lambda: not client.connected, what="drop")
        await fake_clock.advance(1.0)
        await wait_until(lambda: p.connections == 2 and client.connected, what="reconnect")
        await client.close()


async def test_event_flood_is_read_in_bounded_slices(fake_clock: FakeClock) -> None:
    """100,000 VarSet events of a variable nobody asked for (the listener wants IVR_* only)
    and two that matter: all read, the two delivered, the rest dropped unparsed, and the loop
    ran other work while the reader worked through them."""
    async with peer() as p:
        client = client_for(p, fake_clock)
        got: list[AmiEvent] = []
        client.on_event("Hangup", got.append)
        client.on_event("VarSet", got.append, containing=b"Variable: IVR_")
        client.start()
        await wait_until(lambda: client.connected, what="login")
        ticks = 0

        async def ticker() -> None:
            nonlocal ticks
            while True:
                ticks += 1
                await asyncio.sleep(0)

        t = asyncio.ensure_future(ticker())
        flood = b"Event: VarSet\r\nChannel: Local/x\r\nVariable: i\r\nValue: 1\r\n\r\n" * 100_000
        p.writers[0].write(flood + b"Event: VarSet\r\nVariable: IVR_UUID\r\nValue: u\r\n\r\n"
                           b"Event: Hangup\r\nUniqueid: 9.9\r\nCause: 17\r\n\r\n")
        await wait_until(lambda: len(got) == 2, timeout_s=30, what="the events after the flood")
        t.cancel()
        assert [e.event for e in got] == ["VarSet", "Hangup"]
        assert client.stats.events_dropped == 100_000 and client.stats.events_delivered == 2
        assert ticks > 20  # the reader yielded between slices
        await client.close()
