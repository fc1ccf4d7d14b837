"""The gateway of an engine configured with none: messages wait in the outbox."""

from __future__ import annotations

from notify.gateway import InboundHandler, Outgoing, PartCallback, ReceiptHandler, SubmitResult


class OutboxOnly:
    """Nothing is sent; the dispatcher does not run (``SmsService.start(dispatch=False)``)."""

    name = "none"
    splits_itself = False

    def set_handlers(self, on_receipt: ReceiptHandler, on_inbound: InboundHandler) -> None:
        return None

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        return None

    async def submit(self, msg: Outgoing, on_part: PartCallback) -> SubmitResult:
        return SubmitResult("retry", "no gateway configured ([sms] gateway = \"none\")")
