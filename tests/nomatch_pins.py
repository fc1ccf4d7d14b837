"""Pinning a grammar confidence model with real turns near its threshold (tests/unit)."""

from __future__ import annotations

import pytest

from asr.nomatch import DEFAULT_THRESHOLD, calibrated_forced

NearTheLine = tuple[tuple[dict[str, float], float], ...]


def assert_near_the_line(model: tuple[float, ...], turns: NearTheLine) -> None:
    """Each turn gets the confidence written beside it (to 5e-4) and falls on its side of the
    default threshold: turns within 0.1 logit of it flip when an intercept, a weight or the
    threshold moves by a tenth of a logit, so a model cannot change unnoticed."""
    for features, confidence in turns:
        got = calibrated_forced(features, model)
        assert got == pytest.approx(confidence, abs=5e-4), features
        assert (got >= DEFAULT_THRESHOLD) == (confidence >= 0.5), features
