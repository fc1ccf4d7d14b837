"""Chance-corrected reviewer agreement: Cohen's and Fleiss' kappa on published worked examples,
and a calibration session's kappa from reviews stored in a real SQLite database."""

from __future__ import annotations

from pathlib import Path

import pytest

from inspection.agreement import category_table, cohen_kappa, fleiss_kappa
from inspection.review import Reviews
from inspection.store import InspectionResultRow
from storage import open_database
from storage.tenancy import Tenants

# Fleiss (1971) as tabulated in Wikipedia's "Fleiss' kappa" worked example: 10 subjects,
# 14 raters, 5 categories; P-bar = 0.378, P-bar-e = 0.213, kappa = 0.210.
FLEISS_TABLE = [
    [0, 0, 0, 0, 14], [0, 2, 6, 4, 2], [0, 0, 3, 5, 6], [0, 3, 9, 2, 0], [2, 2, 8, 1, 1],
    [7, 7, 0, 0, 0], [3, 2, 6, 3, 0], [2, 5, 3, 2, 2], [6, 5, 2, 1, 0], [0, 2, 2, 3, 7]]


def _pairs(yes_yes: int, yes_no: int, no_yes: int, no_no: int) -> list[tuple[str, str]]:
    return ([("y", "y")] * yes_yes + [("y", "n")] * yes_no + [("n", "y")] * no_yes
            + [("n", "n")] * no_no)


def test_fleiss_kappa_of_the_published_table() -> None:
    assert fleiss_kappa(FLEISS_TABLE) == pytest.approx(0.210, abs=0.0005)


@pytest.mark.parametrize(("cells", "kappa"), [
    ((20, 5, 10, 15), 0.4),  # Wikipedia "Cohen's kappa", simple example: po 0.7, pe 0.5
    ((45, 15, 25, 15), 0.1304),  # same article, "same po, different kappa": pe 0.54
    ((25, 35, 5, 35), 0.2593),  # pe 0.46
])
def test_cohen_kappa_of_the_published_examples(cells: tuple[int, int, int, int],
                                               kappa: float) -> None:
    assert cohen_kappa(_pairs(*cells)) == pytest.approx(kappa, abs=0.0005)


def test_kappa_edges() -> None:
    assert cohen_kappa([]) is None and fleiss_kappa([]) is None
    assert cohen_kappa(_pairs(5, 0, 0, 0)) is None  # one category only: chance agreement is 1
    assert cohen_kappa(_pairs(0, 5, 5, 0)) == pytest.approx(-1.0)  # always opposite
    assert fleiss_kappa([[3, 0], [0, 3], [3, 0]]) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="same number of ratings"):
        fleiss_kappa([[2, 1], [1, 1]])
    assert category_table([["a", "b", "a"], ["b", "b", "b"]]) == [[2, 1], [0, 3]]


def _results(db: object, calls: list[str]) -> None:
    with db.session() as s:  # type: ignore[attr-defined]
        for c in calls:
            s.add(InspectionResultRow(call_id=c, tenant="acme", inspected_at=1.0, score=70.0,
                                      review_state="queued", transcript={}, result={},
                                      stats={}))


def _decide(reviews: Reviews, rows: list, verdicts: dict[tuple[str, str], tuple[str, float]],
            tenants: Tenants) -> None:
    for r in rows:
        verdict, score = verdicts[(r.call_id, r.reviewer)]
        reviews.decide(r.id, r.reviewer, verdict, tenants=tenants, score=score, comment="c")


def test_a_calibration_session_reports_cohen_then_fleiss(tmp_path: Path) -> None:
    db = open_database(f"sqlite:///{tmp_path}/k.sqlite")
    acme = Tenants.one("acme")
    calls = [f"c{i}" for i in range(4)]
    _results(db, calls)
    reviews = Reviews(db)
    # two reviewers: verdicts agree on 3 of 4 calls (c3 differs), pass/fail (>= 80) too (c2)
    two = {("c0", "ann"): ("override", 90), ("c0", "bob"): ("override", 85),
           ("c1", "ann"): ("override", 50), ("c1", "bob"): ("override", 60),
           ("c2", "ann"): ("override", 95), ("c2", "bob"): ("override", 40),
           ("c3", "ann"): ("override", 70), ("c3", "bob"): ("agree", 70)}
    _decide(reviews, reviews.calibrate("s2", calls, ["ann", "bob"], tenants=acme), two, acme)
    got = reviews.agreement("s2", tenants=acme)
    assert (got.kappa_method, got.kappa_calls, got.reviewers) == ("cohen", 4, 2)
    expected = cohen_kappa([(two[(c, "ann")][0], two[(c, "bob")][0]) for c in calls])
    assert got.verdict_kappa == pytest.approx(round(expected or 0, 3))
    assert got.verdict_kappa == 0.0  # ann always overrides: her rate alone explains agreement
    assert got.pass_kappa == pytest.approx(0.5)  # po 0.75; pe 0.5 x 0.25 + 0.5 x 0.75 = 0.5
    assert got.verdict_agreement == 0.75 and got.pass_agreement == 0.75

    # three reviewers, one leaves a call undecided: kappa counts only complete calls
    rows = reviews.calibrate("s3", calls, ["ann", "bob", "cyd"], tenants=acme)
    three = {(c, r): ("agree", 70.0) if c in ("c0", "c1") else ("override", 90.0)
             for c in calls for r in ("ann", "bob", "cyd")}
    three[("c1", "cyd")] = ("override", 90.0)
    _decide(reviews, [r for r in rows if (r.call_id, r.reviewer) != ("c3", "cyd")], three,
            acme)
    got = reviews.agreement("s3", tenants=acme)
    assert (got.kappa_method, got.kappa_calls, got.calls) == ("fleiss", 3, 4)
    table = category_table([["agree"] * 3, ["agree", "agree", "override"], ["override"] * 3])
    assert got.verdict_kappa == pytest.approx(round(fleiss_kappa(table) or 0, 3))
    assert 0 < got.verdict_kappa < 1

    sessions = reviews.sessions(tenants=acme)
    assert {s["session"]: (s["calls"], s["open"], s["done"]) for s in sessions} == {
        "s2": (4, 0, 8), "s3": (4, 1, 11)}
    assert reviews.sessions(tenants=Tenants.one("beta")) == []


def test_the_review_queue_filters_by_score_range_reason_and_my_open_reviews(
        tmp_path: Path) -> None:
    db = open_database(f"sqlite:///{tmp_path}/q.sqlite")
    acme = Tenants.one("acme")
    with db.session() as s:
        for cid, score, reasons in (("low", 20.0, ["score 20 < 80"]),
                                    ("auto", 0.0, ["auto_fail: disclosure"]),
                                    ("flag", 90.0, ["review: complaint", "sample"])):
            s.add(InspectionResultRow(call_id=cid, tenant="acme", inspected_at=1.0,
                                      score=score, review_state="queued", transcript={},
                                      stats={}, result={"reasons": reasons, "items": []}))
    reviews = Reviews(db)

    def ids(**kw: object) -> list[str]:
        return sorted(r.call_id for r in reviews.queue(tenants=acme, **kw))  # type: ignore[arg-type]

    assert ids(min_score=10, max_score=95) == ["flag", "low"]
    assert ids(reason="auto_fail") == ["auto"] and ids(reason="sample") == ["flag"]
    assert ids(reason="score") == ["low"]
    reviews.assign("low", "ann", tenants=acme)
    reviews.calibrate("cal", ["flag"], ["ann", "bob"], tenants=acme)
    assert ids(state="any", reviewer="ann") == ["flag", "low"]  # assigned + calibration
    assert ids(state="assigned", reviewer="ann") == ["low"]
    assert ids(state="any", reviewer="cyd") == []
