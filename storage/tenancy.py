"""Tenants: the id rule and the filter every repository query takes.

Every stored record belongs to a tenant, and no repository method reads or changes records
without being told which tenants it may touch: a :class:`Tenants` value, built from the caller's
identity (a client user: its own tenant; the operator's staff: the tenant they chose, or every
tenant where that is meaningful, such as searching all calls). Passing it explicitly, rather than
defaulting, is what makes a forgotten filter a type error instead of a data leak.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, true

DEFAULT_TENANT = "default"
TENANT_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


class TenantError(ValueError):
    """A tenant id that breaks the rule (the message says which rule)."""


def check_tenant_id(value: str) -> str:
    """``value`` if it is a valid tenant id: 1-64 of letters, digits, ``_ . -``, starting with
    a letter or digit (never ``:``, ``*`` or ``%``: ids appear in list scopes and LIKE
    patterns)."""
    if not isinstance(value, str) or not TENANT_ID_RE.match(value):
        raise TenantError(f"tenant: {value!r} is not a tenant id (1-64 letters, digits, '_', "
                          "'.', '-', starting with a letter or digit)")
    return value


@dataclass(frozen=True, slots=True)
class Tenants:
    """The tenants a query may see: one, several, or (``ids is None``) every tenant."""

    ids: frozenset[str] | None

    @classmethod
    def one(cls, tenant: str) -> Tenants:
        return cls(frozenset({check_tenant_id(tenant)}))

    @classmethod
    def of(cls, tenants: Iterable[str]) -> Tenants:
        return cls(frozenset(check_tenant_id(t) for t in tenants))

    @classmethod
    def every(cls) -> Tenants:
        return cls(None)

    @property
    def is_every(self) -> bool:
        return self.ids is None

    @property
    def single(self) -> str | None:
        """The tenant when exactly one is allowed (writes need one)."""
        if self.ids is not None and len(self.ids) == 1:
            return next(iter(self.ids))
        return None

    def allows(self, tenant: str | None) -> bool:
        return self.ids is None or tenant in self.ids

    def where(self, column: Any) -> ColumnElement[bool]:
        """The SQL predicate on ``column`` (always present: ``TRUE`` for every tenant)."""
        if self.ids is None:
            return true()
        if len(self.ids) == 1:
            return column == next(iter(self.ids))
        return column.in_(sorted(self.ids))

    def __str__(self) -> str:
        return "*" if self.ids is None else ",".join(sorted(self.ids))


EVERY_TENANT = Tenants.every()
