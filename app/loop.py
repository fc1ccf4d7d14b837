"""Which event loop a long-running command runs on (``runtime.event_loop``), and how often
its process makes full garbage collections (``runtime.gc_full_every``)."""

from __future__ import annotations

import asyncio
import gc
import importlib.util
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


def loop_name(choice: str) -> str:
    """``auto`` is uvloop when installed, else asyncio's own loop."""
    if choice == "auto":
        return "uvloop" if importlib.util.find_spec("uvloop") is not None else "asyncio"
    return choice


def run(coro: Coroutine[Any, Any, T], choice: str = "auto") -> T:
    if loop_name(choice) == "uvloop":
        import uvloop  # noqa: PLC0415 - optional

        return uvloop.run(coro)
    return asyncio.run(coro)


def space_full_collections(full_every: int) -> tuple[int, int, int]:
    """Make a full collection happen once per ``full_every`` young-generation collections
    (Python's third threshold); the young generations keep their thresholds. A process-wide
    setting, so the command that runs the engine applies it, not the ``Engine`` class (tests
    run engines inside the test process). Returns the thresholds before, to restore them."""
    before = gc.get_threshold()
    gc.set_threshold(before[0], before[1], full_every)
    return before
