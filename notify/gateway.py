"""What the outbox asks of a gateway, and the SMPP gateway.

A gateway takes one message (already planned into parts, some maybe accepted on an earlier
try) and says how it went: every part accepted, try again later (connection lost, SMSC busy),
slow down (throttled), or never (the SMSC refused the destination). Each accepted part is
reported as it is accepted (``on_part``), so the outbox records it at once and a later try
sends only what the SMSC has not acknowledged: a dropped connection loses and duplicates
nothing.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Literal, Protocol

from core.clock import Clock
from notify.encoding import SmsPlan, decode_payload, parse_concat_udh
from notify.receipts import Receipt, smpp_receipt
from notify.smpp.client import SmppClient, SmppConnectionLost, SmppSettings
from notify.smpp.pdu import (
    ESM_CLASS_UDHI,
    ESME_RMSGQFUL,
    ESME_ROK,
    ESME_RSYSERR,
    ESME_RTHROTTLED,
    ESME_RUNKNOWNERR,
    REGISTERED_DELIVERY_FINAL,
    DeliverSm,
    SubmitSm,
)

# SMSC answers worth another try later (the rest are final: bad address, bad message...)
TRANSIENT_STATUSES = frozenset({ESME_RSYSERR, 0x45, 0x64, ESME_RUNKNOWNERR})  # 0x45 submit
# failed, 0x64 ESME_RX_T_APPN (temporary application error)
THROTTLE_STATUSES = frozenset({ESME_RTHROTTLED, ESME_RMSGQFUL})

TON_UNKNOWN = 0
TON_INTERNATIONAL = 1
TON_ALPHANUMERIC = 5
NPI_ISDN = 1

Verdict = Literal["submitted", "retry", "throttled", "failed"]


@dataclass(slots=True)
class Outgoing:
    """One message as a gateway sees it."""

    message_id: str
    to: str
    sender: str
    plan: SmsPlan
    reference: int  # the concatenation reference, the same on every try
    accepted: dict[int, str] = field(default_factory=dict)  # part index -> gateway message id


@dataclass(frozen=True, slots=True)
class SubmitResult:
    verdict: Verdict
    reason: str = ""


PartCallback = Callable[[int, str], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class Inbound:
    """A reply from a handset (MO): who sent it to which of our sender IDs, and its text."""

    from_number: str
    to: str
    text: str


ReceiptHandler = Callable[[Receipt], Awaitable[bool]]
InboundHandler = Callable[[Inbound], Awaitable[None]]


class Gateway(Protocol):
    name: str
    splits_itself: bool  # Kannel cuts long messages itself; SMPP is sent part by part

    def set_handlers(self, on_receipt: ReceiptHandler, on_inbound: InboundHandler) -> None: ...

    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    async def submit(self, msg: Outgoing, on_part: PartCallback) -> SubmitResult: ...


class SmppGateway:
    """submit_sm per part over one :class:`SmppClient`; receipts and replies from deliver_sm."""

    splits_itself = False

    def __init__(self, settings: SmppSettings, clock: Clock, *, name: str = "smpp",
                 source_ton: int = TON_ALPHANUMERIC, source_npi: int = 0,
                 dest_ton: int = TON_INTERNATIONAL, dest_npi: int = NPI_ISDN,
                 bind_timeout_s: float = 10.0) -> None:
        self.name = name
        self.client = SmppClient(settings, clock, on_deliver=self._deliver, name=name)
        self.source_ton, self.source_npi = source_ton, source_npi
        self.dest_ton, self.dest_npi = dest_ton, dest_npi
        self.bind_timeout_s = bind_timeout_s
        self._on_receipt: ReceiptHandler | None = None
        self._on_inbound: InboundHandler | None = None
        self._partial: dict[tuple[str, int], dict[int, str]] = {}  # MO parts being reassembled

    def set_handlers(self, on_receipt: ReceiptHandler, on_inbound: InboundHandler) -> None:
        self._on_receipt, self._on_inbound = on_receipt, on_inbound

    async def start(self) -> None:
        self.client.start()

    async def stop(self) -> None:
        await self.client.stop()

    def _pdu(self, msg: Outgoing, short_message: bytes) -> SubmitSm:
        numeric = msg.sender.lstrip("+").isdigit()
        if msg.sender.startswith("+"):  # an international number
            ton, npi = TON_INTERNATIONAL, NPI_ISDN
        elif numeric:  # a service number or short code (10690000, 95588): not international
            ton, npi = TON_UNKNOWN, NPI_ISDN
        else:  # an alphanumeric sender ID
            ton, npi = self.source_ton, self.source_npi
        return SubmitSm(
            source_addr_ton=ton, source_addr_npi=npi, source_addr=msg.sender.lstrip("+")[:20],
            dest_addr_ton=self.dest_ton, dest_addr_npi=self.dest_npi,
            destination_addr=msg.to.lstrip("+")[:20],
            esm_class=ESM_CLASS_UDHI if msg.plan.concatenated else 0,
            registered_delivery=REGISTERED_DELIVERY_FINAL, data_coding=msg.plan.data_coding,
            short_message=short_message)

    async def submit(self, msg: Outgoing, on_part: PartCallback) -> SubmitResult:
        parts = msg.plan.short_messages(msg.reference)
        for index, short_message in enumerate(parts):
            if index in msg.accepted:
                continue  # the SMSC took this part on an earlier try
            try:
                resp = await self.client.submit(self._pdu(msg, short_message),
                                                bind_timeout_s=self.bind_timeout_s)
            except SmppConnectionLost as e:
                return SubmitResult("retry", f"connection lost: {e}")
            except TimeoutError:
                return SubmitResult("retry", f"not bound: {self.client.last_error or 'no SMSC'}")
            if resp.command_status == ESME_ROK:
                msg.accepted[index] = resp.message_id
                await on_part(index, resp.message_id)
                continue
            status = resp.command_status
            if status in THROTTLE_STATUSES:
                return SubmitResult("throttled", f"SMSC status 0x{status:02x}")
            if status in TRANSIENT_STATUSES:
                return SubmitResult("retry", f"SMSC status 0x{status:02x}")
            return SubmitResult("failed", f"SMSC refused part {index + 1}: status 0x{status:02x}")
        return SubmitResult("submitted")

    async def _deliver(self, pdu: DeliverSm) -> int:
        ref, payload = (None, pdu.short_message)
        if pdu.esm_class & ESM_CLASS_UDHI:
            ref, payload = parse_concat_udh(pdu.short_message)
        text = decode_payload(pdu.data_coding, payload)
        receipt = smpp_receipt(pdu, text)
        if receipt is not None:
            if self._on_receipt is not None and not await self._on_receipt(receipt):
                return ESME_ROK  # a receipt for nothing we sent: acknowledged, not retried
            return ESME_ROK
        if ref is not None:  # a long reply: wait for every part
            key = (pdu.source_addr, ref[0])
            got = self._partial.setdefault(key, {})
            got[ref[2]] = text
            if len(got) < ref[1]:
                return ESME_ROK
            text = "".join(got[i] for i in sorted(got))
            del self._partial[key]
        sender = pdu.source_addr
        if pdu.source_addr_ton == TON_INTERNATIONAL and not sender.startswith("+"):
            sender = "+" + sender
        if self._on_inbound is not None:
            await self._on_inbound(Inbound(sender, pdu.destination_addr, text))
        return ESME_ROK


async def wait_bound(gateway: Gateway, timeout_s: float) -> None:
    """Tests and start-up checks: wait for an SMPP bind (no-op for HTTP gateways)."""
    if isinstance(gateway, SmppGateway):
        await gateway.client.wait_bound(timeout_s)
    else:
        await asyncio.sleep(0)
