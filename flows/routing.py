"""Which flow version a new call runs: the engine's entry point into flows.

Order: a route stored in the database (the console manages them), then ``[flows].routes`` from the
config file, then the ``*`` fallback of either, then the default sample flow file. The result is a
compiled, immutable version; the caller keeps it for the whole call.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path

from flows.store import FALLBACK_ROUTE, FlowStore, UnknownFlow
from flows.validator import CompiledFlow, compile_flow


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
        self.tenant = tenant
        self._default: CompiledFlow | None = None

    def resolve(self, number: str) -> CompiledFlow | None:
        if self.store is not None:
            published = self.store.resolve(number, tenant=self.tenant)
            if published is not None:
                return published.compile()
            flow_id = self.config_routes.get(number) or self.config_routes.get(FALLBACK_ROUTE)
            if flow_id is not None:
                try:
                    return self.store.get(flow_id, tenant=self.tenant).compile()
                except UnknownFlow:
                    pass
        return self._default_flow()

    def _default_flow(self) -> CompiledFlow | None:
        if self.default_flow is None or not self.default_flow.exists():
            return None
        if self._default is None:
            self._default = compile_flow(json.loads(self.default_flow.read_text()))
        return self._default
