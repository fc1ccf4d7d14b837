"""Outbound campaigns: create (a draft, from a spec), edit, upload contacts (CSV/TSV/XLSX in
any encoding; bad rows reported with line and column, the rest imported, repeated numbers
merged), start/pause/resume/stop, live status with progress and ETA, and reports (JSON, or a
CSV with one row per contact).

The spec is the same JSON ``ivr campaign create`` reads (docs/campaigns.md); its ``tenant`` is
the tenant the request acts on. The dialler is the engine's (``ivr run``); a campaign started
here is dialled within ``[campaigns] poll_s``.
"""

from __future__ import annotations

import asyncio
from typing import Any, Literal

from aiohttp import web
from pydantic import Field

from campaigns.store import Campaign
from console.api import compliance_schemas as cs
from console.api import schemas as s
from console.api.admin import actor
from console.api.compliance import TABLE_TYPES, import_out
from console.api.context import services
from console.api.errors import ApiError
from console.api.routing import Api, ApiRequest, PathParam
from console.services.campaigns import CampaignOps

CAMPAIGN = {"campaign_id": PathParam(str, r"^[A-Za-z0-9_.\-]{1,64}$", 64)}
ACTION = {**CAMPAIGN, "action": PathParam(str, r"^(start|pause|resume|stop)$", 6)}
CampaignState = Literal["draft", "running", "paused", "stopped", "finished"]


class CampaignListQuery(s.TenantQuery):
    state: CampaignState | None = None


class CampaignIn(s.In):
    spec: dict[str, Any] = Field(description="the campaign spec (docs/campaigns.md): name, "
                                 "flow {id, version}, schedule, pacing, retry, amd, caller_id, "
                                 "contacts (column mapping), ...")


class ContactsQuery(s.TenantQuery, cs.TableQuery):
    pass


class CampaignOut(s.Out):
    id: str
    tenant: str
    name: str
    state: CampaignState
    flow_id: str
    flow_version: int
    priority: int
    contacts: int = Field(description="contacts stored (after merging repeats)")
    created_at: float
    started_at: float | None
    finished_at: float | None
    spec: dict[str, Any]
    import_report: dict[str, Any]


class CampaignListOut(s.Out):
    items: list[CampaignOut]


class ContactsImportOut(cs.ImportOut):
    merged: int = Field(0, description="rows whose number was already a contact")


class CreatedOut(s.Out):
    campaign: CampaignOut
    contacts: ContactsImportOut | None = None


class StatusOut(s.Out):
    campaign: CampaignOut
    status: dict[str, Any] = Field(description="contacts by state, progress (0-1), attempts in "
                                   "the last minute, eta_s, skipped/deferred by reason")


class ReportOut(s.Out):
    report: dict[str, Any] = Field(description="attempts, answer rate, AMD split, completion, "
                                   "confirmations, opt-outs, SMS sent, dispositions")


def campaign_out(c: Campaign) -> CampaignOut:
    return CampaignOut(id=c.id, tenant=c.tenant, name=c.name, state=c.state,  # type: ignore[arg-type]
                       flow_id=c.flow_id, flow_version=c.flow_version, priority=c.priority,
                       contacts=c.total, created_at=c.created_at, started_at=c.started_at,
                       finished_at=c.finished_at, spec=c.spec.model_dump(mode="json"),
                       import_report=c.import_report)


def _ops(req: ApiRequest) -> CampaignOps:
    ops = services(req).campaigns
    if ops is None:
        raise ApiError(409, "not_configured", "campaigns are not configured here")
    return ops


def _contacts_out(imported: Any) -> ContactsImportOut:
    base = import_out(len(imported.contacts), imported.rows, imported.errors,
                      imported.error_count)
    return ContactsImportOut(**base.model_dump(), merged=imported.merged)


def _tenants(req: ApiRequest) -> Any:
    return req.who.tenants_for(req.query.tenant if req.query is not None else None,
                               allow_every=True)


def register(api: Api) -> None:
    @api.op("GET", "/api/campaigns", summary="Campaigns of a tenant (staff: tenant=* for all)",
            tag="campaigns", permission="campaigns.read", query=CampaignListQuery,
            response=CampaignListOut)
    async def list_campaigns(req: ApiRequest) -> CampaignListOut:
        q: CampaignListQuery = req.query
        rows = await asyncio.to_thread(_ops(req).list, _tenants(req), q.state)
        return CampaignListOut(items=[campaign_out(c) for c in rows])

    @api.op("POST", "/api/campaigns", summary="Create a campaign (a draft; upload its contacts "
            "next)", tag="campaigns", permission="campaigns.write", query=s.TenantQuery,
            body=CampaignIn, response=CreatedOut, status=201)
    async def create_campaign(req: ApiRequest) -> CreatedOut:
        tenant = req.who.tenant_for(req.query.tenant)
        created = await asyncio.to_thread(_ops(req).create, actor(req), tenant, req.body.spec)
        return CreatedOut(campaign=campaign_out(created.campaign))

    @api.op("GET", "/api/campaigns/{campaign_id}", summary="A campaign with its live status "
            "(progress, ETA, reasons)", tag="campaigns", permission="campaigns.read",
            query=s.TenantQuery, response=StatusOut, params=CAMPAIGN)
    async def get_campaign(req: ApiRequest) -> StatusOut:
        ops, tenants, cid = _ops(req), _tenants(req), req.path["campaign_id"]

        def read() -> StatusOut:
            return StatusOut(campaign=campaign_out(ops.get(tenants, cid)),
                             status=ops.status(tenants, cid))

        return await asyncio.to_thread(read)

    @api.op("PATCH", "/api/campaigns/{campaign_id}", summary="Replace a draft's or a paused "
            "campaign's spec (contacts stay)", tag="campaigns", permission="campaigns.write",
            query=s.TenantQuery, body=CampaignIn, response=CampaignOut, params=CAMPAIGN)
    async def edit_campaign(req: ApiRequest) -> CampaignOut:
        c = await asyncio.to_thread(_ops(req).edit, actor(req), _tenants(req),
                                    req.path["campaign_id"], req.body.spec)
        return campaign_out(c)

    @api.op("POST", "/api/campaigns/{campaign_id}/actions/{action}", summary="start, pause, "
            "resume or stop (start screens every text against the sensitive words first)",
            tag="campaigns", permission="campaigns.control", query=s.TenantQuery,
            response=CampaignOut, params=ACTION)
    async def control_campaign(req: ApiRequest) -> CampaignOut:
        c = await asyncio.to_thread(_ops(req).control, actor(req), _tenants(req),
                                    req.path["campaign_id"], req.path["action"])
        return campaign_out(c)

    @api.op("POST", "/api/campaigns/{campaign_id}/contacts", summary="Upload contacts (CSV/TSV "
            "in any encoding, XLSX); bad rows reported, the rest imported, repeats merged",
            tag="campaigns", permission="campaigns.write", query=ContactsQuery,
            raw_body=TABLE_TYPES, response=ContactsImportOut, params=CAMPAIGN)
    async def upload_contacts(req: ApiRequest) -> ContactsImportOut:
        q: ContactsQuery = req.query
        imported = await asyncio.to_thread(
            _ops(req).add_contacts, actor(req), _tenants(req), req.path["campaign_id"],
            req.raw, encoding=q.encoding, sheet=q.sheet)
        return _contacts_out(imported)

    @api.op("GET", "/api/campaigns/{campaign_id}/report", summary="The campaign's report "
            "(attempts, answer rate, AMD split, confirmations, opt-outs, SMS)",
            tag="campaigns", permission="campaigns.read", query=s.TenantQuery,
            response=ReportOut, params=CAMPAIGN)
    async def campaign_report(req: ApiRequest) -> ReportOut:
        report = await asyncio.to_thread(_ops(req).report, _tenants(req),
                                         req.path["campaign_id"])
        return ReportOut(report=report)

    @api.op("GET", "/api/campaigns/{campaign_id}/report.csv", summary="One row per contact: "
            "state, attempts, last disposition, AMD, result (UTF-8 with BOM)",
            tag="campaigns", permission="campaigns.read", query=s.TenantQuery,
            produces="text/csv", params=CAMPAIGN)
    async def campaign_report_csv(req: ApiRequest) -> web.Response:
        cid = req.path["campaign_id"]
        text = await asyncio.to_thread(_ops(req).report_csv, _tenants(req), cid)
        return web.Response(text=text, content_type="text/csv", charset="utf-8", headers={
            "Content-Disposition": f'attachment; filename="campaign-{cid}.csv"'})
