"""Outbound campaigns as the console changes them: tenant-scoped and audited.

Everything goes through :class:`campaigns.service.CampaignService` (the CLI's service too), so
a campaign made in the console and one made with ``ivr campaign create`` are the same thing.
This layer adds what the API needs: the caller's tenants (another tenant's campaign is
``Missing``, never confirmed to exist), one audit entry per change, and the service's errors
turned into the console's (``Invalid`` names the field, ``Conflict`` the state).
Blocking: the API calls it in a worker thread.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

from campaigns.contacts import ContactImport
from campaigns.reports import write_csv
from campaigns.service import CampaignBlocked, CampaignService, Created
from campaigns.spec import SpecError
from campaigns.store import BadTransition, Campaign, CampaignNotFound
from console.audit import AuditLog
from console.services.base import Actor, Audited, Conflict, Invalid, Missing
from storage.tenancy import Tenants
from tabular import TableError
from tabular.table import TableInput

CONTROL_ACTIONS = ("start", "pause", "resume", "stop")


def _spec_error(e: SpecError) -> Invalid:
    """The first field the message names (``pacing.calls_per_s: ...``) as the error's field,
    and every field's problem in ``details`` (the console's form shows each by its field)."""
    text = str(e)
    head = text.split(":", 1)[0] if ":" in text else ""
    field = f"spec.{head}" if head and " " not in head else "spec"
    details = [{"field": f"spec.{loc}" if loc else "spec", "message": msg}
               for loc, msg in e.problems]
    return Invalid(text, field, details=details)


def _summary(c: Campaign) -> dict[str, Any]:
    return {"id": c.id, "name": c.name, "state": c.state, "flow": f"{c.flow_id}@{c.flow_version}",
            "contacts": c.total}


class CampaignOps(Audited):
    def __init__(self, service: CampaignService, audit: AuditLog) -> None:
        super().__init__(audit)
        self.service = service

    # -- reading --------------------------------------------------------------------------------

    def get(self, tenants: Tenants, campaign_id: str) -> Campaign:
        try:
            c = self.service.get(campaign_id)
        except CampaignNotFound as e:
            raise Missing(f"no campaign {campaign_id!r}") from e
        if not tenants.allows(c.tenant):
            raise Missing(f"no campaign {campaign_id!r}")
        return c

    def list(self, tenants: Tenants, state: str | None = None) -> list[Campaign]:
        if tenants.is_every:
            found = self.service.list(None)
        else:
            found = [c for t in sorted(tenants.ids or ()) for c in self.service.list(t)]
        return [c for c in found if state is None or c.state == state]

    def status(self, tenants: Tenants, campaign_id: str) -> dict[str, Any]:
        self.get(tenants, campaign_id)
        return self.service.status(campaign_id)

    def report(self, tenants: Tenants, campaign_id: str) -> dict[str, Any]:
        self.get(tenants, campaign_id)
        return self.service.report(campaign_id)

    def report_csv(self, tenants: Tenants, campaign_id: str) -> str:
        self.get(tenants, campaign_id)
        buf = io.StringIO()
        buf.write("\ufeff")  # Excel on Chinese Windows reads UTF-8 only with the BOM
        write_csv(self.service.store, campaign_id, buf)
        return buf.getvalue()

    # -- changing -------------------------------------------------------------------------------

    def create(self, actor: Actor, tenant: str, spec: dict[str, Any],
               contacts: TableInput | None = None, *, encoding: str | None = None,
               sheet: str | None = None, contacts_name: str = "<upload>",
               flow_files_in: Path | None = None) -> Created:
        """A draft in ``tenant`` (the spec's own ``tenant`` must be that one or absent).
        ``flow_files_in``: the CLI's spec folder, where a ``flow.file`` may be (the console
        pins published flows only: it reads no files on the server)."""
        if spec.get("tenant", tenant) != tenant:
            raise Invalid(f"spec.tenant: {spec.get('tenant')!r} is not the tenant you act on "
                          f"({tenant})", "spec.tenant")
        flow = spec.get("flow")
        if flow_files_in is None and isinstance(flow, dict) and flow.get("file"):
            raise Invalid("spec.flow.file: the console pins a published flow (flow.id and "
                          "flow.version), not a file on the server", "spec.flow.file")
        try:
            created = self.service.create({**spec, "tenant": tenant}, contacts,
                                          contacts_name=contacts_name, encoding=encoding,
                                          sheet=sheet, base_dir=flow_files_in)
        except SpecError as e:
            raise _spec_error(e) from e
        except TableError as e:
            raise Invalid(str(e), "body") from e
        except ValueError as e:
            if "exists already" in str(e):
                raise Conflict(f"id: campaign {spec.get('id')!r} exists already", "spec.id",
                               code="exists") from e
            raise Invalid(str(e), "body") from e
        c = created.campaign
        self._audit(actor, tenant=tenant, action="campaign.create", resource=f"campaign:{c.id}",
                    after={**_summary(c), "spec": c.spec.model_dump(mode="json")},
                    detail=created.contacts.summary() if contacts is not None else None)
        return created

    def edit(self, actor: Actor, tenants: Tenants, campaign_id: str, spec: dict[str, Any]
             ) -> Campaign:
        before = self.get(tenants, campaign_id)
        if isinstance(spec.get("flow"), dict) and spec["flow"].get("file"):
            raise Invalid("spec.flow.file: pin a published flow (flow.id, flow.version)",
                          "spec.flow.file")
        data = {**spec, "tenant": spec.get("tenant", before.tenant)}
        try:
            after = self.service.edit(campaign_id, data)
        except SpecError as e:
            raise _spec_error(e) from e
        except BadTransition as e:
            raise Conflict(str(e), "state", code="bad_state", current=before.state) from e
        self._audit(actor, tenant=before.tenant, action="campaign.edit",
                    resource=f"campaign:{campaign_id}",
                    before=before.spec.model_dump(mode="json"),
                    after=after.spec.model_dump(mode="json"))
        return after

    def control(self, actor: Actor, tenants: Tenants, campaign_id: str, action: str
                ) -> Campaign:
        """start / pause / resume / stop. Starting screens the campaign's texts first."""
        if action not in CONTROL_ACTIONS:
            raise Invalid(f"action: {action!r} is not one of {', '.join(CONTROL_ACTIONS)}",
                          "action")
        before = self.get(tenants, campaign_id)
        if action in ("start", "resume") and before.state == "draft" and before.total == 0:
            raise Conflict("contacts: the campaign has no contacts yet (upload some first)",
                           "contacts", code="no_contacts")
        try:
            after: Campaign = getattr(self.service, action)(campaign_id)
        except CampaignBlocked as e:
            raise Conflict(f"the campaign says something the sensitive words block: {e}",
                           "content", code="content_blocked", current=e.problems) from e
        except BadTransition as e:
            raise Conflict(str(e), "state", code="bad_state", current=before.state) from e
        self._audit(actor, tenant=before.tenant, action=f"campaign.{action}",
                    resource=f"campaign:{campaign_id}", before={"state": before.state},
                    after={"state": after.state})
        return after

    def add_contacts(self, actor: Actor, tenants: Tenants, campaign_id: str,
                     source: TableInput, *, encoding: str | None = None,
                     sheet: str | None = None) -> ContactImport:
        c = self.get(tenants, campaign_id)
        try:
            imported = self.service.add_contacts(campaign_id, source, name="<upload>",
                                                 encoding=encoding, sheet=sheet)
        except TableError as e:
            raise Invalid(str(e), "body") from e
        except ValueError as e:  # stopped or finished
            raise Conflict(str(e), "state", code="bad_state", current=c.state) from e
        self._audit(actor, tenant=c.tenant, action="campaign.contacts",
                    resource=f"campaign:{campaign_id}", detail=imported.summary())
        return imported
