"""The token bucket behind admission pacing (sip.max_cps) and the SMS tenant rate."""

from __future__ import annotations

import pytest

from core.rate import TokenBucket


def test_a_full_bucket_gives_its_burst_then_one_per_interval() -> None:
    bucket = TokenBucket(rate_per_s=10, burst=3)
    assert [bucket.try_take(0.0) for _ in range(3)] == [0.0, 0.0, 0.0]
    assert bucket.try_take(0.0) == pytest.approx(0.1)  # nothing left: the wait for one
    assert bucket.try_take(0.05) == pytest.approx(0.05)  # refused takes nothing
    assert bucket.try_take(0.1) == 0.0
    assert bucket.try_take(0.1) == pytest.approx(0.1)


def test_refill_stops_at_the_burst_and_time_going_back_changes_nothing() -> None:
    bucket = TokenBucket(rate_per_s=2, burst=2)
    bucket.try_take(0.0)
    bucket.try_take(0.0)
    assert bucket.level(100.0) == 2.0  # an idle hour does not bank 200 calls
    assert bucket.level(50.0) == 2.0


def test_debt_lets_a_big_item_through_and_makes_the_next_wait() -> None:
    bucket = TokenBucket(rate_per_s=1, burst=5)
    assert bucket.take_debt(0.0, 12) == 0.0  # 12 parts > burst: goes now, into debt
    assert bucket.level(0.0) == -7.0
    assert bucket.take_debt(0.0, 1) == pytest.approx(8.0)  # back to one token: 8 s


@pytest.mark.parametrize(("rate", "burst", "field"), [(0, 1, "rate"), (-1, 1, "rate"),
                                                      (1, 0.5, "burst")])
def test_bad_settings_name_the_field(rate: float, burst: float, field: str) -> None:
    with pytest.raises(ValueError, match=field):
        TokenBucket(rate, burst)
