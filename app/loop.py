"""Which event loop a long-running command runs on (``runtime.event_loop``)."""

from __future__ import annotations

import asyncio
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
