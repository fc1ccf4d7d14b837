"""What every console service shares: who is acting, and how a change reaches the audit log."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from console.audit import AuditLog
from console.roles import Principal


class Conflict(Exception):
    """The change conflicts with the stored state (the API answers 409); ``field`` names
    what conflicts."""

    def __init__(self, message: str, field: str | None = None, code: str = "conflict",
                 current: Any = None) -> None:
        super().__init__(message)
        self.field = field
        self.code = code
        self.current = current


class Invalid(ValueError):
    """Input a service refuses (the API answers 422 naming ``field``)."""

    def __init__(self, message: str, field: str | None = None, code: str = "invalid",
                 details: list[dict[str, Any]] | None = None) -> None:
        super().__init__(message)
        self.field = field
        self.code = code
        self.details = details or []


class Missing(LookupError):
    """Not there, or not visible to this principal (the API answers 404 either way, so
    another tenant's ids are not even confirmed to exist)."""


@dataclass(frozen=True, slots=True)
class Actor:
    """Who acts, from where (an IP for the console, empty for the CLI)."""

    principal: Principal
    ip: str = ""


class Audited:
    """Base of the services that change configuration: one call writes the audit entry."""

    def __init__(self, audit: AuditLog) -> None:
        self.audit = audit

    def _audit(self, actor: Actor, *, tenant: str, action: str, resource: str,
               before: Any = None, after: Any = None, detail: dict[str, Any] | None = None
               ) -> None:
        p = actor.principal
        self.audit.record(actor=p.actor, actor_kind=p.via, tenant=tenant, action=action,
                          resource=resource, before=before, after=after, detail=detail,
                          ip=actor.ip)
