"""The process's open-file budget: every call holds an RTP socket, every TCP/TLS peer a
connection, so the descriptor limit caps concurrent calls.

At start the engine raises the soft ``RLIMIT_NOFILE`` to the hard limit (Debian's default soft
limit is 1,024, its hard limit 1,048,576 for root or 524,288 for users), and ``ivr doctor`` shows
what the limit allows.
"""

from __future__ import annotations

import logging
import resource
from dataclasses import dataclass

log = logging.getLogger("ivr.engine")

RESERVED_FDS = 256  # database, logs, models, SIP listeners, the console, pipes
FDS_PER_CALL = 1  # the RTP socket (RTCP goes out of the same socket)


@dataclass(frozen=True, slots=True)
class FileBudget:
    soft: int
    hard: int

    @property
    def calls(self) -> int:
        """Concurrent calls the limit allows when signalling is over UDP."""
        return max(0, (self.soft - RESERVED_FDS) // FDS_PER_CALL)

    @property
    def tcp_connections(self) -> int:
        """The default inbound TCP/TLS connection cap: a quarter of the budget."""
        return max(64, self.soft // 4)


def file_budget() -> FileBudget:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    return FileBudget(soft, hard)


def raise_file_limit() -> FileBudget:
    """Raise the soft open-file limit to the hard one (never lowers it)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY:
        hard = 1 << 20
    if soft != resource.RLIM_INFINITY and soft < hard:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        except (ValueError, OSError) as e:
            log.warning("could not raise the open-file limit from %d to %d: %s", soft, hard, e)
    budget = file_budget()
    log.info("open-file limit %d: room for about %d concurrent calls", budget.soft, budget.calls)
    return budget
