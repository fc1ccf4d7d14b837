"""Who may be given a review: only console users who may review that tenant's calls.

Why: reviewers used to be taken as typed, so a typo (or a client's user named for another
tenant's call) opened a review nobody could ever see or close, and a calibration with it never
finished. Real SQLite database, real users made through the console's identity service."""

from __future__ import annotations

from pathlib import Path

import pytest

from console.audit import AuditLog
from console.identity import Identity
from console.roles import Principal
from console.services.base import Actor, Invalid
from console.services.inspection import InspectionOps
from inspection.store import InspectionResultRow
from storage import open_database
from storage.tenancy import Tenants

PASSWORD = "a long enough password 1"


@pytest.fixture
def ops(tmp_path: Path) -> InspectionOps:
    db = open_database(f"sqlite:///{tmp_path}/r.sqlite")
    ids = Identity(db)
    for tenant in ("acme", "beta"):
        ids.ensure_tenant(tenant)
    for name, role, tenant in (("qa-staff", "qa", "default"), ("acme-qa", "client", "acme"),
                               ("beta-qa", "client", "beta"), ("drawer", "designer", "default"),
                               ("gone", "qa", "default")):
        ids.create_user(name, PASSWORD, role, tenant=tenant)
    gone = ids.user_by_name("gone", tenants=Tenants.every())
    ids.update_user(gone.id, tenants=Tenants.every(), disabled=True)
    with db.session() as s:
        s.add(InspectionResultRow(call_id="c1", tenant="acme", inspected_at=1.0, score=70.0,
                                  review_state="queued", transcript={}, result={}, stats={}))
    return InspectionOps(db, AuditLog(db))


def test_may_review_names_each_reason(ops: InspectionOps) -> None:
    assert ops.may_review("qa-staff", "acme") is None  # operator staff: any tenant
    assert ops.may_review("acme-qa", "acme") is None  # a client's QA: its own tenant
    assert ops.may_review("beta-qa", "acme") == "belongs to tenant 'beta', not 'acme'"
    assert ops.may_review("nobody", "acme") == "is not a console user"
    assert ops.may_review("gone", "acme") == "is disabled"
    assert ops.may_review("drawer", "acme") == "has role designer, which may not review calls"


def test_assign_refuses_a_reviewer_who_may_not_and_opens_nothing(ops: InspectionOps) -> None:
    actor = Actor(Principal.cli("lead"))
    acme = Tenants.one("acme")
    with pytest.raises(Invalid) as e:
        ops.assign(actor, "c1", "qa-stafff", acme)
    assert e.value.field == "body.reviewer" and "not a console user" in str(e.value)
    assert [r["call_id"] for r in ops.review_queue(acme)] == ["c1"]  # still unassigned
    row = ops.assign(actor, "c1", "acme-qa", acme)
    assert row["reviewer"] == "acme-qa" and row["level"] == 1


def test_calibration_names_the_refused_reviewer(ops: InspectionOps) -> None:
    actor = Actor(Principal.cli("lead"))
    with pytest.raises(Invalid) as e:
        ops.calibrate(actor, "cal", ["c1"], ["qa-staff", "drawer"], Tenants.one("acme"))
    assert e.value.field == "body.reviewers[1]"
    assert ops.calibrations(Tenants.one("acme")) == []  # nothing half-made
