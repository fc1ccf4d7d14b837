"""One declaration per API operation: its route, permission, and the pydantic models that
validate its input and describe its output. The aiohttp routes and the OpenAPI 3.1 document are
both generated from these declarations, so the document cannot drift from what the server does.

A handler receives an :class:`ApiRequest` (the principal, the validated body and query, the path
parameters) and returns a pydantic model (sent as JSON with the operation's status) or a ready
aiohttp response (streams, files, 204s).
"""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from aiohttp import web
from pydantic import BaseModel, ValidationError
from pydantic.json_schema import models_json_schema

from console.api.errors import ApiError, error_from_validation
from console.roles import PERMISSIONS, Principal

JSON_TYPE = "application/json"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
PATH_PARAM_RE = re.compile(r"\{([a-z_]+)\}")
MAX_INT_PARAM = 2**31 - 1
ERROR_STATUSES = {400: "Malformed request", 401: "Not authenticated",
                  403: "Not allowed (role, token scope, tenant or CSRF)",
                  404: "Not found, or not visible to you", 409: "Conflicts with stored state",
                  413: "Body too large", 415: "Wrong content type", 422: "Invalid input",
                  429: "Too many attempts"}


@dataclass(frozen=True, slots=True)
class PathParam:
    kind: type = str  # str or int
    pattern: str | None = None
    max_length: int = 200
    description: str = ""

    def schema(self) -> dict[str, Any]:
        if self.kind is int:
            return {"type": "integer", "minimum": 1, "maximum": MAX_INT_PARAM}
        out: dict[str, Any] = {"type": "string", "minLength": 1, "maxLength": self.max_length}
        if self.pattern:
            out["pattern"] = self.pattern
        return out


@dataclass
class ApiRequest:
    request: web.Request
    principal: Principal | None
    body: Any
    query: Any
    path: dict[str, Any]
    raw: bytes = b""

    @property
    def who(self) -> Principal:
        assert self.principal is not None, "operation declared without a permission"
        return self.principal


Handler = Callable[[ApiRequest], Awaitable[BaseModel | web.StreamResponse | None]]
Authenticator = Callable[[web.Request, "Operation"], Awaitable[Principal | None]]


@dataclass
class Operation:
    method: str
    path: str
    handler: Handler
    summary: str
    tag: str
    permission: str | None  # None: public
    body: type[BaseModel] | None = None
    query: type[BaseModel] | None = None
    response: type[BaseModel] | None = None
    status: int = 200
    raw_body: tuple[str, ...] = ()  # content types of a non-JSON body (CSV uploads)
    produces: str = JSON_TYPE  # text/event-stream, audio/wav, ...
    params: dict[str, PathParam] = field(default_factory=dict)
    description: str = ""
    also: tuple[int, ...] = ()  # other success statuses with the same body (200 vs 201)

    @property
    def operation_id(self) -> str:
        return self.handler.__name__

    @property
    def path_params(self) -> list[str]:
        return PATH_PARAM_RE.findall(self.path)


class Api:
    def __init__(self) -> None:
        self.operations: list[Operation] = []

    def op(self, method: str, path: str, *, summary: str, tag: str, permission: str | None,
           body: type[BaseModel] | None = None, query: type[BaseModel] | None = None,
           response: type[BaseModel] | None = None, status: int = 200,
           raw_body: tuple[str, ...] = (), produces: str = JSON_TYPE,
           params: dict[str, PathParam] | None = None, description: str = "",
           also: tuple[int, ...] = ()) -> Callable[[Handler], Handler]:
        if permission is not None and permission not in PERMISSIONS:
            raise KeyError(f"unknown permission {permission!r}")

        def register(fn: Handler) -> Handler:
            self.operations.append(Operation(
                method, path, fn, summary, tag, permission, body, query, response, status,
                raw_body, produces, params or {}, description or (fn.__doc__ or "").strip(),
                also))
            return fn

        return register

    # --- serving -------------------------------------------------------------------------------

    def add_routes(self, app: web.Application, authenticate: Authenticator,
                   max_raw_bytes: int) -> None:
        for op in self.operations:
            app.router.add_route(op.method, op.path, _dispatcher(op, authenticate, max_raw_bytes),
                                 name=op.operation_id)

    # --- the document --------------------------------------------------------------------------

    def openapi(self, *, title: str, version: str) -> dict[str, Any]:
        models: set[type[BaseModel]] = {ErrorEnvelopeModel()}
        for op in self.operations:
            models.update(m for m in (op.body, op.response) if m is not None)
        keyed: list[tuple[type[BaseModel], Literal["validation", "serialization"]]] = [
            (m, "validation" if any(m is op.body for op in self.operations) else "serialization")
            for m in sorted(models, key=lambda m: m.__name__)]
        _, defs = models_json_schema(keyed, ref_template="#/components/schemas/{model}",
                                     by_alias=True)
        schemas = defs.get("$defs", {})
        paths: dict[str, Any] = {}
        for op in self.operations:
            paths.setdefault(op.path, {})[op.method.lower()] = _operation_doc(op)
        return {
            "openapi": "3.1.0",
            "info": {"title": title, "version": version,
                     "description": "The IVR Engine console API. Errors are "
                                    "`{\"error\": {\"code\", \"message\", \"field\"}}`. "
                                    "Browser sessions send `X-CSRF-Token` on every "
                                    "state-changing request; API tokens do not need it."},
            "paths": paths,
            "components": {
                "schemas": schemas,
                "securitySchemes": {
                    "session": {"type": "apiKey", "in": "cookie", "name": "ivr_session"},
                    "token": {"type": "http", "scheme": "bearer",
                              "description": "an API token: ivr_<id>_<secret>"},
                },
            },
            "security": [{"session": []}, {"token": []}],
        }


def ErrorEnvelopeModel() -> type[BaseModel]:
    from console.api.schemas import ErrorEnvelope  # noqa: PLC0415

    return ErrorEnvelope


def _ref(model: type[BaseModel]) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{model.__name__}"}


def _query_parameters(model: type[BaseModel]) -> list[dict[str, Any]]:
    schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
    required = set(schema.get("required", []))
    out = []
    for name, declared in schema.get("properties", {}).items():
        prop = dict(declared)
        description = prop.pop("description", "")
        prop.pop("title", None)
        param: dict[str, Any] = {"name": name, "in": "query", "required": name in required,
                                 "schema": prop}
        if description:
            param["description"] = description
        if prop.get("type") == "array" or "array" in str(prop.get("anyOf", "")):
            param["style"], param["explode"] = "form", True
        out.append(param)
    return out


def _operation_doc(op: Operation) -> dict[str, Any]:
    doc: dict[str, Any] = {"operationId": op.operation_id, "summary": op.summary,
                           "tags": [op.tag]}
    if op.description:
        doc["description"] = op.description
    if op.permission is None:
        doc["security"] = []
    else:
        doc["x-permission"] = op.permission
    params = [{"name": n, "in": "path", "required": True,
               "schema": op.params.get(n, PathParam()).schema()} for n in op.path_params]
    if op.query is not None:
        params += _query_parameters(op.query)
    if op.permission is not None and op.method not in SAFE_METHODS:
        params.append({"name": "X-CSRF-Token", "in": "header", "required": False,
                       "description": "required with a session cookie (not with a token)",
                       "schema": {"type": "string"}})
    if params:
        doc["parameters"] = params
    if op.body is not None:
        doc["requestBody"] = {"required": True,
                              "content": {JSON_TYPE: {"schema": _ref(op.body)}}}
    elif op.raw_body:
        doc["requestBody"] = {"required": True, "content": {
            t: {"schema": {"type": "string"}} for t in op.raw_body}}
    responses: dict[str, Any] = {}
    if op.response is not None:
        for status in (op.status, *op.also):
            responses[str(status)] = {"description": "OK",
                                      "content": {JSON_TYPE: {"schema": _ref(op.response)}}}
    elif op.produces != JSON_TYPE:
        responses[str(op.status)] = {"description": "OK", "content": {
            op.produces: {"schema": {"type": "string"}}}}
        if op.produces.startswith("audio/"):
            responses["206"] = {"description": "Partial content (Range)",
                                "content": {op.produces: {"schema": {"type": "string"}}}}
            responses["416"] = {"description": "Range not satisfiable"}
    elif op.status == 204:
        responses["204"] = {"description": "Done"}
    else:
        responses[str(op.status)] = {"description": "OK", "content": {
            JSON_TYPE: {"schema": {"type": "object"}}}}
    err = {"content": {JSON_TYPE: {"schema": _ref(ErrorEnvelopeModel())}}}
    for status, text in ERROR_STATUSES.items():
        responses[str(status)] = {"description": text, **err}
    doc["responses"] = responses
    return doc


# --- dispatch ----------------------------------------------------------------------------------


def _query_dict(request: web.Request, model: type[BaseModel]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, info in model.model_fields.items():
        key = info.alias or name
        values = request.query.getall(key, [])
        if not values:
            continue
        is_list = "list" in str(info.annotation)
        # a scalar given twice is refused by validation (which value was meant is unknowable)
        out[key] = values if is_list or len(values) > 1 else values[0]
    return out


def _path_values(request: web.Request, op: Operation) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name in op.path_params:
        spec = op.params.get(name, PathParam())
        raw = request.match_info[name]
        if len(raw) > spec.max_length or (spec.pattern and not re.fullmatch(spec.pattern, raw)):
            raise ApiError(422, "invalid", f"{name}: {raw[:40]!r} is not valid here", name)
        if spec.kind is int:
            try:
                value = int(raw)
            except ValueError as e:
                raise ApiError(422, "invalid", f"{name}: must be a whole number", name) from e
            if not 1 <= value <= MAX_INT_PARAM:
                raise ApiError(422, "invalid", f"{name}: must be 1 to {MAX_INT_PARAM}", name)
            out[name] = value
        else:
            out[name] = raw
    return out


async def _read_json(request: web.Request, model: type[BaseModel]) -> Any:
    ctype = request.content_type
    raw = await request.read()
    if ctype != JSON_TYPE and not (ctype == "application/octet-stream" and not raw):
        raise ApiError(415, "unsupported_media_type",
                       f"send the body as {JSON_TYPE} (got {ctype or 'none'})", "body")
    if not raw.strip():
        raise ApiError(400, "body_required", "this operation needs a JSON body", "body")
    try:
        data = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        pos = f" at character {e.pos}" if isinstance(e, json.JSONDecodeError) else ""
        raise ApiError(400, "malformed_json", f"the body is not valid JSON{pos}",
                       "body") from e
    try:
        return model.model_validate(data)
    except ValidationError as e:
        raise error_from_validation(e, "body") from e


async def _read_raw(request: web.Request, op: Operation, limit: int) -> bytes:
    if request.content_type not in op.raw_body:
        raise ApiError(415, "unsupported_media_type",
                       f"send the file as {' or '.join(op.raw_body)}", "body")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.content.iter_chunked(64 * 1024):
        size += len(chunk)
        if size > limit:
            raise ApiError(413, "too_large", f"the upload is larger than {limit} bytes", "body")
        chunks.append(chunk)
    return b"".join(chunks)


def _dispatcher(op: Operation, authenticate: Authenticator,
                max_raw_bytes: int) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    async def handle(request: web.Request) -> web.StreamResponse:
        principal = await authenticate(request, op)
        if op.permission is not None:
            assert principal is not None
            principal.require(op.permission)
        path = _path_values(request, op)
        query = None
        if op.query is not None:
            try:
                query = op.query.model_validate(_query_dict(request, op.query))
            except ValidationError as e:
                raise error_from_validation(e, "query") from e
        body = None
        raw = b""
        if op.body is not None:
            body = await _read_json(request, op.body)
        elif op.raw_body:
            raw = await _read_raw(request, op, max_raw_bytes)
        result = await op.handler(ApiRequest(request, principal, body, query, path, raw))
        if isinstance(result, web.StreamResponse):
            return result
        if result is None:  # no body: 204, or the 202 the operation declares (queued)
            return web.Response(status=202 if op.status == 202 else 204)
        return json_response(result, op.status)

    return handle


def json_response(model: BaseModel, status: int = 200,
                  headers: dict[str, str] | None = None) -> web.Response:
    """UTF-8 JSON straight from pydantic's serializer (Chinese stays Chinese)."""
    return web.Response(body=model.model_dump_json(by_alias=True), status=status,
                        content_type=JSON_TYPE, charset="utf-8", headers=headers)
