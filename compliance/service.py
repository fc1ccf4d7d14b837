"""One question for the dialer and the ``check_list`` flow node: may we call this number now?

:meth:`ComplianceService.check` answers allow/deny with *every* reason (an operator fixing a
campaign wants all of them at once, not the first), using the lists, the caps and the calling
window. The dialer calls it at dial time with ``count=True`` so the attempt is counted atomically
against the caps; a deferral carries ``retry_at`` so the contact is rescheduled, not dropped.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, tzinfo
from zoneinfo import ZoneInfo

from compliance.caps import CapCounter, CapRule, InMemoryCapCounter, cap_key
from compliance.lists import (
    InMemoryListStore,
    ListEntry,
    ListKind,
    ListReason,
    ListStore,
    Scope,
)
from compliance.numbers import InvalidNumber, normalize, timezone_for
from compliance.windows import CallingWindow

DEFAULT_TZ = ZoneInfo("Asia/Shanghai")


@dataclass(frozen=True, slots=True)
class Reason:
    code: str  # invalid_number, blacklisted, not_whitelisted, outside_window, frequency_cap
    message: str
    entry: ListEntry | None = None


@dataclass(slots=True)
class Decision:
    allowed: bool
    reasons: list[Reason] = field(default_factory=list)
    number: str | None = None  # E.164 when it parsed
    retry_at: datetime | None = None  # set when the only obstacles are time-bound (defer)
    vip: bool = False
    reserved: tuple[str, ...] = ()  # cap counters this allowed attempt took (release() gives back)

    @property
    def deferred(self) -> bool:
        return not self.allowed and self.retry_at is not None


@dataclass(frozen=True, slots=True)
class CampaignRules:
    test_mode: bool = False  # may dial whitelisted numbers only
    window: CallingWindow | None = None


INBOUND_PURPOSE = "inbound"
DEFERRABLE = frozenset({"outside_window"})


class ComplianceService:
    def __init__(
        self,
        lists: ListStore | None = None,
        caps: CapCounter | None = None,
        *,
        cap_rules: list[CapRule] | None = None,
        region: str = "CN",
        default_tz: tzinfo = DEFAULT_TZ,
        default_window: CallingWindow | None = None,
    ) -> None:
        self.lists: ListStore = lists if lists is not None else InMemoryListStore()
        self.caps: CapCounter = caps if caps is not None else InMemoryCapCounter()
        self.cap_rules = list(cap_rules or [])
        self.region = region
        self.default_tz = default_tz
        self.default_window = default_window
        self._campaigns: dict[tuple[str, str], CampaignRules] = {}

    def set_campaign(self, tenant: str, campaign: str, rules: CampaignRules) -> None:
        self._campaigns[(tenant, campaign)] = rules

    def campaign_rules(self, tenant: str, campaign: str | None) -> CampaignRules:
        if campaign is None:
            return CampaignRules(window=self.default_window)
        return self._campaigns.get((tenant, campaign), CampaignRules(window=self.default_window))

    async def check(
        self,
        number: str,
        purpose: str,
        tenant: str,
        campaign: str | None = None,
        at: datetime | None = None,
        *,
        count: bool = False,
    ) -> Decision:
        """Allow or deny ``number`` for ``purpose`` now (``at``, aware; default: now in UTC).

        ``purpose="inbound"`` screens a caller: only the lists apply (an unparseable caller ID
        is allowed, anonymous callers are normal); windows, caps and test mode are rules for
        dialling out.

        With ``count=True`` an allowed attempt is added to the cap counters atomically.
        """
        at = at or datetime.now(UTC)
        if at.tzinfo is None:
            raise ValueError("at: needs a timezone (naive datetimes are ambiguous)")
        inbound = purpose == INBOUND_PURPOSE
        try:
            e164 = normalize(number, self.region)
        except InvalidNumber as e:
            if inbound:  # anonymous or SIP-user callers still reach the IVR
                return Decision(True)
            return Decision(False, [Reason("invalid_number", f"{number}: {e.reason}")])
        decision = Decision(True, number=e164)
        scopes = Scope(tenant, campaign).chain()
        found = await self.lists.match_kinds((ListKind.BLACK, ListKind.WHITE), e164, scopes, at)
        for entry in found[ListKind.BLACK]:
            decision.reasons.append(Reason("blacklisted", entry.describe(), entry))
        white = found[ListKind.WHITE]
        decision.vip = any(e.reason is ListReason.VIP for e in white)
        if inbound:  # windows, caps and test mode govern dialling out, not being called
            decision.allowed = not decision.reasons
            return decision
        rules = self.campaign_rules(tenant, campaign)
        if rules.test_mode and not white:
            decision.reasons.append(Reason(
                "not_whitelisted", f"campaign {campaign} is in test mode: whitelist only"))
        local = at.astimezone(timezone_for(e164, self.default_tz))
        if rules.window is not None and not rules.window.is_open(local):
            nxt = rules.window.next_open(local)
            decision.retry_at = nxt
            when = nxt.isoformat() if nxt else "never"
            decision.reasons.append(Reason(
                "outside_window", f"{local:%a %Y-%m-%d %H:%M} {local.tzinfo} is outside the "
                f"calling window; next opening {when}"))
        applicable = [r for r in self.cap_rules if r.applies(purpose)]
        keys_ttls = [cap_key(r, tenant, purpose, e164, local) for r in applicable]
        keys = [k for k, _ in keys_ttls]
        if keys:
            if count and not decision.reasons:
                full = await self.caps.reserve(keys, [r.limit for r in applicable],
                                               [t for _, t in keys_ttls], at.timestamp())
                if not full:
                    decision.reserved = tuple(keys)
            else:
                counts = await self.caps.counts(keys)
                full = [i for i, (c, r) in enumerate(zip(counts, applicable, strict=True))
                        if c >= r.limit]
            for i in full:
                decision.reasons.append(Reason(
                    "frequency_cap", f"cap reached: {applicable[i].describe()}"))
        decision.allowed = not decision.reasons
        if decision.allowed or any(r.code not in DEFERRABLE for r in decision.reasons):
            decision.retry_at = None
        return decision

    async def release(self, decision: Decision) -> None:
        """Give back what ``check(count=True)`` reserved for an attempt that was then not
        placed, so a contact deferred for want of a caller ID, or claimed by another node, does
        not use up its own frequency cap."""
        if decision.reserved:
            keys, decision.reserved = decision.reserved, ()
            await self.caps.release(keys)

    async def opt_out(self, number: str, tenant: str, campaign: str | None = None, *,
                      source: str = "call", global_scope: bool = False) -> ListEntry:
        """The callee asked to stop ("press 9"): blacklist now, for the tenant (or everyone)."""
        e164 = normalize(number, self.region)
        scope = Scope() if global_scope else Scope(tenant)
        entry = ListEntry(ListKind.BLACK, e164, False, scope, ListReason.OPT_OUT, source)
        await self.lists.add([entry])
        return entry

    async def is_vip(self, number: str, tenant: str, at: datetime | None = None) -> bool:
        """Inbound routing: whitelisted with reason ``vip`` for this tenant (or globally)."""
        try:
            e164 = normalize(number, self.region)
        except InvalidNumber:
            return False
        white = await self.lists.match(ListKind.WHITE, e164, Scope(tenant).chain(),
                                       at or datetime.now(UTC))
        return any(e.reason is ListReason.VIP for e in white)
