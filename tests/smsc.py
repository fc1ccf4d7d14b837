"""A real SMPP peer for tests: the ``smpp34`` package's asyncio SMSC (Rust core), scripted.

It is an independent SMPP 3.4 implementation (Kannel binds to it in
``tests/integration/test_sms_kannel.py``, which shows it speaks real SMPP), so our client is
tested against someone else's reading of the protocol, not against itself. The script decides
what the SMSC does with each submit_sm: accept, throttle above a rate, hold (no response) and
then drop the connection, and whether to send delivery receipts back over deliver_sm.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import smpp34

from notify.encoding import decode_payload, parse_concat_udh

ESM_UDHI = 0x40
ESM_RECEIPT = 0x04


@dataclass
class Accepted:
    message_id: str
    source: str
    destination: str
    data_coding: int
    esm_class: int
    short_message: bytes
    session_id: str
    at: float


@dataclass
class SmscScript:
    receipts: bool = True
    receipt_stat: str = "DELIVRD"
    max_per_s: float | None = None  # above this rate: ESME_RTHROTTLED
    hold_after: int | None = None  # after this many accepts: answer nothing...
    drop_when_held: int = 0  # ...and drop every connection once this many are held


@dataclass
class SimSmsc:
    port: int
    script: SmscScript = field(default_factory=SmscScript)
    accepted: list[Accepted] = field(default_factory=list)
    throttled: int = 0
    binds: int = 0
    submits_seen: int = 0
    sessions: dict[str, Any] = field(default_factory=dict)
    _server: Any = None
    _task: asyncio.Task[None] | None = None
    _held: list[Any] = field(default_factory=list)
    _ids: Any = field(default_factory=lambda: itertools.count(1000))
    _recent: list[float] = field(default_factory=list)
    dropped: int = 0

    async def start(self) -> None:
        self._server = smpp34.Server("127.0.0.1", self.port, system_id="simsmsc")
        await self._server.start()
        loop = asyncio.get_running_loop()
        self._task = loop.create_task(self._serve())  # test helper: awaited in stop()

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._server is not None:
            await self._server.stop()

    async def restart(self) -> None:
        """Drop every connection the hard way: a new server on the same port."""
        held, self._held = self._held, []
        await self.stop()
        for ev in held:  # never answered: the client must send these again
            del ev
        self.dropped += 1
        self.script.hold_after = None
        await self.start()

    async def _serve(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            ev = await self._server.next()
            if isinstance(ev, smpp34.Esme):
                self.binds += 1
                self.sessions[ev.session_id] = ev
            elif isinstance(ev, smpp34.SubmitSmEvent):
                self.submits_seen += 1
                await self._submit(ev, loop.time())

    async def _submit(self, ev: Any, now: float) -> None:
        s = self.script
        if s.max_per_s is not None:
            self._recent = [t for t in self._recent if now - t < 1.0]
            if len(self._recent) >= s.max_per_s:
                self.throttled += 1
                ev.reject(smpp34.ESME_RTHROTTLED)
                return
            self._recent.append(now)
        if s.hold_after is not None and len(self.accepted) >= s.hold_after:
            self._held.append(ev)
            if len(self._held) >= max(1, s.drop_when_held):
                asyncio.get_running_loop().call_soon(self._restart_soon)
            return
        msg_id = f"{next(self._ids):x}"
        ev.accept(msg_id)
        self.accepted.append(Accepted(msg_id, ev.source_addr, ev.destination_addr,
                                      ev.data_coding, ev.esm_class, bytes(ev.short_message),
                                      ev.session_id, now))
        if s.receipts and ev.registered_delivery & 0x01:
            esme = self.sessions.get(ev.session_id)
            if esme is not None:
                text = (f"id:{msg_id} sub:001 dlvrd:001 submit date:2601011200 done date:"
                        f"2601011200 stat:{s.receipt_stat} err:000 text:").encode()
                await esme.deliver_sm(ev.source_addr, text, source_addr=ev.destination_addr,
                                      esm_class=ESM_RECEIPT)

    def _restart_soon(self) -> None:
        if self._held:
            self._restart_task = asyncio.get_running_loop().create_task(self.restart())

    # -- what arrived --------------------------------------------------------------------------

    def messages(self) -> list[tuple[str, str]]:
        """(destination, text) of every message, long ones reassembled from their parts."""
        out: list[tuple[str, str]] = []
        partial: dict[tuple[str, int], dict[int, str]] = {}
        for a in self.accepted:
            if a.esm_class & ESM_UDHI:
                ref, payload = parse_concat_udh(a.short_message)
                assert ref is not None, "UDHI set without a concatenation header"
                key = (a.destination, ref[0])
                got = partial.setdefault(key, {})
                assert ref[2] not in got, f"part {ref[2]} of {key} arrived twice"
                got[ref[2]] = decode_payload(a.data_coding, payload)
                if len(got) == ref[1]:
                    out.append((a.destination, "".join(got[i] for i in sorted(got))))
                    del partial[key]
            else:
                out.append((a.destination, decode_payload(a.data_coding, a.short_message)))
        assert not partial, f"incomplete long messages: {partial}"
        return out

    def duplicates(self) -> dict[tuple[str, str], int]:
        counts = Counter(self.messages())
        return {k: n for k, n in counts.items() if n > 1}
