"""The SMPP 3.4 ESME over asyncio: one bind_transceiver connection, kept up for good.

What it owns, and why here rather than in the outbox:

* the bind (transceiver: submits and receipts on one connection, what Chinese and most other
  operators' SMSCs expect of an application gateway), re-bound after any loss with exponential
  backoff on the injected clock;
* the window: at most ``window`` submit_sm without their response, so a slow SMSC slows us
  instead of being flooded (SMPP 3.4 2.6: the SMSC may NAK with ESME_RMSGQFUL or
  ESME_RTHROTTLED, which the caller sees as the response status);
* enquire_link every ``enquire_link_s`` seconds of silence; no answer within
  ``response_timeout_s`` means the link is dead and it is dropped;
* inbound deliver_sm (receipts and replies): handed to ``on_deliver`` and acknowledged only
  after it returns, so a receipt the engine could not record is NAKed and the SMSC resends it.

A submit whose connection drops before its response raises :class:`SmppConnectionLost`: the
SMSC did not acknowledge it, so it is not accepted, and the caller may send it again.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from core.clock import Clock
from core.tasks import TaskScope
from notify.smpp.pdu import (
    ESME_ROK,
    ESME_RSYSERR,
    BindTransceiver,
    BindTransceiverResp,
    DeliverSm,
    DeliverSmResp,
    EnquireLink,
    EnquireLinkResp,
    GenericNack,
    Pdu,
    PduReader,
    RawPdu,
    SmppDecodeError,
    SubmitSm,
    SubmitSmResp,
    Unbind,
    UnbindResp,
    parse,
)

log = logging.getLogger("ivr.notify.smpp")

READ_CHUNK_OCTETS = 65_536
MAX_SEQUENCE = 0x7FFFFFFF

DeliverHandler = Callable[[DeliverSm], Awaitable[int]]


class SmppError(Exception):
    """Base of the SMPP client's errors."""


class SmppConnectionLost(SmppError):
    """The connection dropped (or never bound) before the SMSC answered this PDU."""


class SmppBindFailed(SmppError):
    def __init__(self, status: int) -> None:
        super().__init__(f"bind_transceiver refused with status 0x{status:08x}")
        self.status = status


@dataclass(slots=True)
class SmppSettings:
    host: str
    port: int
    system_id: str
    password: str
    system_type: str = ""
    window: int = 10
    enquire_link_s: float = 30.0
    response_timeout_s: float = 10.0
    connect_timeout_s: float = 5.0
    reconnect_min_s: float = 0.5
    reconnect_max_s: float = 30.0


class _Connection:
    """One TCP connection's state: its writer and the requests waiting for a response."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.pending: dict[int, asyncio.Future[Pdu]] = {}
        self.closed = asyncio.Event()

    def send(self, pdu: Pdu) -> None:
        self.writer.write(pdu.serialize())

    def close(self, reason: str) -> None:
        if self.closed.is_set():
            return
        self.closed.set()
        for fut in self.pending.values():
            if not fut.done():
                fut.set_exception(SmppConnectionLost(reason))
        self.pending.clear()
        self.writer.close()


class SmppClient:
    def __init__(self, settings: SmppSettings, clock: Clock, *,
                 on_deliver: DeliverHandler | None = None, name: str = "smpp") -> None:
        self.settings = settings
        self.clock = clock
        self.on_deliver = on_deliver
        self.name = name
        self._seq = itertools.count(1)
        self._window = asyncio.Semaphore(settings.window)
        self._conn: _Connection | None = None
        self._bound = asyncio.Event()
        self._stopping = False
        self._scope = TaskScope(f"smpp-{name}")
        self._deliveries = TaskScope(f"smpp-{name}-deliver")
        self._in_flight = 0
        self.binds = 0  # successful binds (a reconnect is one more)
        self.last_error = ""

    # -- public --------------------------------------------------------------------------------

    def start(self) -> None:
        self._scope.spawn(self._run(), "connection")

    @property
    def bound(self) -> bool:
        return self._bound.is_set()

    @property
    def in_flight(self) -> int:
        """submit_sm written and not answered yet (at most ``window``)."""
        return self._in_flight

    async def wait_bound(self, timeout_s: float) -> None:
        await self.clock.wait_for(self._bound.wait(), timeout_s)

    async def submit(self, pdu: SubmitSm, *, bind_timeout_s: float | None = None) -> SubmitSmResp:
        """Send ``pdu`` within the window and return the SMSC's response (any status).

        Raises :class:`SmppConnectionLost` when the connection drops first or the response
        does not come within ``response_timeout_s`` (the link is dropped then: an SMSC that
        stops answering is broken, and its late answers would be matched to nothing), and
        TimeoutError when no bind happens within ``bind_timeout_s``."""
        async with self._window:
            await self.clock.wait_for(self._bound.wait(), bind_timeout_s)
            conn = self._conn
            if conn is None or conn.closed.is_set():
                raise SmppConnectionLost("not bound")
            self._in_flight += 1
            try:
                resp = await self._request(conn, pdu)
            finally:
                self._in_flight -= 1
        if not isinstance(resp, SubmitSmResp):
            return SubmitSmResp(resp.sequence_number, resp.command_status or ESME_RSYSERR)
        return resp

    async def stop(self, grace_s: float = 2.0) -> None:
        """Unbind politely (waiting up to ``grace_s`` for unbind_resp), then close."""
        self._stopping = True
        conn = self._conn
        if conn is not None and not conn.closed.is_set() and self._bound.is_set():
            try:
                await self.clock.wait_for(self._request(conn, Unbind()), grace_s)
            except (SmppError, TimeoutError, OSError):
                pass
            conn.close("client stopped")
        await self._scope.close(grace_s)
        await self._deliveries.close(grace_s)

    def drop(self, reason: str) -> None:
        """Close the current connection (tests, operator action); it is re-bound."""
        if self._conn is not None:
            self._conn.close(reason)

    # -- connection ----------------------------------------------------------------------------

    def _next_seq(self) -> int:
        seq = next(self._seq)
        if seq > MAX_SEQUENCE:
            self._seq = itertools.count(2)
            seq = 1
        return seq

    async def _request(self, conn: _Connection, pdu: Pdu) -> Pdu:
        pdu.sequence_number = self._next_seq()
        fut: asyncio.Future[Pdu] = asyncio.get_running_loop().create_future()
        conn.pending[pdu.sequence_number] = fut
        conn.send(pdu)
        try:
            return await self.clock.wait_for(fut, self.settings.response_timeout_s)
        except TimeoutError:
            conn.close(f"no response to 0x{pdu.command_id:08x} within "
                       f"{self.settings.response_timeout_s:g} s")
            raise SmppConnectionLost("response timeout") from None
        finally:
            conn.pending.pop(pdu.sequence_number, None)

    async def _run(self) -> None:
        backoff = self.settings.reconnect_min_s
        while not self._stopping:
            try:
                await self._session()
                backoff = self.settings.reconnect_min_s  # it was bound: start over quickly
            except SmppBindFailed as e:
                self.last_error = str(e)
                log.warning("smpp %s: %s", self.name, e)
            except (OSError, TimeoutError, SmppError) as e:
                self.last_error = f"{type(e).__name__}: {e}"
                log.info("smpp %s: connection to %s:%d lost: %s", self.name,
                         self.settings.host, self.settings.port, self.last_error)
            if self._stopping:
                break
            await self.clock.sleep(backoff)
            backoff = min(backoff * 2, self.settings.reconnect_max_s)

    async def _session(self) -> None:
        s = self.settings
        reader, writer = await self.clock.wait_for(
            asyncio.open_connection(s.host, s.port), s.connect_timeout_s)
        conn = _Connection(reader, writer)
        self._conn = conn
        reading = self._scope.spawn(self._read(conn), "read")
        try:
            resp = await self._request(conn, BindTransceiver(
                system_id=s.system_id, password=s.password, system_type=s.system_type))
            if not isinstance(resp, BindTransceiverResp) or resp.command_status != ESME_ROK:
                raise SmppBindFailed(resp.command_status)
            self.binds += 1
            self._bound.set()
            log.info("smpp %s: bound to %s:%d as %s", self.name, s.host, s.port, s.system_id)
            await self._keepalive(conn)
        finally:
            self._bound.clear()
            conn.close("session ended")
            reading.cancel()

    async def _keepalive(self, conn: _Connection) -> None:
        """enquire_link on silence; returns when the connection closes."""
        while not conn.closed.is_set():
            closed = self.clock.wait_for(conn.closed.wait(), self.settings.enquire_link_s)
            try:
                await closed
                return
            except TimeoutError:
                pass
            try:
                await self._request(conn, EnquireLink())
            except SmppConnectionLost:
                return

    async def _read(self, conn: _Connection) -> None:
        frames = PduReader()
        try:
            while not conn.closed.is_set():
                data = await conn.reader.read(READ_CHUNK_OCTETS)
                if not data:
                    break
                for raw in frames.feed(data):
                    self._dispatch(conn, raw)
        except SmppDecodeError as e:  # a stream we cannot resynchronise
            log.warning("smpp %s: %s; dropping the connection", self.name, e)
            conn.send(GenericNack(0, e.status))
        except OSError as e:
            log.info("smpp %s: read failed: %s", self.name, e)
        finally:
            conn.close("connection closed by peer")

    def _dispatch(self, conn: _Connection, raw: bytes) -> None:
        try:
            pdu = parse(raw)
        except SmppDecodeError as e:
            log.debug("smpp %s: bad PDU: %s", self.name, e)
            seq = int.from_bytes(raw[12:16], "big") if len(raw) >= 16 else 0
            conn.send(GenericNack(seq, e.status))
            return
        if pdu.command_id & 0x80000000:  # a response (generic_nack included)
            fut = conn.pending.get(pdu.sequence_number)
            if fut is not None and not fut.done():
                fut.set_result(pdu)
            else:
                log.debug("smpp %s: response to unknown sequence %d", self.name,
                          pdu.sequence_number)
        elif isinstance(pdu, EnquireLink):
            conn.send(EnquireLinkResp(pdu.sequence_number))
        elif isinstance(pdu, DeliverSm):
            self._deliveries.spawn(self._deliver(conn, pdu), f"deliver-{pdu.sequence_number}")
        elif isinstance(pdu, Unbind):
            conn.send(UnbindResp(pdu.sequence_number))
            conn.close("peer unbound")
        elif isinstance(pdu, RawPdu):
            conn.send(GenericNack(pdu.sequence_number, 0x03))  # ESME_RINVCMDID
        else:
            conn.send(GenericNack(pdu.sequence_number, 0x03))

    async def _deliver(self, conn: _Connection, pdu: DeliverSm) -> None:
        status = ESME_ROK
        if self.on_deliver is not None:
            try:
                status = await self.on_deliver(pdu)
            except Exception:  # the SMSC resends a NAKed receipt: nothing is lost
                log.exception("smpp %s: deliver_sm handler failed", self.name)
                status = ESME_RSYSERR
        if not conn.closed.is_set():
            conn.send(DeliverSmResp(pdu.sequence_number, status))
