"""Flows: drafts, validation, publishing, versions, diff, rollback, routes, test cases, the
simulator and test calls."""

from __future__ import annotations

import asyncio
from dataclasses import asdict
from typing import Any

from aiohttp import web

from console.api import flow_schemas as fs
from console.api import schemas as s
from console.api.admin import actor
from console.api.context import services
from console.api.errors import ApiError
from console.api.routing import Api, ApiRequest, PathParam, json_response
from console.services.simulator import SimSession
from console.services.testcalls import TestCall
from flows.drafts import Draft
from flows.store import PublishedFlow
from flows.validator import Problem

FLOW = {"flow_id": PathParam(str, s.FLOW_ID_PATTERN, 64)}
VERSION = {**FLOW, "version": PathParam(int)}
NUMBER = {"number": PathParam(str, s.NUMBER_PATTERN, 64)}
SESSION = {"session_id": PathParam(str, r"^[A-Za-z0-9_-]{1,32}$", 32)}
PROMPT = {**SESSION, "seq": PathParam(int, r"^[0-9]{1,6}$", 6)}
CALL = {"call_id": PathParam(str, r"^[0-9a-f-]{36}$", 36)}


def problems_out(problems: list[Problem]) -> list[fs.ProblemOut]:
    return [fs.ProblemOut(**p.as_dict()) for p in problems]


def draft_out(d: Draft, problems: list[Problem]) -> fs.DraftOut:
    return fs.DraftOut(flow_id=d.flow_id, tenant=d.tenant, revision=d.revision,
                      document=d.document, updated_at=d.updated_at, updated_by=d.updated_by,
                      problems=problems_out(problems))


def version_out(p: PublishedFlow, by: str = "") -> fs.VersionOut:
    return fs.VersionOut(flow_id=p.flow_id, version=p.version, content_hash=p.content_hash,
                        published_at=p.published_at, published_by=by, created=p.created)


def etag(revision: int) -> str:
    return f'"r{revision}"'


def if_match(req: ApiRequest, body_revision: int | None) -> int | None:
    """The revision the client edited: the body's, else an ``If-Match: "r<n>"`` header."""
    if body_revision is not None:
        return body_revision
    header = req.request.headers.get("If-Match", "").strip()
    if not header:
        return None
    try:
        value = int(header.strip('"').removeprefix("W/").strip('"').lstrip("r"))
    except ValueError as e:
        raise ApiError(422, "invalid", "If-Match: use the ETag a GET returned", "If-Match") from e
    if not 1 <= value <= s.MAX_ID:
        raise ApiError(422, "invalid", "If-Match: use the ETag a GET returned", "If-Match")
    return value


def sim_out(session: SimSession, after: int = 0) -> fs.SimOut:
    outputs = [fs.SimOutputOut(**{k: v for k, v in o.items() if k in fs.SimOutputOut.model_fields})
               for o in session.outputs if o["seq"] > after]
    return fs.SimOut(id=session.id, flow_id=session.flow_id, target=session.target,
                    status="ended" if session.task.done() else "running",
                    waiting_for=session.call.waiting_for,
                    current_node=session.interp.current_node, outputs=outputs,
                    result=session.result())


def testcall_out(c: TestCall) -> fs.TestCallOut:
    return fs.TestCallOut(call_id=c.call_id, flow_id=c.flow_id, flow_version=c.flow_version,
                         to=c.target, status=c.status, placed_by=c.placed_by,
                         placed_at=c.placed_at,
                         events_url=f"/api/events?call_id={c.call_id}&tenant={c.tenant}",
                         record=c.record)


def register(api: Api) -> None:
    flows_ops = lambda req: services(req).flows  # noqa: E731

    def tenant(req: ApiRequest) -> str:
        return req.who.tenant_for(req.query.tenant if req.query is not None else None)

    @api.op("GET", "/api/schemas/flow", summary="The flow JSON Schema", tag="flows",
            permission="flows.read")
    async def flow_schema(req: ApiRequest) -> web.Response:
        return web.json_response(services(req).flow_schema)

    @api.op("GET", "/api/flows", summary="Flows: drafts and published", tag="flows",
            permission="flows.read", query=s.TenantQuery, response=fs.FlowList)
    async def list_flows(req: ApiRequest) -> fs.FlowList:
        rows = await asyncio.to_thread(flows_ops(req).overview, tenant(req))
        return fs.FlowList(items=[fs.FlowSummaryOut(**asdict(r)) for r in rows])

    @api.op("POST", "/api/flows", summary="Create a flow (its first draft)", tag="flows",
            permission="flows.write", query=s.TenantQuery, body=fs.FlowCreateIn,
            response=fs.DraftOut, status=201)
    async def create_flow(req: ApiRequest) -> web.Response:
        doc: dict[str, Any] = req.body.document
        flow_id = doc.get("id")
        if not isinstance(flow_id, str):
            raise ApiError(422, "invalid", "document.id: the flow's id (a string)",
                           "body.document.id")
        draft, problems = await asyncio.to_thread(flows_ops(req).save_draft, actor(req),
                                                  tenant(req), flow_id, doc, None)
        return json_response(draft_out(draft, problems), 201, {"ETag": etag(draft.revision)})

    @api.op("GET", "/api/flows/{flow_id}", summary="A flow: summary and draft", tag="flows",
            permission="flows.read", query=s.TenantQuery, response=fs.FlowOut, params=FLOW)
    async def get_flow(req: ApiRequest) -> web.Response:
        ops, t, fid = flows_ops(req), tenant(req), req.path["flow_id"]

        def load() -> tuple[Any, Draft | None]:
            summary = ops.summary(t, fid)
            draft = ops.draft(t, fid) if summary.draft_revision is not None else None
            return summary, draft

        summary, draft = await asyncio.to_thread(load)
        from console.services.flows import problems_of  # noqa: PLC0415

        out = fs.FlowOut(summary=fs.FlowSummaryOut(**asdict(summary)),
                        draft=draft_out(draft, problems_of(draft.document)) if draft else None)
        return json_response(out, headers={"ETag": etag(draft.revision)} if draft else None)

    @api.op("PUT", "/api/flows/{flow_id}/draft", summary="Save the draft (invalid drafts "
            "too); a stale revision is a 409", tag="flows", permission="flows.write",
            query=s.TenantQuery, body=fs.DraftSaveIn, response=fs.DraftOut, params=FLOW)
    async def save_draft(req: ApiRequest) -> web.Response:
        b: fs.DraftSaveIn = req.body
        base = if_match(req, b.revision)
        draft, problems = await asyncio.to_thread(flows_ops(req).save_draft, actor(req),
                                                  tenant(req), req.path["flow_id"], b.document,
                                                  base)
        return json_response(draft_out(draft, problems), headers={"ETag": etag(draft.revision)})

    @api.op("DELETE", "/api/flows/{flow_id}/draft", summary="Discard the draft (published "
            "versions stay)", tag="flows", permission="flows.write", query=fs.RevisionQuery,
            status=204, params=FLOW)
    async def delete_draft(req: ApiRequest) -> None:
        await asyncio.to_thread(flows_ops(req).delete_draft, actor(req), tenant(req),
                                req.path["flow_id"], if_match(req, req.query.revision))

    @api.op("POST", "/api/flows/{flow_id}/validate", summary="Every problem, with node and "
            "port", tag="flows", permission="flows.read", query=s.TenantQuery,
            body=fs.ValidateIn, response=fs.ProblemsOut, params=FLOW)
    async def validate_flow(req: ApiRequest) -> fs.ProblemsOut:
        from console.services.flows import problems_of  # noqa: PLC0415

        doc = req.body.document
        if doc is None:
            draft = await asyncio.to_thread(flows_ops(req).draft, tenant(req),
                                            req.path["flow_id"])
            doc = draft.document
        problems = await asyncio.to_thread(problems_of, doc)
        return fs.ProblemsOut(valid=not problems, problems=problems_out(problems))

    @api.op("POST", "/api/flows/{flow_id}/publish", summary="Publish the draft as a new "
            "immutable version (the tenant's words are enforced)", tag="flows",
            permission="flows.publish", query=s.TenantQuery, body=fs.PublishIn,
            response=fs.VersionOut, status=201, params=FLOW, also=(200,),
            description="201: a new version; 200: the draft's content is already the latest "
                        "version (nothing new was stored).")
    async def publish_flow(req: ApiRequest) -> web.Response:
        pub = await asyncio.to_thread(flows_ops(req).publish, actor(req), tenant(req),
                                      req.path["flow_id"], req.body.revision)
        return json_response(version_out(pub, req.who.actor), 201 if pub.created else 200)

    @api.op("GET", "/api/flows/{flow_id}/versions", summary="Published versions", tag="flows",
            permission="flows.read", query=s.TenantQuery, response=fs.VersionList, params=FLOW)
    async def list_versions(req: ApiRequest) -> fs.VersionList:
        fid = req.path["flow_id"]
        rows = await asyncio.to_thread(flows_ops(req).versions, tenant(req), fid)
        return fs.VersionList(items=[fs.VersionOut(flow_id=fid, **r) for r in rows])

    @api.op("GET", "/api/flows/{flow_id}/versions/{version}", summary="One version with its "
            "document", tag="flows", permission="flows.read", query=s.TenantQuery,
            response=fs.VersionDocOut, params=VERSION)
    async def get_version(req: ApiRequest) -> fs.VersionDocOut:
        pub = await asyncio.to_thread(flows_ops(req).version, tenant(req), req.path["flow_id"],
                                      req.path["version"])
        return fs.VersionDocOut(**version_out(pub).model_dump(), document=pub.document)

    @api.op("GET", "/api/flows/{flow_id}/diff", summary="What changed between two versions "
            "(or a version and the draft)", tag="flows", permission="flows.read",
            query=fs.DiffQuery, response=fs.DiffOut, params=FLOW)
    async def diff_flow(req: ApiRequest) -> fs.DiffOut:
        q: fs.DiffQuery = req.query
        d = await asyncio.to_thread(flows_ops(req).diff, tenant(req), req.path["flow_id"],
                                    q.from_, q.to)
        return fs.DiffOut(**d.as_dict(), empty=d.empty)

    @api.op("POST", "/api/flows/{flow_id}/rollback", summary="Publish an old version's "
            "content as the newest version", tag="flows", permission="flows.publish",
            query=s.TenantQuery, body=fs.RollbackIn, response=fs.VersionOut, status=201,
            params=FLOW)
    async def rollback_flow(req: ApiRequest) -> fs.VersionOut:
        pub = await asyncio.to_thread(flows_ops(req).rollback, actor(req), tenant(req),
                                      req.path["flow_id"], req.body.version)
        return version_out(pub, req.who.actor)

    # --- test cases ----------------------------------------------------------------------------

    def tests_out(fid: str, d: Draft) -> fs.TestsOut:
        return fs.TestsOut(flow_id=fid, revision=d.revision, document=d.document,
                          updated_at=d.updated_at, updated_by=d.updated_by)

    @api.op("GET", "/api/flows/{flow_id}/tests", summary="The flow's stored test cases",
            tag="flows", permission="flows.read", query=s.TenantQuery, response=fs.TestsOut,
            params=FLOW)
    async def get_tests(req: ApiRequest) -> fs.TestsOut:
        d = await asyncio.to_thread(flows_ops(req).test_suite, tenant(req), req.path["flow_id"])
        return tests_out(req.path["flow_id"], d)

    @api.op("PUT", "/api/flows/{flow_id}/tests", summary="Store test cases (a stale revision "
            "is a 409)", tag="flows", permission="flows.write", query=s.TenantQuery,
            body=fs.TestsSaveIn, response=fs.TestsOut, params=FLOW)
    async def save_tests(req: ApiRequest) -> fs.TestsOut:
        b: fs.TestsSaveIn = req.body
        d = await asyncio.to_thread(flows_ops(req).save_tests, actor(req), tenant(req),
                                    req.path["flow_id"], b.document, if_match(req, b.revision))
        return tests_out(req.path["flow_id"], d)

    @api.op("POST", "/api/flows/{flow_id}/tests/run", summary="Run the test cases against "
            "the draft or a version", tag="flows", permission="flows.write",
            query=s.TenantQuery, body=fs.TestRunIn, response=fs.TestRunOut, params=FLOW)
    async def run_tests(req: ApiRequest) -> fs.TestRunOut:
        b: fs.TestRunIn = req.body
        results = await flows_ops(req).run_tests(tenant(req), req.path["flow_id"], b.target,
                                                 b.document)
        cases = [fs.CaseOut(name=r.name, passed=r.passed, transcript=list(r.transcript),
                           steps=[fs.StepOut(index=st.index, action=st.action, ok=st.ok,
                                            message=st.message) for st in r.steps])
                 for r in results]
        passed = sum(c.passed for c in cases)
        return fs.TestRunOut(passed=passed, failed=len(cases) - passed, results=cases)

    # --- routes --------------------------------------------------------------------------------

    @api.op("GET", "/api/routes", summary="Dialled numbers and their flows", tag="routes",
            permission="routes.read", query=s.TenantQuery, response=fs.RouteList)
    async def list_routes(req: ApiRequest) -> fs.RouteList:
        routes = await asyncio.to_thread(flows_ops(req).routes, tenant(req))
        return fs.RouteList(items=[fs.RouteOut(number=n, flow_id=f)
                                  for n, f in sorted(routes.items())])

    @api.op("PUT", "/api/routes/{number}", summary="Route a number ('*': fallback) to a "
            "published flow", tag="routes", permission="routes.write", query=s.TenantQuery,
            body=fs.RouteIn, response=fs.RouteOut, params=NUMBER)
    async def set_route(req: ApiRequest) -> fs.RouteOut:
        await asyncio.to_thread(flows_ops(req).set_route, actor(req), tenant(req),
                                req.path["number"], req.body.flow_id)
        return fs.RouteOut(number=req.path["number"], flow_id=req.body.flow_id)

    @api.op("DELETE", "/api/routes/{number}", summary="Stop routing a number", tag="routes",
            permission="routes.write", query=s.TenantQuery, status=204, params=NUMBER)
    async def delete_route(req: ApiRequest) -> None:
        await asyncio.to_thread(flows_ops(req).delete_route, actor(req), tenant(req),
                                req.path["number"])

    # --- simulator -----------------------------------------------------------------------------

    @api.op("POST", "/api/simulations", summary="Start talking to a flow (services mocked)",
            tag="simulator", permission="flows.write", query=s.TenantQuery, body=fs.SimStartIn,
            response=fs.SimOut, status=201)
    async def start_simulation(req: ApiRequest) -> fs.SimOut:
        b: fs.SimStartIn = req.body
        session = await services(req).simulator.start(
            tenant(req), req.who.actor, b.flow_id, target=b.target, caller=b.caller,
            callee=b.callee, variables=b.variables, mocks=b.mocks)
        return sim_out(session)

    @api.op("GET", "/api/simulations/{session_id}", summary="Prompts and trace so far",
            tag="simulator", permission="flows.write", query=fs.SimQuery, response=fs.SimOut,
            params=SESSION)
    async def get_simulation(req: ApiRequest) -> fs.SimOut:
        session = services(req).simulator.get(tenant(req), req.path["session_id"])
        return sim_out(session, req.query.after)

    @api.op("POST", "/api/simulations/{session_id}/input", summary="Send digits, words, "
            "silence or a hang-up; returns what followed", tag="simulator",
            permission="flows.write", query=s.TenantQuery, body=fs.SimInputIn,
            response=fs.SimOut, params=SESSION)
    async def simulation_input(req: ApiRequest) -> fs.SimOut:
        sims = services(req).simulator
        before = sims.get(tenant(req), req.path["session_id"]).seq
        session = await sims.send(tenant(req), req.path["session_id"], req.body.kind,
                                  req.body.value)
        return sim_out(session, before)

    @api.op("GET", "/api/simulations/{session_id}/prompts/{seq}", summary="A spoken prompt "
            "of the simulation as audio (WAV, the engine's TTS and voice)", tag="simulator",
            permission="flows.write", query=s.TenantQuery, produces="audio/wav",
            params=PROMPT)
    async def simulation_prompt(req: ApiRequest) -> web.Response:
        wav = await services(req).simulator.prompt_audio(
            tenant(req), req.path["session_id"], req.path["seq"])
        return web.Response(body=wav, headers={"Content-Type": "audio/wav",
                                               "Cache-Control": "private, max-age=600"})

    @api.op("DELETE", "/api/simulations/{session_id}", summary="End a simulation",
            tag="simulator", permission="flows.write", query=s.TenantQuery, status=204,
            params=SESSION)
    async def end_simulation(req: ApiRequest) -> None:
        await services(req).simulator.end(tenant(req), req.path["session_id"])

    # --- test calls ----------------------------------------------------------------------------

    @api.op("POST", "/api/testcalls", summary="Place a real call that runs a flow; watch it "
            "on /api/events?call_id=", tag="testcalls", permission="testcalls.place",
            query=s.TenantQuery, body=fs.TestCallIn, response=fs.TestCallOut, status=202)
    async def place_test_call(req: ApiRequest) -> fs.TestCallOut:
        b: fs.TestCallIn = req.body
        call = await services(req).testcalls.start(actor(req), tenant(req), b.flow_id, b.to,
                                                   b.target)
        return testcall_out(call)

    @api.op("GET", "/api/testcalls", summary="Recent test calls", tag="testcalls",
            permission="calls.read", query=s.TenantQuery, response=fs.TestCallList)
    async def list_test_calls(req: ApiRequest) -> fs.TestCallList:
        calls = services(req).testcalls.recent(tenant(req))
        return fs.TestCallList(items=[testcall_out(c) for c in calls])

    @api.op("GET", "/api/testcalls/{call_id}", summary="A test call: status and, once ended, "
            "its record", tag="testcalls", permission="calls.read", query=s.TenantQuery,
            response=fs.TestCallOut, params=CALL)
    async def get_test_call(req: ApiRequest) -> fs.TestCallOut:
        return testcall_out(services(req).testcalls.get(tenant(req), req.path["call_id"]))
