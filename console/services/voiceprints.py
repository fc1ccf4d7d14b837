"""Voiceprints as the console shows them: who is enrolled (never the vector), erasure on
request, and the access log. Deletion goes through ``SpeakerService.delete`` (consent marked
withdrawn, its own biometric audit row) and the configuration audit log alike."""

from __future__ import annotations

import asyncio

from console.audit import AuditLog
from console.services.base import Actor, Audited, Missing
from speaker_id.service import SpeakerService
from speaker_id.store import AuditEntry, VoiceprintInfo


class VoiceprintOps(Audited):
    def __init__(self, service: SpeakerService, audit: AuditLog) -> None:
        super().__init__(audit)
        self.service = service

    async def enrolled(self, tenant: str, *, after: str = "", limit: int = 100,
                   query: str | None = None) -> list[VoiceprintInfo]:
        store = self.service.store
        return await asyncio.to_thread(
            lambda: store.voiceprints(tenant, after=after, limit=limit, query=query))

    async def delete(self, actor: Actor, tenant: str, person_id: str) -> None:
        existed = await self.service.delete(person_id, tenant_id=tenant,
                                            actor=actor.principal.actor)
        if not existed:
            raise Missing(f"no voiceprint for {person_id!r}")
        await asyncio.to_thread(self._audit, actor, tenant=tenant, action="voiceprint.delete",
                                resource=f"voiceprint:{person_id}",
                                before={"person_id": person_id, "tenant": tenant})

    async def access_log(self, tenant: str, person_id: str | None) -> list[AuditEntry]:
        store = self.service.store
        return await asyncio.to_thread(store.audit_log, tenant, person_id)
