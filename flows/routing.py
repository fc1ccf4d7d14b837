"""Which flow version a new call runs, and for which tenant: the engine's entry point into flows.

A dialled number belongs to one tenant. Order: a route for exactly that number stored in the
database by any tenant (the console manages them; that tenant's flow runs and the call is
theirs), then ``[flows].routes`` from the config file, then the ``*`` fallback of the default
tenant, then the default sample flow file. The result is a compiled, immutable version; the call
keeps it for its whole life.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from flows.document import load_flow_file
from flows.store import FALLBACK_ROUTE, FlowStore, UnknownFlow
from flows.validator import CompiledFlow, FlowInvalid, compile_flow

log = logging.getLogger("ivr.flows")


@dataclass(frozen=True, slots=True)
class RoutedFlow:
    tenant: str
    flow: CompiledFlow


class FlowRouter:
    def __init__(
        self,
        store: FlowStore | None = None,
        *,
        config_routes: Mapping[str, str] | None = None,
        default_flow: str | Path | None = None,
        tenant: str = "default",
    ) -> None:
        self.store = store
        self.config_routes = dict(config_routes or {})
        self.default_flow = Path(default_flow) if default_flow else None
        self.tenant = tenant  # the tenant of config routes, the fallback and the default flow
        self._default: CompiledFlow | None = None

    def resolve(self, number: str) -> RoutedFlow | None:
        """Blocking (reads the store, compiles JSON): call it off the event loop."""
        if self.store is not None:
            owners = self.store.route_owners(number)
            if len(owners) > 1:
                log.error("number %s is routed by several tenants (%s); using %s", number,
                          ", ".join(owners), owners[0])
            for tenant in owners[:1]:
                published = self.store.resolve(number, tenant=tenant)
                if published is not None:
                    return RoutedFlow(tenant, published.compile())
            configured = self._configured(number)
            if configured is not None:
                return RoutedFlow(self.tenant, configured)
        default = self._default_flow()
        return RoutedFlow(self.tenant, default) if default is not None else None

    def _configured(self, number: str) -> CompiledFlow | None:
        assert self.store is not None
        flow_id = self.config_routes.get(number)
        if flow_id is None:
            fallback = self.store.resolve(FALLBACK_ROUTE, tenant=self.tenant)
            if fallback is not None:
                return fallback.compile()
            flow_id = self.config_routes.get(FALLBACK_ROUTE)
        if flow_id is not None:
            try:
                return self.store.get(flow_id, tenant=self.tenant).compile()
            except UnknownFlow:
                log.warning("configured route %s -> %s: flow not published", number, flow_id)
        return None

    def _default_flow(self) -> CompiledFlow | None:
        if self.default_flow is None or not self.default_flow.exists():
            return None
        if self._default is None:
            try:
                self._default = compile_flow(load_flow_file(self.default_flow))
            except FlowInvalid as e:
                log.error("default flow %s is not usable: %s", self.default_flow, e)
                return None
        return self._default


class StoreFlowResolver:
    """Subflows on live calls: the latest published version of the flow in the call's tenant,
    like the calls themselves. (Blocking: a database read; the interpreter runs it off-loop.)"""

    def __init__(self, store: FlowStore) -> None:
        self.store = store

    def get(self, flow_id: str, tenant: str = "default") -> Mapping[str, Any] | None:
        try:
            return self.store.get(flow_id, tenant=tenant).document
        except UnknownFlow:
            return None

