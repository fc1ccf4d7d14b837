"""The campaign API: what the CLI and the console call (UI-agnostic, blocking: run it in a
worker thread from async code).

``create`` validates the spec, pins the flow version, imports the contacts and stores the
campaign as a draft. ``start`` screens everything the campaign will say or show against the
tenant's sensitive words (the flow's prompts and SMS texts, the campaign's extra TTS texts, its
SMS templates, the caller ID's display name, the branded name and call reason) and refuses with
every problem named; then the runner (in ``ivr run``) picks it up. ``pause``/``resume``/``stop``
change the state the runner obeys within a second.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from sqlalchemy import select

from campaigns.callerid import check_pool
from campaigns.contacts import ContactImport, read_contacts
from campaigns.model import ContactRow
from campaigns.reports import summary
from campaigns.spec import CampaignSpec, SpecError, parse_spec
from campaigns.store import Campaign, CampaignStore
from core.clock import Clock
from flows.document import load_flow_file
from flows.store import FlowStore, PublishBlocked, content_problems
from flows.validator import FlowInvalid
from tabular.table import TableInput


class WordScanner(Protocol):
    def scan(self, text: str) -> Any: ...  # .blocked, .hits


WordsFor = Callable[[str], WordScanner]  # tenant -> its sensitive-word filter
SmsTemplateText = Callable[[str, str], str | None]  # (tenant, template id) -> text


class CampaignBlocked(ValueError):
    """The campaign may not start: each problem names where the blocked text is."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


@dataclass(frozen=True, slots=True)
class Created:
    campaign: Campaign
    contacts: ContactImport


class CampaignService:
    def __init__(self, store: CampaignStore, flows: FlowStore, clock: Clock, *,
                 words: WordsFor, sms_template: SmsTemplateText | None = None,
                 region: str = "CN", on_change: Callable[[str], None] | None = None) -> None:
        self.store = store
        self.flows = flows
        self.clock = clock
        self.words = words
        self.sms_template = sms_template
        self.region = region
        self.on_change = on_change  # the runner's poke when it runs in this process

    # -- create ---------------------------------------------------------------------------------

    def create(self, spec_data: Any, contacts: TableInput | None, *,
               contacts_name: str | None = None, base_dir: Path | None = None,
               encoding: str | None = None, sheet: str | None = None) -> Created:
        """Raises :class:`SpecError` (naming fields), :class:`tabular.TableError` (the file
        cannot be read) or ``ValueError`` (no contact imported, duplicate id). Without
        ``contacts`` the draft starts empty (the console uploads them next)."""
        spec = self.checked_spec(spec_data)
        flow_id, version = self._pin_flow(spec, base_dir)
        if contacts is None:
            imported = ContactImport()
        else:
            imported = read_contacts(contacts, spec.contacts, region=self.region,
                                     name=contacts_name, encoding=encoding, sheet=sheet)
        if contacts is not None and not imported.contacts:
            first = "; ".join(str(e) for e in imported.errors[:5])
            raise ValueError(f"contacts: no contact imported ({imported.error_count} bad rows"
                             f"{': ' + first if first else ''})")
        campaign = self.store.create(spec, imported.contacts, flow_id=flow_id,
                                     flow_version=version, now=self.clock.wall(),
                                     import_report=imported.summary())
        return Created(campaign, imported)

    def checked_spec(self, spec_data: Any) -> CampaignSpec:
        spec = parse_spec(spec_data)
        _, problems = check_pool(spec.caller_id, spec.contacts.region or self.region)
        if problems:
            raise SpecError("; ".join(problems))
        return spec

    def edit(self, campaign_id: str, spec_data: Any, *, base_dir: Path | None = None
             ) -> Campaign:
        """Replace a draft's or a paused campaign's spec (the flow is pinned again); its
        contacts stay. Raises :class:`SpecError` or :class:`campaigns.store.BadTransition`."""
        spec = self.checked_spec(spec_data)
        current = self.store.get(campaign_id)
        if spec.tenant != current.tenant:
            raise SpecError(f"tenant: a campaign stays in its tenant ({current.tenant})")
        if spec.id is not None and spec.id != campaign_id:
            raise SpecError(f"id: the campaign is {campaign_id}; ids do not change")
        flow_id, version = self._pin_flow(spec, base_dir)
        c = self.store.update_spec(campaign_id, spec, flow_id=flow_id, flow_version=version,
                                   now=self.clock.wall())
        if self.on_change is not None:
            self.on_change(campaign_id)
        return c

    def _pin_flow(self, spec: CampaignSpec, base_dir: Path | None) -> tuple[str, int]:
        ref = spec.flow
        if ref.file is not None:
            path = Path(ref.file)
            if not path.is_absolute() and base_dir is not None and (base_dir / path).exists():
                path = base_dir / path
            try:
                doc = load_flow_file(path)
                published = self.flows.publish(doc, tenant=spec.tenant,
                                               words=self.words(spec.tenant), by="campaign")
            except FileNotFoundError as e:
                raise SpecError(f"flow.file: {ref.file} not found") from e
            except PublishBlocked as e:
                raise SpecError(f"flow.file: {e}") from e
            except (FlowInvalid, ValueError) as e:
                raise SpecError(f"flow.file: {ref.file} is not a valid flow: {e}") from e
            return published.flow_id, published.version
        assert ref.id is not None
        try:
            published = self.flows.get(ref.id, ref.version, tenant=spec.tenant)
        except LookupError as e:
            raise SpecError(f"flow.id: {e}") from e
        return published.flow_id, published.version

    def add_contacts(self, campaign_id: str, contacts: TableInput, *, name: str | None = None,
                     encoding: str | None = None, sheet: str | None = None) -> ContactImport:
        """More contacts for a campaign that is not over; numbers it has already are merged
        (counted in ``merged``)."""
        c = self.store.get(campaign_id)
        if c.state in ("stopped", "finished"):
            raise ValueError(f"campaign {campaign_id} is {c.state}: no contacts can be added")
        imported = read_contacts(contacts, c.spec.contacts, region=self.region, name=name,
                                 encoding=encoding, sheet=sheet)
        with self.store.db.session() as s:
            have = set(s.scalars(select(ContactRow.number).where(
                ContactRow.campaign_id == campaign_id)))
        fresh = [x for x in imported.contacts if x.number not in have]
        imported.merged += len(imported.contacts) - len(fresh)
        imported.contacts = fresh
        self.store.add_contacts(campaign_id, fresh, now=self.clock.wall())
        return imported

    # -- state ----------------------------------------------------------------------------------

    def check_content(self, campaign: Campaign) -> list[str]:
        """Every blocked text the campaign would say or show, named by where it is."""
        spec = campaign.spec
        words = self.words(spec.tenant)
        problems: list[str] = []

        def scan(where: str, text: str | None) -> None:
            if not text:
                return
            result = words.scan(text)
            if result.blocked:
                terms = ", ".join(sorted({str(getattr(h, "term", h)) for h in result.hits}))
                problems.append(f"{where}: blocked term(s) {terms}")

        try:
            compiled = self.flows.get(campaign.flow_id, campaign.flow_version,
                                      tenant=spec.tenant).compile()
            problems += [f"flow {campaign.flow_id} node {p.node_id}: {p.message}"
                         for p in content_problems(compiled, words)]
        except (LookupError, FlowInvalid) as e:
            problems.append(f"flow: {e}")
        for i, text in enumerate(spec.texts):
            scan(f"texts[{i}]", text)
        for i, tid in enumerate(spec.sms_templates):
            template = self.sms_template(spec.tenant, tid) if self.sms_template else None
            if template is None:
                problems.append(f"sms_templates[{i}]: template {tid!r} does not exist")
            scan(f"sms_templates[{i}] ({tid})", template)
        scan("caller_id.display_name", spec.caller_id.display_name)
        scan("branding.name", spec.branding.name)
        scan("branding.call_reason", spec.branding.call_reason)
        for k, v in spec.variables.items():
            scan(f"variables.{k}", v if isinstance(v, str) else None)
        return problems

    def start(self, campaign_id: str) -> Campaign:
        c = self.store.get(campaign_id)
        if c.state == "draft":
            problems = self.check_content(c)
            if problems:
                raise CampaignBlocked(problems)
        return self._set(campaign_id, "running")

    def pause(self, campaign_id: str) -> Campaign:
        return self._set(campaign_id, "paused")

    def resume(self, campaign_id: str) -> Campaign:
        c = self.store.get(campaign_id)
        if c.state == "draft":
            return self.start(campaign_id)
        return self._set(campaign_id, "running")

    def stop(self, campaign_id: str) -> Campaign:
        return self._set(campaign_id, "stopped")

    def _set(self, campaign_id: str, state: str) -> Campaign:
        c = self.store.set_state(campaign_id, state, self.clock.wall())
        if self.on_change is not None:
            self.on_change(campaign_id)
        return c

    # -- reading --------------------------------------------------------------------------------

    def get(self, campaign_id: str) -> Campaign:
        return self.store.get(campaign_id)

    def list(self, tenant: str | None = None) -> list[Campaign]:
        return self.store.list(tenant)

    def status(self, campaign_id: str) -> dict[str, Any]:
        """State, contact counts, progress and ETA (the console's progress bar)."""
        c = self.store.get(campaign_id)
        counts = self.store.contact_counts(campaign_id)
        total = sum(counts.values())
        open_ = counts.get("pending", 0) + counts.get("dialing", 0)
        now = self.clock.wall()
        recent = self.store.attempt_count(campaign_id, since=now - 60.0)
        rate = recent / 60.0 if recent else c.spec.pacing.calls_per_s
        next_due = self.store.next_due_at(campaign_id)
        eta = None
        if c.state in ("running", "paused", "draft") and open_:
            eta = round(open_ / rate, 1) if rate > 0 else None
            if next_due is not None and next_due > now:  # deferred (window, retries)
                eta = round(max(eta or 0.0, next_due - now), 1)
        return {
            "id": c.id, "name": c.name, "tenant": c.tenant, "state": c.state,
            "flow": f"{c.flow_id} v{c.flow_version}", "contacts": total, "by_state": counts,
            "progress": round(1 - open_ / total, 4) if total else 1.0,
            "attempts_last_minute": recent, "eta_s": eta,
            "next_due_at": next_due, "started_at": c.started_at, "finished_at": c.finished_at,
            "skipped_or_deferred": self.store.reason_counts(campaign_id),
        }

    def report(self, campaign_id: str) -> dict[str, Any]:
        return summary(self.store, self.store.get(campaign_id), self.clock.wall())


def load_spec_file(path: Path) -> Any:
    """A spec file's JSON, or :class:`SpecError` saying what is wrong with the file."""
    try:
        return json.loads(path.read_text(encoding="utf-8-sig"))
    except FileNotFoundError as e:
        raise SpecError(f"{path}: not found") from e
    except json.JSONDecodeError as e:
        raise SpecError(f"{path}: not JSON: line {e.lineno} column {e.colno}: {e.msg}") from e
