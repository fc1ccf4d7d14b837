"""The CLI's log handler follows ``sys.stderr``: a CLI run inside a test runner (which swaps
and closes stderr per test) must not leave a handler that writes to a closed file."""

from __future__ import annotations

import io
import logging
import sys

import pytest

from core.logs import setup_logging


def test_records_go_to_the_current_stderr_after_a_swap(monkeypatch: pytest.MonkeyPatch) -> None:
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    try:
        first = io.StringIO()
        monkeypatch.setattr(sys, "stderr", first)
        setup_logging()
        first.close()  # the runner is done with that stream
        second = io.StringIO()
        monkeypatch.setattr(sys, "stderr", second)
        logging.getLogger("ivr.test").warning("after the swap")
        out = second.getvalue()
        assert "WARNING ivr.test: after the swap" in out and "Logging error" not in out, out
    finally:
        root.handlers[:], _ = saved[0], root.setLevel(saved[1])
