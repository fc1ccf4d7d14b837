"""Which scorecard scores a call: a tenant's scorecards, each scoped to flows and/or campaigns
or the tenant's default, and the most specific one that fits the call.

A scorecard's ``scope`` is ``{"flows": [...], "campaigns": [...]}`` (either list may be left
out; no scope at all makes it the tenant's default). A call fits when its flow is one of
``flows`` (if given) and its campaign one of ``campaigns`` (if given). Among the cards that fit,
the most specific wins, in this order: flow and campaign, campaign, flow, default. A campaign
beats a flow because a campaign runs one flow for one purpose (a collections campaign on the
general service flow wants the collections card). Two active cards may not claim the same
(flow, campaign) pair at the same level (:func:`overlap`): the import names the field instead
of leaving the pick to chance. This is Contact Lens's "evaluation form per queue" and VICIdial's
QC scorecard per campaign, with a tenant-wide default under both.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from inspection.rules import RuleError

ID = re.compile(r"^[A-Za-z0-9_.:-]{1,64}$")  # scorecard, item, flow and campaign ids
MAX_SCOPE_IDS = 200
SCOPE_KEYS = ("flows", "campaigns")

Key = tuple[str | None, str | None]  # (flow, campaign); None: any
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Scope:
    flows: tuple[str, ...] = ()
    campaigns: tuple[str, ...] = ()

    @property
    def is_default(self) -> bool:
        return not self.flows and not self.campaigns

    def pairs(self) -> set[Key]:
        """The (flow, campaign) pairs this scope claims, ``None`` standing for any."""
        flows: Iterable[str | None] = self.flows or (None,)
        campaigns: Iterable[str | None] = self.campaigns or (None,)
        return {(f, c) for f in flows for c in campaigns}

    def as_dict(self) -> dict[str, list[str]]:
        return {k: list(v) for k, v in (("flows", self.flows), ("campaigns", self.campaigns))
                if v}


def parse_scope(value: Any, where: str = "scope") -> Scope:
    """The scope of a scorecard document (``doc.get("scope")``); RuleError names the field."""
    if value is None:
        return Scope()
    if not isinstance(value, Mapping):
        raise RuleError(f"{where}: expected an object with flows and/or campaigns")
    unknown = sorted(set(value) - set(SCOPE_KEYS))
    if unknown:
        raise RuleError(f"{where}.{unknown[0]}: unknown (a scope has flows and campaigns)")
    lists: dict[str, tuple[str, ...]] = {}
    for key in SCOPE_KEYS:
        ids = value.get(key, [])
        if isinstance(ids, str):
            ids = [ids]
        if not isinstance(ids, list) or len(ids) > MAX_SCOPE_IDS:
            raise RuleError(f"{where}.{key}: expected a list of up to {MAX_SCOPE_IDS} ids")
        for i, x in enumerate(ids):
            if not isinstance(x, str) or not ID.match(x):
                raise RuleError(f"{where}.{key}[{i}]: expected an id (1-64 letters, digits, "
                                f"_ . : -), got {x!r}")
        lists[key] = tuple(dict.fromkeys(ids))
    return Scope(lists["flows"], lists["campaigns"])


def call_keys(flow_id: str | None, campaign_id: str | None) -> list[Key]:
    """What a call matches, most specific first."""
    keys: list[Key] = []
    if flow_id and campaign_id:
        keys.append((flow_id, campaign_id))
    if campaign_id:
        keys.append((None, campaign_id))
    if flow_id:
        keys.append((flow_id, None))
    keys.append((None, None))
    return keys


def pick(cards: Sequence[T], scope_of: Callable[[T], Scope], flow_id: str | None,
         campaign_id: str | None) -> T | None:
    """The most specific of ``cards`` (in their order: the first wins a tie) for a call."""
    claimed: dict[Key, T] = {}
    for card in cards:
        for key in scope_of(card).pairs():
            claimed.setdefault(key, card)
    for key in call_keys(flow_id, campaign_id):
        if key in claimed:
            return claimed[key]
    return None


def overlap(new: Scope, other: Scope) -> tuple[str, Key] | None:
    """Where ``new`` claims what ``other`` already does: the field of ``new`` to name
    (``scope``, ``scope.flows[1]``, ``scope.campaigns[0]``) and the pair; None when apart."""
    shared = new.pairs() & other.pairs()
    if not shared:
        return None
    flow, campaign = min(shared, key=lambda k: (k[0] or "", k[1] or ""))
    if flow is not None:
        return f"scope.flows[{new.flows.index(flow)}]", (flow, campaign)
    if campaign is not None:
        return f"scope.campaigns[{new.campaigns.index(campaign)}]", (flow, campaign)
    return "scope", (flow, campaign)


def describe(key: Key) -> str:
    flow, campaign = key
    if flow and campaign:
        return f"flow {flow!r} in campaign {campaign!r}"
    if campaign:
        return f"campaign {campaign!r}"
    if flow:
        return f"flow {flow!r}"
    return "the tenant's default"
