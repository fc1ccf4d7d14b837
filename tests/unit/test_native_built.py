"""The native loops are built wherever the suite runs. The word scanner: scripts/bootstrap.sh
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


def test_the_native_rtp_sender_is_built() -> None:
    """engine/rtp/_rtpsend.c, built by the same step: without it every call's packets go
    through the Python sender (docs/benchmarks.md: 6.1 vs 12.6 µs per silent stream-tick)."""
    if os.environ.get("IVR_RTP_NATIVE") == "0":
        pytest.skip("IVR_RTP_NATIVE=0: the Python sender was asked for")
    from engine.rtp.stream import NATIVE_SEND

    assert NATIVE_SEND, "engine.rtp._rtpsend is not built: run scripts/bootstrap.sh"


def test_the_native_rtp_receive_lane_is_built() -> None:
    """engine/rtp/_rtprecv.c, built by the same step: without it every caller packet runs the
    Python fast lane (docs/benchmarks.md, "Media, stop 29")."""
    if os.environ.get("IVR_RTP_NATIVE") == "0":
        pytest.skip("IVR_RTP_NATIVE=0: the Python paths were asked for")
    from engine.rtp.rxlane import NATIVE_RX_LANE

    assert NATIVE_RX_LANE is not None, "engine.rtp._rtprecv is not built: run scripts/bootstrap.sh"
