"""Lowering the CPU priority of background threads, so live calls win the cores.

Post-call work (inspection's whisper decodes) shares the process with live calls' turns. On
Linux, ``nice`` is a per-thread attribute and a new thread inherits its creator's: a thread
that lowers its own priority before it builds a model also lowers the model's own worker
threads (CTranslate2 starts them in its constructor). The scheduler then gives a contended
core to the live turn first (nice 10 weighs 110 against 1024 for nice 0) while an idle core
still runs the background work at full speed. Elsewhere (no per-thread nice) this is a no-op.

Only for threads that compute without the GIL (native decoders): a niced thread that holds the
GIL can be preempted while holding it, and then the event loop waits for it (priority
inversion); full-suite runs showed exactly that as seconds-long media stalls.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
from collections.abc import Callable
from typing import TypeVar

log = logging.getLogger("ivr.priority")

T = TypeVar("T")
BACKGROUND_NICE = 10


def lower_thread_priority(nice: int = BACKGROUND_NICE) -> bool:
    """Raise the calling thread's nice value to ``nice`` (never lowers it); True if set."""
    if not sys.platform.startswith("linux") or nice <= 0:
        return False
    tid = threading.get_native_id()
    try:
        if os.getpriority(os.PRIO_PROCESS, tid) >= nice:
            return True
        os.setpriority(os.PRIO_PROCESS, tid, nice)
    except OSError as e:  # e.g. a seccomp sandbox refusing setpriority
        log.warning("cannot lower thread %d's priority to nice %d: %s", tid, nice, e)
        return False
    return True


def call_in_background_thread(fn: Callable[[], T], nice: int = BACKGROUND_NICE) -> T:
    """``fn()`` on a fresh thread at ``nice``, so every thread ``fn`` starts inherits it;
    blocks the caller until it returns (use it to build models, not on the event loop)."""
    result: list[T] = []
    error: list[BaseException] = []

    def run() -> None:
        lower_thread_priority(nice)
        try:
            result.append(fn())
        except BaseException as e:  # handed to the caller's thread below
            error.append(e)

    thread = threading.Thread(target=run, name="background-build", daemon=True)
    thread.start()
    thread.join()
    if error:
        raise error[0]
    return result[0]
