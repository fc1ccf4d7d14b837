"""Blind transfer (RFC 3515 REFER, RFC 5589 transferor behaviour), with bridging as fallback.

After a 2xx to our REFER we wait up to ``REFER_NOTIFY_WAIT_S`` for the NOTIFY whose sipfrag says
how the transfer went (hanging up at once races the transferee's NOTIFY); a final 2xx, or no
NOTIFY at all, means the far end took the call and we hang up. A refused REFER or a failed
transfer falls back to bridging: the engine calls the target and relays audio both ways.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from core.call import CallHungUp, CallTrace, TransferResult
from core.clock import Clock
from engine.sip.message import SipResponse
from engine.sipcall.indialog import InDialogHandler

REFER_NOTIFY_WAIT_S = 4.0


class Referrer(Protocol):
    async def refer(self, target: str) -> SipResponse: ...


async def blind_transfer(*, target: str, session: Referrer, dialog: InDialogHandler,
                         trace: CallTrace, clock: Clock,
                         race: Callable[[Awaitable[Any]], Awaitable[Any]],
                         hangup: Callable[[str], Awaitable[None]],
                         bridge: Callable[[str], Awaitable[TransferResult]] | None,
                         ) -> TransferResult:
    trace.add("transfer.start", target=target)
    outcome = dialog.expect_refer_outcome()
    try:
        resp: SipResponse | None = await race(session.refer(target))
    except TimeoutError:
        resp = None
    accepted = resp is not None and 200 <= resp.status < 300
    final = None
    if accepted:
        assert resp is not None
        trace.add("transfer.referred", status=resp.status)
        final = await _refer_outcome(outcome, clock, race)
    if accepted and (final is None or final < 300):
        assert resp is not None
        await hangup("transferred")
        return TransferResult("transferred", f"REFER accepted ({resp.status}), "
                                             f"NOTIFY {final or 'none'}")
    detail = (f"transfer failed (NOTIFY {final})" if final is not None
              else f"REFER refused ({resp.status if resp else 'timeout'})")
    if bridge is None:
        return TransferResult("failed", detail)
    result = await bridge(target)
    trace.add("transfer.bridge", status=result.status, detail=result.detail)
    return result


async def _refer_outcome(outcome: asyncio.Future[int], clock: Clock,
                         race: Callable[[Awaitable[Any]], Awaitable[Any]]) -> int | None:
    """The final status of the NOTIFY after an accepted REFER, or None when none came in
    REFER_NOTIFY_WAIT_S or the transferee hung up first (which also means it went on)."""
    try:
        return int(await race(clock.wait_for(asyncio.shield(outcome), REFER_NOTIFY_WAIT_S)))
    except (TimeoutError, CallHungUp):
        return None
