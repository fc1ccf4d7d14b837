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
import socket
import struct
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import smpp34

from core.tasks import TaskScope, spawn
from notify.encoding import decode_payload, parse_concat_udh
from tests.netutil import free_port

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
    at: float  # the loop's clock
    wall: float = 0.0  # epoch seconds (to compare with the engine's event times)


@dataclass
class SmscScript:
    receipts: bool = True
    receipt_stat: str = "DELIVRD"
    # how long after the submit a receipt is sent: a real SMSC reports delivery to the handset,
    # which takes time; Kannel drops a receipt that overtakes its own record of the submit
    receipt_delay_s: float = 0.0
    max_per_s: float | None = None  # above this rate: ESME_RTHROTTLED
    hold_after: int | None = None  # after this many accepts: answer nothing...
    drop_when_held: int = 0  # ...and drop every connection once this many are held (0: the
    # test calls drop() itself, e.g. once the client has read every answer already sent)


class CuttingProxy:
    """A TCP relay in front of the SMSC that can cut every connection at once (both sockets
    reset), the way a firewall, a NAT timeout or a crashed SMSC drops a link. smpp34's server
    keeps its sessions when stopped, so the cut is made here."""

    def __init__(self, port: int, upstream_port: int) -> None:
        self.port = port
        self.upstream_port = upstream_port
        self._server: asyncio.Server | None = None
        self._pairs: list[tuple[asyncio.StreamWriter, asyncio.StreamWriter]] = []
        self._scope = TaskScope("proxy")
        self.cuts = 0

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", self.port)

    async def _accept(self, r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        ur, uw = await asyncio.open_connection("127.0.0.1", self.upstream_port)
        self._pairs.append((w, uw))
        self._scope.spawn(self._pipe(r, uw), "up")
        self._scope.spawn(self._pipe(ur, w), "down")

    @staticmethod
    async def _pipe(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        try:
            while data := await r.read(65536):
                w.write(data)
        except OSError:
            pass
        finally:
            w.close()

    def cut(self) -> None:
        self.cuts += 1
        pairs, self._pairs = self._pairs, []
        for a, b in pairs:
            for w in (a, b):
                sock = w.get_extra_info("socket")
                if sock is not None and not w.is_closing():  # RST, not FIN
                    with contextlib.suppress(OSError):
                        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                        struct.pack("ii", 1, 0))
                w.close()

    async def stop(self) -> None:
        self.cut()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
        await self._scope.close(1.0)


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
    _proxy: CuttingProxy | None = None
    _task: asyncio.Task[None] | None = None
    _held: list[Any] = field(default_factory=list)
    _ids: Any = field(default_factory=lambda: itertools.count(1000))
    _recent: list[float] = field(default_factory=list)
    dropped: int = 0
    _receipts: list[tuple[str, str, bytes]] = field(default_factory=list)
    _flushing: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """The SMSC on a port of its own; clients reach it through the cutting proxy on
        ``port`` (Kannel too, so every peer sees the same SMSC)."""
        inner = free_port()
        self._server = smpp34.Server("127.0.0.1", inner, system_id="simsmsc")
        await self._server.start()
        self._proxy = CuttingProxy(self.port, inner)
        await self._proxy.start()
        self._task = spawn(self._serve(), "simsmsc")

    async def stop(self) -> None:
        if self._flushing is not None:
            self._flushing.cancel()
        if self._proxy is not None:
            await self._proxy.stop()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._server is not None:
            await self._server.stop()

    @property
    def held(self) -> int:
        return len(self._held)

    def drop(self) -> None:
        """Cut every connection with submits still unanswered: those were never accepted,
        so the client must send them again (and only them)."""
        self._held.clear()  # smpp34 NAKs a dropped event, into a connection that is gone
        assert self._proxy is not None
        self._proxy.cut()
        self.dropped += 1
        self.script.hold_after = None

    async def release(self, *, answer: bool) -> None:
        """Stop holding. ``answer``: accept the held submits now, as a slow SMSC finally
        would (their client is still connected); else forget them (their client is gone, so
        it never learnt they were sent)."""
        self.script.hold_after = None
        held, self._held = self._held, []
        if answer:
            now = asyncio.get_running_loop().time()
            for ev in held:
                await self._submit(ev, now)

    async def _serve(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            ev = await self._server.next()
            if isinstance(ev, smpp34.Esme):
                self.binds += 1
                self.sessions[ev.session_id] = ev
                self._flush_soon()
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
            if s.drop_when_held and len(self._held) >= s.drop_when_held:
                self.drop()
            return
        msg_id = f"{next(self._ids):x}"
        ev.accept(msg_id)
        self.accepted.append(Accepted(msg_id, ev.source_addr, ev.destination_addr,
                                      ev.data_coding, ev.esm_class, bytes(ev.short_message),
                                      ev.session_id, now, time.time()))
        if s.receipts and ev.registered_delivery & 0x01:
            text = (f"id:{msg_id} sub:001 dlvrd:001 submit date:2601011200 done date:"
                    f"2601011200 stat:{s.receipt_stat} err:000 text:").encode()
            self._receipts.append((ev.source_addr, ev.destination_addr, text))
            self._flush_soon()

    def _flush_soon(self) -> None:
        if self._flushing is None or self._flushing.done():
            self._flushing = spawn(self._flush(), "simsmsc-receipts")

    async def _flush(self) -> None:
        """Receipts go to the latest session; one that fails waits for the next bind (an
        SMSC keeps undelivered receipts for the ESME)."""
        if self.script.receipt_delay_s:
            await asyncio.sleep(self.script.receipt_delay_s)
        while self._receipts:
            live = [e for e in self.sessions.values() if e.can_receive]
            if not live:
                return
            source, dest, text = self._receipts[0]
            try:
                await live[-1].deliver_sm(source, text, source_addr=dest,
                                          esm_class=ESM_RECEIPT)
            except smpp34.SmppError:
                self.sessions = {k: v for k, v in self.sessions.items() if v is not live[-1]}
                continue
            self._receipts.pop(0)

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


async def _serve_forever(port: int, receipts: bool) -> None:
    import signal

    sim = SimSmsc(port, SmscScript(receipts=receipts))
    await sim.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    print("ready", flush=True)
    await stop.wait()
    await sim.stop()
    print(f"accepted {len(sim.accepted)}", flush=True)


if __name__ == "__main__":  # the bench runs the SMSC in a process of its own
    import sys

    asyncio.run(_serve_forever(int(sys.argv[1]), sys.argv[2:] != ["--no-receipts"]))
