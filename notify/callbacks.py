"""The HTTP endpoints an HTTP gateway calls back: ``/sms/dlr`` (receipts) and ``/sms/mo``
(replies). Kannel's dlr-url and its sms-service get-url point here."""

from __future__ import annotations

from aiohttp import web

from notify.kannel import DLR_PATH, MO_PATH, KannelGateway


class CallbackServer:
    def __init__(self, gateway: KannelGateway) -> None:
        self.gateway = gateway
        self._runner: web.AppRunner | None = None

    async def start(self, host: str, port: int) -> tuple[str, int]:
        app = web.Application()
        app.router.add_get(DLR_PATH, self.gateway.handle_dlr)
        app.router.add_get(MO_PATH, self.gateway.handle_mo)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, host, port).start()
        bound = self._runner.addresses[0]
        return str(bound[0]), int(bound[1])

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
