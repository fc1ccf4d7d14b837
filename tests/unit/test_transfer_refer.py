"""Blind transfer decisions (RFC 3515 / RFC 5589) on a SipCall with a scripted dialog and an
injected clock: the REFER's answer and the NOTIFY's sipfrag (delivered to the dialog's handler,
as the SIP layer does) decide "transferred" or a bridge."""

from __future__ import annotations

import asyncio
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from core.call import TransferResult
from core.clock import FakeClock
from engine.media.prompts import PromptCache
from engine.sip.invite import SessionEnd
from engine.sip.message import Headers, SipResponse
from engine.sipcall import REFER_NOTIFY_WAIT_S, SipCall, sipfrag_status


class ScriptedSession:
    """An outbound dialog whose REFER gets ``status``; records the BYE."""

    direction = "outbound"

    def __init__(self, status: int) -> None:
        self.status = status
        self.handler: Any = None
        self.ended: asyncio.Future[SessionEnd] = asyncio.get_running_loop().create_future()
        self.referred: list[str] = []

    @property
    def active(self) -> bool:
        return not self.ended.done()

    async def refer(self, target: str) -> SipResponse:
        self.referred.append(target)
        return SipResponse(self.status)

    async def bye(self, cause: str = "normal") -> None:
        if not self.ended.done():
            self.ended.set_result(SessionEnd(cause, "engine"))


def notify(body: bytes, event: str = "refer") -> SimpleNamespace:
    return SimpleNamespace(headers=Headers([("Event", event)]), body=body)


def make_call(status: int, clock: FakeClock, bridged: list[str]) -> tuple[SipCall, ScriptedSession]:
    session = ScriptedSession(status)
    media = SimpleNamespace(on_dtmf=None, playout=SimpleNamespace(stop_all=lambda reason: None))

    async def bridge(call: SipCall, target: str) -> TransferResult:
        bridged.append(target)
        return TransferResult("bridged", target)

    call = SipCall(call_id="c", caller="a", callee="b", session=session, media=media,  # type: ignore[arg-type]
                   clock=clock, prompts=PromptCache(), local_ip="127.0.0.1", answer_sdp=None,
                   on_answer=lambda c: None, recordings_dir=Path("."), transfer_bridge=bridge)
    return call, session


async def test_final_notify_200_transfers_at_once(fake_clock: FakeClock) -> None:
    bridged: list[str] = []
    call, session = make_call(202, fake_clock, bridged)
    task = asyncio.ensure_future(call.transfer("sip:agent@x"))
    await asyncio.sleep(0)
    session.handler.on_notify(notify(b"SIP/2.0 100 Trying\r\n"))  # provisional: keep waiting
    await asyncio.sleep(0)
    assert not task.done()
    session.handler.on_notify(notify(b"SIP/2.0 200 OK\r\n"))
    assert await asyncio.wait_for(task, 1) == TransferResult(
        "transferred", "REFER accepted (202), NOTIFY 200")
    assert session.referred == ["sip:agent@x"] and not session.active and bridged == []


async def test_no_notify_hangs_up_after_the_wait(fake_clock: FakeClock) -> None:
    bridged: list[str] = []
    call, session = make_call(202, fake_clock, bridged)
    task = asyncio.ensure_future(call.transfer("sip:agent@x"))
    for _ in range(50):  # the REFER is answered; the transfer starts waiting for a NOTIFY
        if fake_clock.pending:
            break
        await asyncio.sleep(0)
    assert fake_clock.pending == 1
    await fake_clock.advance(REFER_NOTIFY_WAIT_S - 0.1)
    assert not task.done() and session.active
    await fake_clock.advance(0.2)
    assert await asyncio.wait_for(task, 1) == TransferResult(
        "transferred", "REFER accepted (202), NOTIFY none")
    assert not session.active


async def test_failed_notify_bridges_instead(fake_clock: FakeClock) -> None:
    bridged: list[str] = []
    call, session = make_call(202, fake_clock, bridged)
    task = asyncio.ensure_future(call.transfer("sip:agent@x"))
    await asyncio.sleep(0)
    # not the refer subscription:
    session.handler.on_notify(notify(b"SIP/2.0 200 OK", event="dialog"))
    session.handler.on_notify(notify(b"SIP/2.0 486 Busy Here\r\n"))
    assert (await asyncio.wait_for(task, 1)).status == "bridged"
    assert bridged == ["sip:agent@x"] and session.active  # our leg stays up for the bridge


async def test_refused_refer_bridges(fake_clock: FakeClock) -> None:
    bridged: list[str] = []
    call, session = make_call(603, fake_clock, bridged)
    assert (await call.transfer("sip:agent@x")).status == "bridged"
    assert bridged == ["sip:agent@x"] and session.active


@pytest.mark.parametrize(("body", "status"), [
    (b"SIP/2.0 200 OK\r\n", 200),
    (b"SIP/2.0 100 Trying", 100),
    (b"\r\nSIP/2.0 486 Busy Here\r\nContent-Length: 0\r\n", 486),
])
def test_sipfrag_status_line(body: bytes, status: int) -> None:
    assert sipfrag_status(body) == status


@pytest.mark.parametrize("body", [b"", b"SIP/2.0", b"SIP/3.0 200 OK", b"SIP/2.0 OK 200",
                                  b"INVITE sip:a@b SIP/2.0"])
def test_sipfrag_not_a_status_line(body: bytes) -> None:
    assert sipfrag_status(body) is None
