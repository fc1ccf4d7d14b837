"""Which scorecard scores a call (inspection/scoping.py): the most specific active card (flow and
campaign, campaign, flow, default), ties to the first, clashes named by field, bad scopes
refused naming the field."""

from __future__ import annotations

from typing import Any

import pytest

from inspection.rules import RuleError
from inspection.scoping import Scope, overlap, parse_scope, pick

CARDS = [("default", None), ("sales", {"flows": ["sales", "upsell"]}),
         ("promo", {"campaigns": ["promo"]}), ("sales_promo", {"flows": ["sales"],
                                                               "campaigns": ["promo"]})]


def chosen(cards: list[tuple[str, Any]], flow: str | None, campaign: str | None) -> str | None:
    got = pick(cards, lambda c: parse_scope(c[1]), flow, campaign)
    return got[0] if got else None


@pytest.mark.parametrize(("flow", "campaign", "card"), [
    ("sales", "promo", "sales_promo"),  # both
    ("service", "promo", "promo"),  # the campaign beats ...
    ("sales", None, "sales"),  # ... the flow
    ("upsell", "other", "sales"),
    ("service", None, "default"),
    (None, None, "default"),
])
def test_the_most_specific_card_wins(flow: str | None, campaign: str | None,
                                     card: str) -> None:
    assert chosen(CARDS, flow, campaign) == card


def test_no_default_no_fit_and_ties_to_the_first() -> None:
    assert chosen(CARDS[1:], "service", None) is None
    assert chosen([("a", {"flows": ["x"]}), ("b", {"flows": ["x"]})], "x", None) == "a"


def test_overlap_names_the_field_of_the_new_card() -> None:
    sales = parse_scope({"flows": ["sales"]})
    assert overlap(parse_scope({"flows": ["service", "sales"]}), sales) == \
        ("scope.flows[1]", ("sales", None))
    assert overlap(parse_scope({"campaigns": ["promo"]}), sales) is None  # another level
    assert overlap(parse_scope({"flows": ["sales"], "campaigns": ["promo"]}), sales) is None
    assert overlap(Scope(), Scope()) == ("scope", (None, None))
    assert overlap(parse_scope({"campaigns": ["a", "b"]}),
                   parse_scope({"campaigns": ["b"]})) == ("scope.campaigns[1]", (None, "b"))


@pytest.mark.parametrize(("scope", "field"), [
    ("sales", "scope"),
    ({"queues": ["q"]}, "scope.queues"),
    ({"flows": {"a": 1}}, "scope.flows"),
    ({"flows": ["ok", "not ok"]}, "scope.flows[1]"),
    ({"campaigns": [7]}, "scope.campaigns[0]"),
])
def test_bad_scopes_name_the_field(scope: Any, field: str) -> None:
    with pytest.raises(RuleError) as e:
        parse_scope(scope)
    assert str(e.value).split(":", 1)[0] == field


def test_a_scope_round_trips_and_repeats_collapse() -> None:
    s = parse_scope({"flows": ["a", "a", "b"], "campaigns": "c"})
    assert s == Scope(("a", "b"), ("c",)) and s.as_dict() == {"flows": ["a", "b"],
                                                             "campaigns": ["c"]}
    assert parse_scope({}).is_default and parse_scope(None).as_dict() == {}
