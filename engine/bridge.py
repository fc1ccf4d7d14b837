"""Bridging two calls in the engine: the fallback when a peer refuses a REFER.

The engine places a second call to the transfer target and relays decoded audio both ways,
each leg's caller audio becoming a live playout item on the other leg, until either side hangs
up; then it hangs up the other. RFC 4733 digits are relayed as well.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from core.call import AudioFrameEvent, DtmfEvent, TransferResult
from core.tasks import TaskScope
from engine.cdr import CallRecord
from engine.sipcall import SipCall


class Originator(Protocol):
    """Places the second leg (the call controller does)."""

    def originate(self, target: str, app: Callable[[SipCall], Awaitable[None]], *,
                  from_user: str = ..., abandon: asyncio.Future[Any] | None = ...,
                  ) -> Awaitable[CallRecord]: ...


async def _relay(src: SipCall, dst: SipCall) -> None:
    q = src.media.subscribe(audio=True)
    item = dst.media.playout.enqueue_live(f"bridge:{src.call_id}")
    try:
        while src.is_active and dst.is_active:
            ev = await q.get()
            if isinstance(ev, AudioFrameEvent) and item.live is not None:
                item.live.append(ev.pcm)
            elif isinstance(ev, DtmfEvent) and dst.media.te_pt is not None:
                dst.media.send_digits(ev.digit)
    finally:
        src.media.unsubscribe(q)
        if not item.done.done():
            item.done.set_result("bridge_end")


async def relay_both(a: SipCall, b: SipCall) -> None:
    """Relay until one side ends, then end the other."""
    scope = TaskScope(f"bridge-{a.call_id}")
    scope.spawn(_relay(a, b), "a->b")
    scope.spawn(_relay(b, a), "b->a")
    try:
        await asyncio.wait({a.ended, b.ended}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        await scope.close(grace_s=1.0)
        for leg in (a, b):
            if leg.is_active:
                await leg.hangup("bridge_end")


async def bridge_to(ctrl: Originator, call: SipCall, target: str) -> TransferResult:
    answered = asyncio.Event()

    async def second_leg(b: SipCall) -> None:
        answered.set()
        b.trace.add("bridge", with_call=call.call_id)
        await relay_both(call, b)

    rec = await ctrl.originate(target, second_leg, from_user=call.caller or "ivr",
                               abandon=call.ended)
    if not answered.is_set():
        return TransferResult("failed", f"bridge target {rec.disposition} ({rec.hangup_cause})")
    return TransferResult("bridged", f"bridged to {target} ({rec.duration_s:.1f} s)")
