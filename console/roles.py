"""Roles, what each may do, and the principal a request (or a CLI command) acts as.

One table, :data:`PERMISSIONS`, says which roles hold each permission; the API checks it on every
operation, the OpenAPI document lists it per operation (``x-permission``) and the role tests are
generated from it. Tenancy is the second axis: a ``client`` user is pinned to its own tenant; the
operator's staff (admin, ops, designer, qa) act on any tenant they name, their own by default.
The operator's global word and black/white lists apply to every tenant, but only the operator's
staff may change them.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from storage.tenancy import Tenants, check_tenant_id


class Role(enum.StrEnum):
    ADMIN = "admin"  # everything, users, tenants
    OPS = "ops"  # flows, words, lists, voiceprints, test calls, live calls, audit
    DESIGNER = "designer"  # draws, tests and publishes flows; places test calls
    QA = "qa"  # reviews calls and recordings
    CLIENT = "client"  # an enterprise client: its own tenant's flows, lists, words, calls


OPERATOR_ROLES = frozenset({Role.ADMIN, Role.OPS, Role.DESIGNER, Role.QA})
EVERYONE = frozenset(Role)
_A, _O, _D, _Q, _C = Role.ADMIN, Role.OPS, Role.DESIGNER, Role.QA, Role.CLIENT

PERMISSIONS: dict[str, frozenset[Role]] = {
    "calls.read": EVERYONE,
    "calls.recording": frozenset({_A, _O, _Q, _C}),
    "events.read": EVERYONE,
    "stats.read": EVERYONE,  # the dashboard: counts and rates of the tenants one may see
    "flows.read": EVERYONE,
    "flows.write": frozenset({_A, _O, _D, _C}),  # drafts, test cases, simulator
    "flows.publish": frozenset({_A, _O, _D, _C}),  # the tenant's words are enforced at publish
    "routes.read": EVERYONE,  # which flow answers which number (a client: its own)
    "routes.write": frozenset({_A, _O}),  # numbers are the operator's to hand out
    "testcalls.place": frozenset({_A, _O, _D}),  # real calls cost money: staff only
    "words.read": frozenset({_A, _O, _D, _Q, _C}),
    "words.write": frozenset({_A, _O, _C}),  # a tenant's own words
    "words.write_global": frozenset({_A, _O}),
    "lists.read": frozenset({_A, _O, _Q, _C}),
    "lists.write": frozenset({_A, _O, _C}),  # a tenant's own entries
    "lists.write_global": frozenset({_A, _O}),
    "voiceprints.read": frozenset({_A, _O, _C}),
    "voiceprints.delete": frozenset({_A, _O, _C}),
    "campaigns.read": frozenset({_A, _O, _Q, _C}),
    "campaigns.write": frozenset({_A, _O, _C}),  # a tenant's own campaigns and contacts
    "campaigns.control": frozenset({_A, _O, _C}),  # start/pause/resume/stop: dials for real
    "audit.read": frozenset({_A, _O, _C}),
    "users.manage": frozenset({_A}),
    "tenants.read": OPERATOR_ROLES,
    "tenants.manage": frozenset({_A}),
    "tokens.own": EVERYONE,  # one's own API tokens
    "inspection.read": frozenset({_A, _O, _Q, _C}),  # results, transcripts, stats, export
    "inspection.rules": frozenset({_A, _O, _Q, _C}),  # a tenant's scorecards; re-inspect
    "inspection.review": frozenset({_A, _Q, _C}),  # verdicts: QA staff, a client's own QA
    "inspection.queue": frozenset({_A, _O}),  # the operator's job queue
    # the inspection.* entries of the audit log (QA staff may not read the rest of it)
    "inspection.audit": frozenset({_A, _O, _Q, _C}),
}


def role_permissions(role: Role) -> frozenset[str]:
    return frozenset(p for p, roles in PERMISSIONS.items() if role in roles)


class Forbidden(PermissionError):
    """The principal may not do this; ``code`` is the API error code."""

    def __init__(self, message: str, code: str = "forbidden", field: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.field = field


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is acting: a user through a session, an API token, or the command line."""

    user_id: int | None
    username: str
    role: Role
    tenant: str  # home tenant
    via: str = "session"  # session | token | cli
    scopes: frozenset[str] | None = None  # a token's scopes; None: everything the role allows
    token_id: str | None = None
    must_change_password: bool = False  # a session may only change it until it does

    @classmethod
    def cli(cls, username: str = "cli") -> Principal:
        """The operator at the command line: an admin of every tenant."""
        return cls(None, username, Role.ADMIN, "default", via="cli")

    @property
    def actor(self) -> str:
        """How the audit log names this principal."""
        if self.via == "token":
            return f"{self.username} (token {self.token_id})"
        if self.via == "cli":
            return f"{self.username} (cli)"
        return self.username

    @property
    def is_operator(self) -> bool:
        return self.role in OPERATOR_ROLES

    def can(self, permission: str) -> bool:
        if permission not in PERMISSIONS:
            raise KeyError(f"unknown permission {permission!r}")
        if self.role not in PERMISSIONS[permission]:
            return False
        return self.scopes is None or permission in self.scopes

    def require(self, permission: str) -> None:
        if not self.can(permission):
            why = ("this token's scopes do not include it" if self.role in PERMISSIONS[permission]
                   else f"the {self.role} role does not have it")
            raise Forbidden(f"{permission} is not allowed: {why}")

    def tenant_for(self, requested: str | None) -> str:
        """The one tenant a request acts on: a client's own, or the tenant staff named."""
        if requested is None or requested == self.tenant:
            return self.tenant
        check_tenant_id(requested)
        if not self.is_operator:
            raise Forbidden(f"tenant {requested!r} is not yours", "tenant_forbidden", "tenant")
        return requested

    def tenants_for(self, requested: str | None, *, allow_every: bool = False) -> Tenants:
        """The tenants a read may see; staff may ask for ``*`` (every tenant) where
        ``allow_every`` (searches across tenants)."""
        if requested == "*":
            if not self.is_operator:
                raise Forbidden("only the operator's staff may read every tenant",
                                "tenant_forbidden", "tenant")
            if not allow_every:
                raise Forbidden("name one tenant here", "tenant_required", "tenant")
            return Tenants.every()
        return Tenants.one(self.tenant_for(requested))
