"""Kannel's HTTP ``sendsms`` as a gateway, and the callbacks Kannel makes to us.

Kannel (bearerbox + smsbox) is the open gateway operators run in front of their SMSCs. We send
with ``coding=2&charset=UTF-8`` for UCS-2 (``coding=0`` for GSM 7-bit), ask for every receipt
(``dlr-mask=31``) and give a ``dlr-url`` that carries our message id, so a receipt finds its
message without Kannel's own ids. Kannel cuts long messages itself (``concatenation = true``
in the smsbox group, 67 UCS-2 / 153 GSM characters per part, the same cut as
:func:`notify.encoding.plan`) and reports the message once: Kannel 1.4 registers the receipt
of the first part only (seen with the SMSC simulator holding parts 2 and 3), so "delivered"
through Kannel means the first part reached the handset; the SMPP gateway counts every part.
Replies reach us through an smsbox ``sms-service`` whose ``get-url`` is our ``/sms/mo``.
"""

from __future__ import annotations

import logging
from urllib.parse import quote, urlencode

from aiohttp import ClientError, ClientSession, ClientTimeout, web

from notify.gateway import (
    Inbound,
    InboundHandler,
    Outgoing,
    PartCallback,
    ReceiptHandler,
    SubmitResult,
)
from notify.receipts import KANNEL_DLR_MASK, MESSAGE_RECEIPT_PREFIX, Receipt, kannel_receipt

log = logging.getLogger("ivr.notify.kannel")

KANNEL_CODING_GSM7 = 0
KANNEL_CODING_UCS2 = 2
DLR_PATH = "/sms/dlr"
MO_PATH = "/sms/mo"
# Kannel fills these in when it calls the dlr-url: %d type, %A SMSC text, %T time
DLR_ESCAPES = "type=%d&text=%A&ts=%T"


class KannelGateway:
    splits_itself = True

    def __init__(self, sendsms_url: str, username: str, password: str, *, callback_base: str,
                 smsc_id: str = "", timeout_s: float = 10.0, name: str = "kannel") -> None:
        self.name = name
        self.sendsms_url = sendsms_url
        self.username, self.password = username, password
        self.callback_base = callback_base.rstrip("/")
        self.smsc_id = smsc_id
        self.timeout_s = timeout_s
        self._session: ClientSession | None = None
        self._on_receipt: ReceiptHandler | None = None
        self._on_inbound: InboundHandler | None = None

    def set_handlers(self, on_receipt: ReceiptHandler, on_inbound: InboundHandler) -> None:
        self._on_receipt, self._on_inbound = on_receipt, on_inbound

    async def start(self) -> None:
        self._session = ClientSession(timeout=ClientTimeout(total=self.timeout_s))

    async def stop(self) -> None:
        if self._session is not None:
            await self._session.close()

    def dlr_url(self, message_id: str) -> str:
        return f"{self.callback_base}{DLR_PATH}?id={quote(message_id)}&{DLR_ESCAPES}"

    def query(self, msg: Outgoing) -> dict[str, str]:
        params = {
            "username": self.username, "password": self.password, "to": msg.to,
            "from": msg.sender, "text": msg.plan.text, "charset": "UTF-8",
            "coding": str(KANNEL_CODING_UCS2 if msg.plan.coding == "ucs2"
                          else KANNEL_CODING_GSM7),
            "dlr-mask": str(KANNEL_DLR_MASK), "dlr-url": self.dlr_url(msg.message_id),
        }
        if self.smsc_id:
            params["smsc"] = self.smsc_id
        return params

    async def submit(self, msg: Outgoing, on_part: PartCallback) -> SubmitResult:
        if msg.accepted:  # Kannel took the whole message on an earlier try
            return SubmitResult("submitted")
        if self._session is None:
            raise RuntimeError("gateway not started")
        url = f"{self.sendsms_url}?{urlencode(self.query(msg))}"
        try:
            async with self._session.get(url) as resp:
                body = (await resp.text(errors="replace")).strip()
        except (ClientError, TimeoutError, OSError) as e:
            return SubmitResult("retry", f"kannel unreachable: {type(e).__name__}: {e}")
        # 202 "0: Accepted for delivery" / "3: Queued for later delivery"
        if resp.status in (200, 202):
            for index in range(msg.plan.part_count):
                await on_part(index, f"{msg.message_id}:{index}")
            return SubmitResult("submitted")
        if resp.status == 503:  # smsbox's queue is full: slow down, as for ESME_RTHROTTLED
            return SubmitResult("throttled", f"kannel HTTP 503: {body[:120]}")
        if resp.status >= 500:
            return SubmitResult("retry", f"kannel HTTP {resp.status}: {body[:120]}")
        return SubmitResult("failed", f"kannel HTTP {resp.status}: {body[:120]}")

    # -- callbacks from Kannel -----------------------------------------------------------------

    async def handle_dlr(self, request: web.Request) -> web.Response:
        q = request.query
        message_id = q.get("id", "")
        try:
            dlr_type = int(q.get("type", ""))
        except ValueError:
            return web.Response(status=400, text="type: not a number")
        receipt = kannel_receipt(dlr_type, q.get("text", ""))
        if receipt.outcome == "pending" or self._on_receipt is None:
            return web.Response(text="ok")
        if not message_id:
            return web.Response(status=400, text="id: missing")
        known = await self._on_receipt(_for_message(receipt, message_id))
        return web.Response(text="ok" if known else "unknown message")

    async def handle_mo(self, request: web.Request) -> web.Response:
        q = request.query
        sender, text = q.get("from", ""), q.get("text", "")
        if not sender:
            return web.Response(status=400, text="from: missing")
        if self._on_inbound is not None:
            await self._on_inbound(Inbound(sender, q.get("to", ""), text))
        return web.Response(text="")  # an empty body: smsbox sends no reply SMS


def _for_message(receipt: Receipt, message_id: str) -> Receipt:
    """Kannel receipts name our message, not a part: the outbox picks the next open part."""
    return Receipt(f"{MESSAGE_RECEIPT_PREFIX}{message_id}", receipt.stat, receipt.outcome,
                   receipt.error)
