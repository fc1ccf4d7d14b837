"""Campaign reports: the summary (API-ready dict) and one CSV row per contact.

Counts come from the attempt and contact tables; SMS sent are the outbox messages of the
campaign's calls (flow nodes and hang-up rules alike). Blocking: call off the event loop.
"""

from __future__ import annotations

import csv
import io
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from sqlalchemy import func, or_, select

from campaigns.model import AttemptRow
from campaigns.store import Campaign, CampaignStore
from notify.outbox import SmsMessageRow

CSV_FIELDS = ("number", "line", "state", "attempts", "last_disposition", "reason_code",
              "reason", "amd", "confirmed", "opted_out", "heard_full", "hung_up_at_s",
              "duration_s", "flow_status", "next_at", "variables")
TRUE = (True, "true", "yes", "1", 1)


def _flag(result: dict[str, Any], key: str) -> bool:
    return result.get(key) in TRUE


def summary(store: CampaignStore, campaign: Campaign, now: float) -> dict[str, Any]:
    cid = campaign.id
    attempts = 0
    dispositions: Counter[str] = Counter()
    amd: Counter[str] = Counter()
    amd_ms: list[int] = []
    first_at: float | None = None
    last_at: float | None = None
    for a in store.attempts(cid):
        attempts += 1
        dispositions[a.disposition or a.state] += 1
        if a.amd:
            amd[a.amd] += 1
            if a.amd_ms is not None:
                amd_ms.append(a.amd_ms)
        first_at = a.started_at if first_at is None else min(first_at, a.started_at)
        last_at = a.started_at if last_at is None else max(last_at, a.started_at)
    states = store.contact_counts(cid)
    contacts = sum(states.values())
    reached = confirmed = opted_out = heard = 0
    for c in store.contacts(cid):
        result = dict(c.result or {})
        if c.last_disposition in ("answered", "machine") or "duration_s" in result:
            reached += 1
        confirmed += _flag(result, "confirmed")
        opted_out += _flag(result, "opted_out")
        heard += _flag(result, "heard_full")
    answered = dispositions.get("answered", 0)
    finished = states.get("done", 0) + states.get("skipped", 0)
    return {
        "campaign": cid, "tenant": campaign.tenant, "name": campaign.name,
        "state": campaign.state, "flow": f"{campaign.flow_id} v{campaign.flow_version}",
        "contacts": contacts, "contact_states": states,
        "completion": round(finished / contacts, 4) if contacts else 1.0,
        "attempts": attempts, "dispositions": dict(dispositions),
        "answer_rate": round(answered / attempts, 4) if attempts else 0.0,
        "reached_contacts": reached,
        "amd": dict(amd),
        "amd_decision_ms_median": sorted(amd_ms)[len(amd_ms) // 2] if amd_ms else None,
        "confirmed": confirmed, "opted_out": opted_out, "heard_full": heard,
        "skipped_or_deferred": store.reason_counts(cid),
        "sms_sent": sms_count(store, cid),
        "first_attempt_at": first_at, "last_attempt_at": last_at,
        "import": campaign.import_report, "at": now,
    }


def sms_count(store: CampaignStore, campaign_id: str) -> int:
    calls = select(AttemptRow.call_id).where(AttemptRow.campaign_id == campaign_id,
                                            AttemptRow.call_id != "")
    with store.db.session() as s:
        try:
            return int(s.scalar(select(func.count()).select_from(SmsMessageRow).where(
                or_(SmsMessageRow.campaign == campaign_id, SmsMessageRow.call_id.in_(calls)),
                SmsMessageRow.status != "refused")) or 0)
        except Exception:  # no outbox table (SMS never configured): none sent
            return 0


def contact_rows(store: CampaignStore, campaign_id: str) -> Iterator[dict[str, Any]]:
    for c in store.contacts(campaign_id):
        result = dict(c.result or {})
        yield {
            "number": c.number, "line": c.line, "state": c.state, "attempts": c.attempts,
            "last_disposition": c.last_disposition, "reason_code": c.reason_code,
            "reason": c.reason, "amd": result.get("amd", ""),
            "confirmed": _flag(result, "confirmed"), "opted_out": _flag(result, "opted_out"),
            "heard_full": _flag(result, "heard_full"),
            "hung_up_at_s": result.get("hung_up_at_s", ""),
            "duration_s": result.get("duration_s", ""),
            "flow_status": result.get("flow_status", ""),
            "next_at": c.next_at if c.state == "pending" else "",
            "variables": c.variables,
        }


def write_csv(store: CampaignStore, campaign_id: str, dest: Path | io.TextIOBase) -> int:
    """One row per contact; UTF-8 with BOM so Excel on Chinese Windows opens it right."""
    own = isinstance(dest, Path)
    f: Any = dest.open("w", encoding="utf-8-sig", newline="") if isinstance(dest, Path) \
        else dest
    try:
        writer = csv.DictWriter(f, fieldnames=CSV_FIELDS)
        writer.writeheader()
        n = 0
        for row in contact_rows(store, campaign_id):
            row["variables"] = ";".join(f"{k}={v}" for k, v in row["variables"].items())
            writer.writerow(row)
            n += 1
        return n
    finally:
        if own:
            f.close()
