"""Users, tenants and API tokens with every change in the audit log (``ivr users`` and the
console's admin pages both come here)."""

from __future__ import annotations

from console.audit import GLOBAL_TENANT, AuditLog
from console.identity import Identity, Tenant, TokenInfo, User
from console.roles import Role
from console.services.base import Actor, Audited
from storage.tenancy import Tenants


class UserOps(Audited):
    def __init__(self, identity: Identity, audit: AuditLog) -> None:
        super().__init__(audit)
        self.identity = identity

    def create_tenant(self, actor: Actor, tenant_id: str, name: str) -> Tenant:
        t = self.identity.create_tenant(tenant_id, name)
        self._audit(actor, tenant=GLOBAL_TENANT, action="tenant.create",
                    resource=f"tenant:{tenant_id}", after={"id": t.id, "name": t.name})
        return t

    def create_user(self, actor: Actor, username: str, password: str, role: Role | str, *,
                    tenant: str, display_name: str = "",
                    must_change_password: bool = False) -> User:
        user = self.identity.create_user(username, password, role, tenant=tenant,
                                         display_name=display_name,
                                         must_change_password=must_change_password)
        self._audit(actor, tenant=GLOBAL_TENANT, action="user.create",
                    resource=f"user:{username}", after=user.public())
        return user

    def update_user(self, actor: Actor, user_id: int, *, tenants: Tenants,
                    role: Role | str | None = None, tenant: str | None = None,
                    display_name: str | None = None, disabled: bool | None = None) -> User:
        before, after = self.identity.update_user(user_id, tenants=tenants, role=role,
                                                  tenant=tenant, display_name=display_name,
                                                  disabled=disabled)
        self._audit(actor, tenant=GLOBAL_TENANT, action="user.update",
                    resource=f"user:{after.username}", before=before.public(),
                    after=after.public())
        return after

    def set_password(self, actor: Actor, user_id: int, password: str, *, tenants: Tenants,
                     must_change: bool = False) -> User:
        user = self.identity.set_password(user_id, password, tenants=tenants,
                                          must_change=must_change)
        self._audit(actor, tenant=GLOBAL_TENANT, action="user.password",
                    resource=f"user:{user.username}", detail={"must_change": must_change})
        return user

    def create_token(self, actor: Actor, user_id: int, name: str, scopes: list[str] | None, *,
                     tenants: Tenants, expires_in_s: float | None = None
                     ) -> tuple[str, TokenInfo]:
        token, info = self.identity.create_token(user_id, name, scopes, tenants=tenants,
                                                 expires_in_s=expires_in_s)
        self._audit(actor, tenant=GLOBAL_TENANT, action="token.create",
                    resource=f"token:{info.id}",
                    after={"id": info.id, "user": info.username, "name": info.name,
                           "scopes": info.scopes, "expires_at": info.expires_at})
        return token, info

    def revoke_token(self, actor: Actor, token_id: str, *, tenants: Tenants,
                     user_id: int | None = None) -> TokenInfo:
        info = self.identity.revoke_token(token_id, tenants=tenants, user_id=user_id)
        self._audit(actor, tenant=GLOBAL_TENANT, action="token.revoke",
                    resource=f"token:{info.id}", detail={"user": info.username})
        return info
