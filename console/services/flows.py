"""Flows as the console and ``ivr flow`` manage them: drafts, validation, publishing with the
operator's and the tenant's words enforced, versions, diff, rollback, routes and test cases.

Publishing is where content security bites: the literal text of every prompt and SMS template
is scanned with the tenant's filter (the operator's global words plus the tenant's own), so a
client tenant can draw its own flows but cannot publish one that says what the operator forbids.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pydantic import ValidationError

from console.audit import AuditLog
from console.services.base import Actor, Audited, Conflict, Invalid, Missing
from flows.casefile import InvalidCase, SuiteError, parse_suite
from flows.diff import FlowDiff, diff_flows
from flows.drafts import (
    Draft,
    DraftInvalid,
    DraftStore,
    FlowTestStore,
    RevisionConflict,
    UnknownDraft,
)
from flows.model import Flow
from flows.services import WordChecker
from flows.store import BadRoute, FlowStore, PublishBlocked, PublishedFlow, UnknownFlow
from flows.testcases import CaseResult, TestSuite, run_suite
from flows.validator import FlowInvalid, Problem, compile_flow, validate

MAX_SUBFLOWS = 200


@dataclass(frozen=True, slots=True)
class FlowSummary:
    flow_id: str
    name: str
    draft_revision: int | None
    draft_updated_at: datetime | None
    latest_version: int | None
    versions: int
    routes: list[str]


def _canonical(document: dict[str, Any]) -> dict[str, Any]:
    """A document as published versions store it (defaults filled in), so a draft and a
    version differ only where someone changed something; an invalid draft stays as drawn."""
    try:
        return dict(json.loads(Flow.model_validate(document).canonical_json()))
    except ValidationError:
        return document


def _save(store: DraftStore | FlowTestStore, actor: Actor, tenant: str, flow_id: str,
          document: Any, *, base_revision: int | None) -> tuple[Draft | None, Draft]:
    """Compare-and-set save with the store's refusals as the API's (409, 422)."""
    try:
        return store.save(flow_id, document, tenant=tenant, base_revision=base_revision,
                          by=actor.principal.actor)
    except RevisionConflict as e:
        raise Conflict(str(e), "revision", current=e.current) from e
    except DraftInvalid as e:
        raise Invalid(str(e), e.field) from e


def problems_of(document: Any) -> list[Problem]:
    if not isinstance(document, dict):
        return [Problem(None, None, "not_an_object", "a flow is a JSON object")]
    return validate(document)


class FlowOps(Audited):
    def __init__(self, store: FlowStore, drafts: DraftStore, tests: FlowTestStore,
                 audit: AuditLog, words_for: Callable[[str], WordChecker]) -> None:
        super().__init__(audit)
        self.store = store
        self.drafts = drafts
        self.tests = tests
        self.words_for = words_for

    # --- reading -------------------------------------------------------------------------------

    def overview(self, tenant: str) -> list[FlowSummary]:
        drafts = {d.flow_id: d for d in self.drafts.list(tenant=tenant)}
        published = {r["flow_id"]: r for r in self.store.list_flows(tenant=tenant)}
        routes = self.store.routes(tenant=tenant)
        out = []
        for fid in sorted(drafts.keys() | published.keys()):
            d, p = drafts.get(fid), published.get(fid)
            name = p["name"] if p else str((d.document if d else {}).get("name") or "")
            out.append(FlowSummary(
                fid, name, d.revision if d else None, d.updated_at if d else None,
                p["latest_version"] if p else None, p["versions"] if p else 0,
                sorted(n for n, f in routes.items() if f == fid)))
        return out

    def summary(self, tenant: str, flow_id: str) -> FlowSummary:
        found = [f for f in self.overview(tenant) if f.flow_id == flow_id]
        if not found:
            raise Missing(f"no flow {flow_id!r}")
        return found[0]

    def draft(self, tenant: str, flow_id: str) -> Draft:
        try:
            return self.drafts.get(flow_id, tenant=tenant)
        except UnknownDraft as e:
            raise Missing(str(e)) from e

    def version(self, tenant: str, flow_id: str, version: int | None = None) -> PublishedFlow:
        try:
            return self.store.get(flow_id, version, tenant=tenant)
        except UnknownFlow as e:
            raise Missing(str(e)) from e

    def versions(self, tenant: str, flow_id: str) -> list[dict[str, Any]]:
        rows = self.store.versions(flow_id, tenant=tenant)
        if not rows:
            self.draft(tenant, flow_id)  # a flow only drafted has no versions yet
        return rows

    def document(self, tenant: str, flow_id: str, which: str) -> dict[str, Any]:
        """``draft``, ``latest`` or a version number."""
        if which == "draft":
            return self.draft(tenant, flow_id).document
        if which == "latest":
            return self.version(tenant, flow_id).document
        try:
            number = int(which)
        except ValueError as e:
            raise Invalid(f"{which!r}: 'draft', 'latest' or a version number", "which") from e
        return self.version(tenant, flow_id, number).document

    def diff(self, tenant: str, flow_id: str, old: str, new: str) -> FlowDiff:
        return diff_flows(_canonical(self.document(tenant, flow_id, old)),
                          _canonical(self.document(tenant, flow_id, new)))

    # --- drafts --------------------------------------------------------------------------------

    def save_draft(self, actor: Actor, tenant: str, flow_id: str, document: Any,
                   base_revision: int | None) -> tuple[Draft, list[Problem]]:
        """Store a draft (invalid ones too); ``base_revision=None`` creates one. Returns the
        stored draft and the validator's problems."""
        before, after = _save(self.drafts, actor, tenant, flow_id, document,
                              base_revision=base_revision)
        self._audit(actor, tenant=tenant, action="flow.draft.save" if before else "flow.create",
                    resource=f"flow:{flow_id}", before=before.document if before else None,
                    after=after.document, detail={"revision": after.revision})
        return after, problems_of(after.document)

    def delete_draft(self, actor: Actor, tenant: str, flow_id: str,
                     base_revision: int | None) -> None:
        try:
            before = self.drafts.delete(flow_id, tenant=tenant, base_revision=base_revision)
        except UnknownDraft as e:
            raise Missing(str(e)) from e
        except RevisionConflict as e:
            raise Conflict(str(e), "revision", current=e.current) from e
        self._audit(actor, tenant=tenant, action="flow.draft.delete", resource=f"flow:{flow_id}",
                    before=before.document, detail={"revision": before.revision})

    # --- publishing ----------------------------------------------------------------------------

    def publish(self, actor: Actor, tenant: str, flow_id: str,
                base_revision: int | None = None) -> PublishedFlow:
        """Publish the draft (as of ``base_revision`` when given: 409 if it moved on)."""
        draft = self.draft(tenant, flow_id)
        if base_revision is not None and draft.revision != base_revision:
            raise Conflict(f"the draft is at revision {draft.revision}, not {base_revision}",
                           "revision", current=draft.revision)
        return self.publish_document(actor, tenant, draft.document,
                                     detail={"draft_revision": draft.revision})

    def publish_document(self, actor: Actor, tenant: str, document: Any, *,
                         words: WordChecker | None = None,
                         detail: dict[str, Any] | None = None) -> PublishedFlow:
        """Validate, word-check and store an immutable version (identical content: the same
        version). ``words`` overrides the tenant's filter (``ivr flow publish --words``)."""
        if not isinstance(document, dict):
            raise Invalid("document: a flow is a JSON object", "document")
        flow_id = str(document.get("id", ""))
        previous = None
        try:
            previous = self.store.get(flow_id, tenant=tenant) if flow_id else None
        except UnknownFlow:
            pass
        try:
            pub = self.store.publish(document, tenant=tenant,
                                     words=words or self.words_for(tenant),
                                     by=actor.principal.actor)
        except (FlowInvalid, PublishBlocked) as e:
            code = "blocked_words" if isinstance(e, PublishBlocked) else "flow_invalid"
            raise Invalid(str(e), "document", code, [p.as_dict() for p in e.problems]) from e
        if pub.created:
            self._audit(actor, tenant=tenant, action="flow.publish",
                        resource=f"flow:{pub.flow_id}@{pub.version}",
                        before=previous.document if previous else None, after=pub.document,
                        detail={"version": pub.version, "content_hash": pub.content_hash,
                                **(detail or {})})
        return pub

    def rollback(self, actor: Actor, tenant: str, flow_id: str, version: int) -> PublishedFlow:
        """A new version whose content is ``version``'s (history is never rewritten); the
        words in force today are checked again."""
        old = self.version(tenant, flow_id, version)
        latest = self.version(tenant, flow_id)
        if latest.content_hash == old.content_hash:
            raise Conflict(f"version {latest.version} already has version {version}'s content",
                           "version", "no_change")
        return self.publish_document(actor, tenant, old.document,
                                     detail={"rollback_to": version})

    # --- routes --------------------------------------------------------------------------------

    def routes(self, tenant: str) -> dict[str, str]:
        return self.store.routes(tenant=tenant)

    def set_route(self, actor: Actor, tenant: str, number: str, flow_id: str) -> None:
        others = [t for t in self.store.route_owners(number) if t != tenant]
        if others:
            raise Conflict(f"number {number} is routed by another tenant; remove that route "
                           "first", "number", "number_taken")
        before = self.store.routes(tenant=tenant).get(number)
        try:
            self.store.set_route(number, flow_id, tenant=tenant)
        except UnknownFlow as e:
            raise Invalid(str(e), "flow_id", "not_published") from e
        except BadRoute as e:
            raise Invalid(str(e), "number") from e
        self._audit(actor, tenant=tenant, action="route.set", resource=f"route:{number}",
                    before={"number": number, "flow_id": before} if before else None,
                    after={"number": number, "flow_id": flow_id})

    def delete_route(self, actor: Actor, tenant: str, number: str) -> None:
        flow_id = self.store.delete_route(number, tenant=tenant)
        if flow_id is None:
            raise Missing(f"number {number} is not routed")
        self._audit(actor, tenant=tenant, action="route.delete", resource=f"route:{number}",
                    before={"number": number, "flow_id": flow_id})

    # --- test cases ----------------------------------------------------------------------------

    def test_suite(self, tenant: str, flow_id: str) -> Draft:
        try:
            return self.tests.get(flow_id, tenant=tenant)
        except UnknownDraft as e:
            raise Missing(str(e)) from e

    @staticmethod
    def _suite(document: Any) -> TestSuite:
        try:
            suite = parse_suite(document)
        except SuiteError as e:
            raise Invalid(f"suite: {e}", "suite") from e
        invalid = [c for c in suite.cases if isinstance(c, InvalidCase)]
        if invalid:  # a stored suite must run whole: refuse it, naming the first bad case
            raise Invalid(f"suite.cases: {invalid[0].name}: {'; '.join(invalid[0].errors)}",
                          "suite.cases")
        if suite.flow or suite.subflows:
            raise Invalid("suite.flow/subflows: file paths are for `ivr flow test`; here the "
                          "flow and its subflows come from the store", "suite.subflows")
        return suite

    def save_tests(self, actor: Actor, tenant: str, flow_id: str, document: Any,
                   base_revision: int | None) -> Draft:
        self._suite(document)
        self.summary(tenant, flow_id)  # tests belong to an existing flow
        before, after = _save(self.tests, actor, tenant, flow_id, document,
                              base_revision=base_revision)
        self._audit(actor, tenant=tenant, action="flow.tests.save",
                    resource=f"flow:{flow_id}/tests",
                    before=before.document if before else None, after=after.document)
        return after

    async def run_tests(self, tenant: str, flow_id: str, target: str = "draft",
                        suite_document: Any = None) -> list[CaseResult]:
        """Run the stored test cases (or ``suite_document``) against ``target`` (``draft``,
        ``latest`` or a version number), headless on a fake clock; subflows resolve from the
        tenant's published flows, as on a live call."""
        suite = self._suite(suite_document if suite_document is not None
                            else self.test_suite(tenant, flow_id).document)
        try:
            compiled = compile_flow(self.document(tenant, flow_id, target))
        except FlowInvalid as e:
            raise Invalid(f"the {target} of {flow_id!r} does not validate", "target",
                          "flow_invalid", [p.as_dict() for p in e.problems]) from e
        subflows = {row["flow_id"]: self.store.get(row["flow_id"], tenant=tenant).document
                    for row in self.store.list_flows(tenant=tenant)[:MAX_SUBFLOWS]}
        return await run_suite(compiled, suite, subflows)
