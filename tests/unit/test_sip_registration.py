"""Registration timing on the injected clock: refresh at 80 % of the granted expiry, backoff
doubling on refusals and silence, reset after success; expiry read from Contact or Expires."""

from __future__ import annotations

import asyncio

from core.clock import FakeClock
from core.tasks import spawn
from engine.sip.message import SipResponse, parse_message
from engine.sip.registration import Registration, granted_expiry, refresh_delay


def response(status: int, extra: str = "") -> SipResponse:
    text = (f"SIP/2.0 {status} X\r\nVia: SIP/2.0/UDP h;branch=z9hG4bKx\r\nFrom: <sip:a@h>;tag=1\r\n"
            f"To: <sip:a@h>;tag=2\r\nCall-ID: c\r\nCSeq: 1 REGISTER\r\n{extra}"
            "Content-Length: 0\r\n\r\n")
    msg = parse_message(text.encode())
    assert isinstance(msg, SipResponse)
    return msg


class ScriptedRegistrar:
    """Stands in for UserAgent.register: answers from a script (a real registrar is tested
    against SIPp in tests/integration/test_trunk_registration.py)."""

    def __init__(self, clock: FakeClock, script: list[object]) -> None:
        self.clock = clock
        self.script = script
        self.times: list[float] = []

    async def register(self, *_args, **_kw) -> SipResponse:  # type: ignore[no-untyped-def]
        self.times.append(self.clock.now())
        item = self.script.pop(0) if self.script else response(503)
        if isinstance(item, BaseException):
            raise item
        assert isinstance(item, SipResponse)
        return item


def test_granted_expiry_prefers_contact_param_then_header() -> None:
    assert granted_expiry(response(200, "Contact: <sip:ivr@h>;expires=30\r\nExpires: 90\r\n"),
                          600) == 30
    assert granted_expiry(response(200, "Expires: 90\r\n"), 600) == 90
    assert granted_expiry(response(200), 600) == 600
    assert refresh_delay(600) == 480 and refresh_delay(10) == 5 and refresh_delay(2) == 1


async def test_backoff_then_refresh_schedule() -> None:
    clock = FakeClock(start=0.0)
    ua = ScriptedRegistrar(clock, [response(403), TimeoutError(), response(200, "Expires: 100\r\n"),
                                   response(200, "Expires: 100\r\n"), response(503)])
    reg = Registration("t", ua, "sip:r", "u", None, clock, expires=600)  # type: ignore[arg-type]
    task = spawn(reg.run(), "reg")
    await asyncio.sleep(0)
    for _ in range(10):
        await clock.advance(50)
    task.cancel()
    # 403 at 0 -> retry 5 s; silence at 5 -> retry 10 s; 200 at 15 -> refresh at 95;
    # 200 at 95 -> refresh at 175: 503 -> backoff restarted at 5 s, then 10, 20, 40 ...
    assert ua.times[:8] == [0.0, 5.0, 15.0, 95.0, 175.0, 180.0, 190.0, 210.0]
    assert reg.successes == 2 and reg.state == "failed" and reg.last_status == 503
