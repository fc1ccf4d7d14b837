"""The real webhook client: replies read whole up to a hard size limit, or refused by name.

A webhook is somebody else's server. Its reply may arrive in many TCP segments, chunked, one byte
at a time, with a ``Content-Length`` that lies, or be 20 MB long; the client reads until the end of
the body and stops the moment the body passes :data:`MAX_BODY_BYTES`. Compressed replies are
refused rather than inflated (a small gzip body can inflate to gigabytes), so ``Accept-Encoding:
identity`` is sent. Timeouts are not applied here: the http node wraps the whole request, body
included, in the injected clock's deadline.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

MAX_BODY_BYTES = 1_000_000
READ_CHUNK_BYTES = 65_536


class WebhookReplyError(ValueError):
    """The reply could not be taken whole: larger than the limit, cut short, or compressed."""


@dataclass(frozen=True, slots=True)
class HttpResponse:
    status: int
    body: bytes
    headers: Mapping[str, str] = field(default_factory=dict)


async def read_body(resp: Any, limit: int = MAX_BODY_BYTES) -> bytes:
    """Every byte of an aiohttp response body, or :class:`WebhookReplyError`.

    ``resp.content.read(n)`` returns whatever has arrived (one segment, one chunk), so it is called
    until end of body; the running total is checked before each append, so at most ``limit`` plus
    one read's worth is ever held.
    """
    import aiohttp  # noqa: PLC0415 - only needed when a flow really calls a webhook

    declared: int | None = resp.content_length
    if declared is not None and declared > limit:
        raise WebhookReplyError(
            f"webhook reply larger than {limit} bytes (Content-Length {declared})"
        )
    encoding = resp.headers.get("Content-Encoding", "identity").strip().lower()
    if encoding not in ("", "identity"):
        raise WebhookReplyError(
            f"webhook reply is compressed ({encoding}); webhooks must answer uncompressed"
        )
    buf = bytearray()
    try:
        while chunk := await resp.content.read(READ_CHUNK_BYTES):
            if len(buf) + len(chunk) > limit:
                raise WebhookReplyError(f"webhook reply larger than {limit} bytes")
            buf += chunk
    except aiohttp.ClientPayloadError as e:
        if declared is not None:
            raise WebhookReplyError(
                f"webhook reply ended after {len(buf)} of {declared} bytes (Content-Length)"
            ) from e
        raise WebhookReplyError(f"webhook reply broken off after {len(buf)} bytes: {e}") from e
    return bytes(buf)


class AiohttpClient:
    """The real webhook client; one session per engine, timeouts are applied by the node."""

    MAX_BODY_BYTES = MAX_BODY_BYTES

    def __init__(self) -> None:
        self._session: Any = None

    async def request(
        self, method: str, url: str, headers: Mapping[str, str], body: bytes | None
    ) -> HttpResponse:
        import aiohttp  # noqa: PLC0415 - only needed when a flow really calls a webhook

        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(auto_decompress=False)
        sent = {"Accept-Encoding": "identity", **headers}
        async with self._session.request(method, url, headers=sent, data=body) as resp:
            data = await read_body(resp, self.MAX_BODY_BYTES)
            return HttpResponse(resp.status, data, dict(resp.headers))

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
