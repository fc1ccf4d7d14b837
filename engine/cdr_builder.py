"""The one place a call record is assembled: from the events of the call's life on the bus.

Call code never writes its own record. The controller, the call and the flow runner each publish
what they know when they know it, and this builder (a synchronous bus listener, so it sees every
event in order) folds the events into a :class:`~engine.cdr.CallRecord`:

==================  ==========================================================================
``call.invite``      ``direction``, ``caller``, ``callee``, ``sip_call_id``, ``at`` (wall s),
                     ``backend`` (``sip`` when absent; ``asterisk`` from ``engine.ami``)
``call.answered``    ``at``, ``codec``
``flow.start``       ``tenant``, ``flow_id``, ``flow_version``, ``campaign`` (the campaign that
                     placed the call, when one did)
``flow.end``         ``flow_id``, ``version``, ``status``, ``reason``, ``steps``, ``last_node``,
                     ``variables`` (sensitive values masked)
``call.ended``       ``at``, ``disposition``, ``cause``, ``side``, ``sip_status``, and for calls
                     that had media ``digits``, ``trace``, ``media``, ``recording_path``
==================  ==========================================================================

The record goes to the writer (batched, off the event loop) three times: at ``call.invite``
(``in_progress``) and ``call.answered``, so a node killed mid-call leaves a row its restart (or
a surviving node) can mark ``node_lost`` instead of losing the call, and at ``call.ended``,
when it also goes to whoever awaits it (:meth:`CallRecordBuilder.expect`: ``originate`` returns
the record of the call it placed).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from core.bus import BusEvent, EventBus
from engine.cdr import CallRecord

log = logging.getLogger("ivr.cdr")

FLOW_RESULT_KEYS = ("status", "reason", "last_node", "steps", "variables")


class CallRecordBuilder:
    def __init__(self, bus: EventBus, sink: Callable[[CallRecord], None], *,
                 node: str = "") -> None:
        self._sink = sink
        self.node = node
        self._open: dict[str, CallRecord] = {}
        self._waiters: dict[str, asyncio.Future[CallRecord]] = {}
        self._removers = [bus.listen("call.", self._on_call), bus.listen("flow.", self._on_flow)]

    def close(self) -> None:
        for remove in self._removers:
            remove()

    @property
    def open_calls(self) -> int:
        return len(self._open)

    def expect(self, call_id: str) -> asyncio.Future[CallRecord]:
        """A future resolved with ``call_id``'s finished record (register before the call)."""
        fut: asyncio.Future[CallRecord] = asyncio.get_running_loop().create_future()
        self._waiters[call_id] = fut
        return fut

    def _on_call(self, ev: BusEvent) -> None:
        if ev.call_id is None:
            return
        d = ev.data
        if ev.topic == "call.invite":
            self._open[ev.call_id] = CallRecord(
                id=ev.call_id, sip_call_id=str(d.get("sip_call_id", "")),
                direction=str(d.get("direction", "")), from_number=str(d.get("caller", "")),
                to_number=str(d.get("callee", "")), invite_at=float(d["at"]),
                tenant=str(d.get("tenant") or "default"), node=self.node,
                backend=str(d.get("backend") or "sip"), disposition="in_progress")
            self._sink(replace(self._open[ev.call_id]))  # a snapshot: the original moves on
            return
        rec = self._open.get(ev.call_id)
        if rec is None:
            return
        if ev.topic == "call.answered":
            rec.answer_at = float(d["at"])
            rec.codec = str(d.get("codec", rec.codec))
            self._sink(replace(rec))
        elif ev.topic == "call.ended":
            self._finish(self._open.pop(ev.call_id), d)

    def _on_flow(self, ev: BusEvent) -> None:
        rec = self._open.get(ev.call_id or "")
        if rec is None:
            return
        d = ev.data
        if ev.topic == "flow.start":
            rec.tenant = str(d.get("tenant", rec.tenant))
            rec.flow_id = d.get("flow_id")
            rec.flow_version = d.get("flow_version")
            rec.campaign_id = d.get("campaign") or rec.campaign_id
        elif ev.topic == "flow.end":
            rec.flow_id = d.get("flow_id", rec.flow_id)
            rec.flow_version = d.get("version", rec.flow_version)
            rec.flow_result = {k: d[k] for k in FLOW_RESULT_KEYS if k in d}
            rec.flow_result.update(flow_id=rec.flow_id, flow_version=rec.flow_version)

    def _finish(self, rec: CallRecord, d: dict[str, Any]) -> None:
        rec.end_at = float(d["at"])
        rec.disposition = str(d.get("disposition", rec.disposition))
        rec.hangup_cause = str(d.get("cause") or "")
        rec.hangup_side = str(d.get("side") or "")
        rec.sip_status = d.get("sip_status")
        rec.digits = str(d.get("digits", ""))
        rec.trace = list(d.get("trace", []))
        rec.media = dict(d.get("media", {}))
        rec.recording_path = d.get("recording_path")
        self._sink(rec)
        fut = self._waiters.pop(rec.id, None)
        if fut is not None and not fut.done():
            fut.set_result(rec)
