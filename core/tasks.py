"""The one way to start tasks.

Every background task gets a name (it shows in logs and in ``asyncio.all_tasks()`` dumps), a
strong reference (so the GC cannot drop it mid-flight, RUF006) and a done-callback that logs its
failure; long-lived ones belong to a :class:`TaskScope` that shutdown closes. A task that its
creator awaits (racing work against a timeout, say) comes from :func:`awaited`: its failure
reaches the awaiting code, so it is not logged twice. Nothing else in the project calls
``asyncio.create_task`` / ``ensure_future``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Coroutine
from typing import Any, TypeVar

log = logging.getLogger("ivr.tasks")
T = TypeVar("T")

_live: set[asyncio.Task[Any]] = set()


def _on_done(task: asyncio.Task[Any]) -> None:
    _live.discard(task)
    if task.cancelled():
        return
    exc = task.exception()
    if exc is not None:
        log.error("task %s failed: %r", task.get_name(), exc, exc_info=exc)


def spawn(coro: Coroutine[Any, Any, T], name: str) -> asyncio.Task[T]:
    """Start ``coro`` as a named, referenced task whose failure is logged."""
    task = asyncio.get_running_loop().create_task(coro, name=name)
    _live.add(task)
    task.add_done_callback(_on_done)
    return task


def awaited(aw: Awaitable[T], name: str) -> asyncio.Future[T]:
    """``aw`` as a future the caller will await (a future is returned as it is)."""
    if isinstance(aw, asyncio.Future):
        return aw
    if asyncio.iscoroutine(aw):
        return asyncio.get_running_loop().create_task(aw, name=name)
    return asyncio.ensure_future(aw)


class TaskScope:
    """Tasks owned by one object (a call, a transport); cancelled together on close.

    ``close`` cancels what is still running and waits up to ``grace_s`` seconds for it to
    finish, so a stuck task cannot hold up shutdown forever.
    """

    def __init__(self, name: str) -> None:
        self.name = name
        self._tasks: set[asyncio.Task[Any]] = set()
        self._closed = False

    def spawn(self, coro: Coroutine[Any, Any, T], name: str) -> asyncio.Task[T]:
        if self._closed:
            coro.close()
            raise RuntimeError(f"task scope {self.name} is closed")
        task = spawn(coro, f"{self.name}:{name}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    def __len__(self) -> int:
        return len(self._tasks)

    @property
    def running(self) -> list[asyncio.Task[Any]]:
        return [t for t in self._tasks if not t.done()]

    async def wait(self, timeout_s: float | None = None) -> bool:
        """Wait until every task of the scope has finished (new ones too); True if they did
        within ``timeout_s`` seconds. Nothing is cancelled: that is :meth:`close`'s job."""
        loop = asyncio.get_running_loop()
        deadline = None if timeout_s is None else loop.time() + timeout_s
        while pending := self.running:
            left = None if deadline is None else deadline - loop.time()
            if left is not None and left <= 0:
                return False
            await asyncio.wait(pending, timeout=left)
        return True

    async def close(self, grace_s: float = 2.0) -> None:
        self._closed = True
        tasks = [t for t in self._tasks if not t.done()]
        current = asyncio.current_task()
        tasks = [t for t in tasks if t is not current]
        for t in tasks:
            t.cancel()
        if tasks:
            _, pending = await asyncio.wait(tasks, timeout=grace_s)
            for t in pending:
                log.warning("task %s did not stop within %.1fs", t.get_name(), grace_s)
