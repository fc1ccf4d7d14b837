"""Call records (search, detail, recording) and the live event stream."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from aiohttp import web

from console.api import schemas as s
from console.api.context import services
from console.api.errors import ApiError
from console.api.routing import Api, ApiRequest, PathParam
from console.live import Viewer
from core.clock import Clock
from engine.cdr import CallQuery, CallRecord
from storage.tenancy import Tenants

CALL = {"call_id": PathParam(str, r"^[A-Za-z0-9@._:+-]{1,255}$", 255)}
LATENCY_KINDS = ("latency.turn", "turn")


def call_out(r: CallRecord) -> s.CallOut:
    return s.CallOut(id=r.id, tenant=r.tenant, sip_call_id=r.sip_call_id, direction=r.direction,
                     from_number=r.from_number, to_number=r.to_number, invite_at=r.invite_at,
                     answer_at=r.answer_at, end_at=r.end_at, duration_s=round(r.duration_s, 3),
                     disposition=r.disposition, hangup_cause=r.hangup_cause,
                     hangup_side=r.hangup_side, sip_status=r.sip_status, digits=r.digits,
                     codec=r.codec, flow_id=r.flow_id, flow_version=r.flow_version,
                     campaign_id=r.campaign_id, flow_result=r.flow_result,
                     has_recording=bool(r.recording_path))


def recording_file(path: str | None, recordings_dir: Path) -> Path | None:
    """The recording, only if it lies inside the recordings folder (a record's path is data,
    and data must not point the server at other files)."""
    if not path:
        return None
    try:
        real = Path(path).resolve()
        root = recordings_dir.resolve()
    except OSError:
        return None
    if not real.is_relative_to(root) or not real.is_file():
        return None
    return real


async def transcript_of(req: ApiRequest, rec: CallRecord) -> list[dict[str, Any]] | None:
    """The inspected call's turns (speaker, ms offsets, text, words), when there are any."""
    ops = services(req).inspection
    if ops is None:
        return None
    row = await asyncio.to_thread(ops.results.get, rec.id, tenants=Tenants.one(rec.tenant))
    if row is None:
        return None
    return list((row.transcript or {}).get("turns", []))


def register(api: Api) -> None:
    @api.op("GET", "/api/calls", summary="Search call records, newest first", tag="calls",
            permission="calls.read", query=s.CallQueryIn, response=s.CallPageOut,
            description="Staff may pass tenant=* to search every tenant.")
    async def search_calls(req: ApiRequest) -> s.CallPageOut:
        q: s.CallQueryIn = req.query
        tenants = req.who.tenants_for(q.tenant, allow_every=True)
        query = CallQuery(since=q.since, until=q.until, number=q.number, flow_id=q.flow_id,
                          disposition=q.disposition, direction=q.direction,
                          campaign_id=q.campaign_id)
        page = await asyncio.to_thread(services(req).calls.search, query, tenants=tenants,
                                       limit=q.limit, cursor=q.cursor)
        return s.CallPageOut(items=[call_out(r) for r in page.records],
                             next_cursor=page.next_cursor)

    async def load(req: ApiRequest) -> CallRecord:
        tenants = req.who.tenants_for(req.query.tenant, allow_every=True)
        rec = await asyncio.to_thread(services(req).calls.get, req.path["call_id"],
                                      tenants=tenants)
        if rec is None:
            raise ApiError(404, "not_found", f"no call {req.path['call_id']!r}")
        return rec

    @api.op("GET", "/api/calls/{call_id}", summary="One call: trace, latency, media",
            tag="calls", permission="calls.read", query=s.TenantQuery,
            response=s.CallDetailOut, params=CALL)
    async def get_call(req: ApiRequest) -> s.CallDetailOut:
        rec = await load(req)
        latency = [e for e in rec.trace if e.get("kind") in LATENCY_KINDS]
        has_file = recording_file(rec.recording_path,
                                  services(req).options.recordings_dir) is not None
        return s.CallDetailOut(
            **call_out(rec).model_dump(), trace=rec.trace, media=rec.media, latency=latency,
            # names the call's tenant: staff who opened another tenant's call fetch it too
            recording_url=f"/api/calls/{rec.id}/recording?tenant={rec.tenant}" if has_file
            else None,
            transcript=await transcript_of(req, rec))

    @api.op("GET", "/api/calls/{call_id}/recording", summary="The call's recording (WAV; "
            "HTTP Range supported)", tag="calls", permission="calls.recording",
            query=s.TenantQuery, produces="audio/wav", params=CALL)
    async def get_recording(req: ApiRequest) -> web.FileResponse:
        rec = await load(req)
        path = recording_file(rec.recording_path, services(req).options.recordings_dir)
        if path is None:
            raise ApiError(404, "not_found", "this call has no recording")
        return web.FileResponse(path, headers={"Content-Type": "audio/wav"})

    @api.op("GET", "/api/events", summary="Live events (Server-Sent Events)", tag="events",
            permission="events.read", query=s.EventsQuery, produces="text/event-stream",
            description="call.*, flow.*, latency.* events of the tenants you may see. A "
                        "viewer that cannot keep up gets `event: stream.close` with reason "
                        "`slow_consumer` and may reconnect with Last-Event-ID. Staff may pass "
                        "tenant=* for every tenant.")
    async def events(req: ApiRequest) -> web.StreamResponse:
        svc = services(req)
        if svc.hub is None:
            raise ApiError(409, "no_engine", "this console runs without an engine (ivr "
                                             "console): live events need `ivr run`")
        q: s.EventsQuery = req.query
        tenants = req.who.tenants_for(q.tenant, allow_every=True)
        last = req.request.headers.get("Last-Event-ID", "")
        viewer = svc.hub.join(tenants, q.topics, q.call_id,
                              int(last) if last.isdigit() else None)
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream",
                                               "Cache-Control": "no-store",
                                               "X-Accel-Buffering": "no"})
        try:
            await response.prepare(req.request)
            await stream(response, viewer, svc.clock,
                         heartbeat_s=svc.options.events_heartbeat_s,
                         write_timeout_s=svc.options.events_write_timeout_s,
                         coalesce_s=svc.options.events_coalesce_s)
        except ConnectionResetError:
            pass
        finally:
            svc.hub.leave(viewer)
        return response


WRITE_BATCH = 500  # events sent in one write at most


async def stream(response: web.StreamResponse, viewer: Viewer, clock: Clock, *,
                 heartbeat_s: float, write_timeout_s: float, coalesce_s: float) -> None:
    """Write the viewer's events until it is dropped or the client goes away. Every wait and
    every write is bounded: a client that takes nothing for ``write_timeout_s`` is dropped as
    too slow, so a stalled client never holds the server. Events that arrive within
    ``coalesce_s`` of each other go out in one write (one wake-up and one send per viewer
    instead of one per event: what lets a hundred viewers watch hundreds of calls)."""
    try:
        await clock.wait_for(response.write(b"retry: 3000\n\n"), write_timeout_s)
        while viewer.closed is None:
            if not viewer.backlog:
                try:
                    await clock.wait_for(viewer.wake.wait(), heartbeat_s)
                except TimeoutError:
                    await clock.wait_for(response.write(b": keep-alive\n\n"), write_timeout_s)
                    continue
                if coalesce_s > 0:  # gather more, unless the backlog is already half full
                    try:
                        await clock.wait_for(viewer.urgent.wait(), coalesce_s)
                    except TimeoutError:
                        pass
            events = viewer.take(WRITE_BATCH)
            if viewer.closed is not None:
                break
            await clock.wait_for(response.write(b"".join(ev.sse() for ev in events)),
                                 write_timeout_s)
            viewer.delivered += len(events)
    except TimeoutError:
        viewer.closed = viewer.closed or "slow_consumer"
        return  # the connection does not take data: saying why would block again
    reason = viewer.closed or "closed"
    message = {"slow_consumer": "you fell too far behind the live events; reconnect (with "
                                "Last-Event-ID) to resume",
               "server_stopping": "the server is stopping"}.get(reason, reason)
    frame = (f'event: stream.close\ndata: {{"reason": "{reason}", '
             f'"message": "{message}"}}\n\n').encode()
    try:
        await clock.wait_for(response.write(frame), write_timeout_s)
    except TimeoutError:
        pass
