"""Every error the API returns has one shape: ``{"error": {"code", "message", "field"}}``.

The middleware here turns whatever went wrong into that shape with the right status: malformed
requests, validation failures (naming the field), the services' refusals (missing, conflict,
forbidden), aiohttp's own HTTP errors (404 route, 405 method, 413 body), and, for a bug, a 500
that names no internals (the log has the traceback).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web
from pydantic import ValidationError

from compliance.words import TermError
from console.identity import AuthError, IdentityError, NotFound
from console.roles import Forbidden
from console.services.base import Conflict, Invalid, Missing
from storage.paging import BadCursor
from storage.tenancy import TenantError

log = logging.getLogger("ivr.console")

HTTP_CODES = {400: "bad_request", 401: "unauthenticated", 403: "forbidden", 404: "not_found",
              405: "method_not_allowed", 409: "conflict", 413: "too_large",
              415: "unsupported_media_type", 416: "range_not_satisfiable", 422: "invalid",
              429: "too_many_requests"}


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str, field: str | None = None, *,
                 details: list[dict[str, Any]] | None = None,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.field = field
        self.details = details or []
        self.headers = headers or {}

    def response(self) -> web.Response:
        body: dict[str, Any] = {"code": self.code, "message": self.message, "field": self.field}
        if self.details:
            body["details"] = self.details
        return web.Response(text=json.dumps({"error": body}, ensure_ascii=False),
                            status=self.status, content_type="application/json",
                            charset="utf-8", headers=self.headers)


def error_from_validation(e: ValidationError, where: str) -> ApiError:
    """422 naming the first bad field (``body.document.id``, ``query.limit``); every problem
    in ``details``."""
    details = []
    for err in e.errors(include_url=False, include_context=False, include_input=False):
        loc = ".".join(str(p) for p in err["loc"])
        details.append({"field": f"{where}.{loc}" if loc else where, "message": err["msg"]})
    first = details[0] if details else {"field": where, "message": "invalid"}
    return ApiError(422, "invalid", f"{first['field']}: {first['message']}", first["field"],
                    details=details)


def translate(e: Exception) -> ApiError | None:
    """The API error for an exception a service raised on bad input or state (None: a bug)."""
    if isinstance(e, ApiError):
        return e
    if isinstance(e, AuthError):
        return ApiError(401, e.code, str(e))
    if isinstance(e, Forbidden):
        return ApiError(403, e.code, str(e), e.field)
    if isinstance(e, Invalid):
        return ApiError(422, e.code, str(e), e.field, details=e.details)
    if isinstance(e, IdentityError):
        return ApiError(409 if e.code == "conflict" else 422, e.code, str(e), e.field)
    if isinstance(e, Conflict):
        extra = [{"current": e.current}] if e.current is not None else None
        return ApiError(409, e.code, str(e), e.field, details=extra)
    if isinstance(e, Missing | NotFound):
        return ApiError(404, "not_found", str(e))
    if isinstance(e, TenantError):
        return ApiError(422, "invalid", str(e), "tenant")
    if isinstance(e, BadCursor):
        return ApiError(422, "invalid", str(e), "cursor")
    if isinstance(e, TermError):
        return ApiError(422, "invalid", str(e), str(e).split(":", 1)[0])
    if isinstance(e, ValidationError):
        return error_from_validation(e, "body")
    return None


@web.middleware
async def error_middleware(request: web.Request,
                           handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
                           ) -> web.StreamResponse:
    try:
        return await handler(request)
    except web.HTTPException as e:
        if e.status < 400:
            raise
        headers = {k: v for k, v in e.headers.items() if k.lower() in ("allow", "retry-after")}
        message = e.reason if e.status != 413 else "the request body is too large"
        if e.status == 404:
            message = f"no such resource: {request.method} {request.path}"
        return ApiError(e.status, HTTP_CODES.get(e.status, "error"), message,
                        "body" if e.status == 413 else None, headers=headers).response()
    except Exception as e:
        api = translate(e)
        if api is None:
            log.exception("console: %s %s failed", request.method, request.path)
            api = ApiError(500, "internal", "the server failed on this request (see its log)")
        return api.response()
