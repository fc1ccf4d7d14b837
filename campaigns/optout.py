"""The opt-out node's service: blacklist the number in the list store at once.

Scope ``campaign`` blocks this campaign only, ``tenant`` every call of the tenant, ``global``
every tenant's. The entry (reason ``opt-out``, source ``call CALL-ID``) is in the shared list
store the moment the node returns, so the dialler's next check (on any node) refuses the number,
and ``campaign.opt_out`` goes on the bus for the console and the report.
"""

from __future__ import annotations

from compliance.lists import ListEntry, ListKind, ListReason, Scope
from compliance.numbers import normalize
from compliance.service import ComplianceService
from core.bus import EventBus


class ComplianceOptOut:
    def __init__(self, compliance: ComplianceService, bus: EventBus | None = None) -> None:
        self.compliance = compliance
        self.bus = bus

    async def opt_out(self, number: str, tenant: str, campaign: str | None, scope: str,
                      source: str) -> str:
        e164 = normalize(number, self.compliance.region)
        if scope == "global":
            where = Scope()
        elif scope == "campaign" and campaign:
            where = Scope(tenant, campaign)
        else:
            where = Scope(tenant)
        entry = ListEntry(ListKind.BLACK, e164, False, where, ListReason.OPT_OUT,
                          source[:128])
        await self.compliance.lists.add([entry])
        if self.bus is not None:
            self.bus.publish("campaign.opt_out", None, number=e164, tenant=tenant,
                             campaign=campaign, scope=where.key, source=source)
        return f"{e164} blacklisted ({where.key}, opt-out)"
