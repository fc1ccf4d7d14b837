"""The word scanner's native loops are built wherever the suite runs: scripts/bootstrap.sh
compiles compliance/_wordscan.c, and without it the scanner is 4-6x slower on mixed text
(docs/benchmarks.md). Only an explicit IVR_WORDS_NATIVE=0 (the Python paths, on purpose)
excuses it; the comparison tests in test_compliance_native.py skip when it is missing."""

from __future__ import annotations

import os

import pytest

from compliance import native


def test_the_native_loops_are_built() -> None:
    if os.environ.get(native.ENV_SWITCH) == "0":
        pytest.skip("IVR_WORDS_NATIVE=0: the Python paths were asked for")
    assert native.available(), "compliance._wordscan is not built: run scripts/bootstrap.sh"
