"""Building the compliance services from the configuration, for the engine and the CLI alike.

Lists (and caps) come from Redis when ``compliance.redis_url`` is set so every engine node sees
the same state, else from the SQL database at ``storage.url``; word lists always from SQL, with
the optional words file merged in and hot-reloaded.
"""

from __future__ import annotations

import gc
from datetime import date
from typing import Any
from zoneinfo import ZoneInfo

from app.config import ComplianceConfig, Settings
from compliance.caps import CapRule
from compliance.lists import ListStore
from compliance.service import ComplianceService
from compliance.sql_store import SqlListStore, SqlWordStore
from compliance.word_version import (
    POLL_WITH_REDIS_S,
    POLL_WITHOUT_REDIS_S,
    VersionedWordStore,
    change_notifier,
)
from compliance.wordlist import WordRegistry
from compliance.words import WordFilter
from core.clock import Clock, SystemClock
from storage.db import Database, open_database


def open_list_store(settings: Settings) -> ListStore:
    if settings.compliance.redis_url:
        from compliance.redis_store import RedisListStore  # noqa: PLC0415 - optional redis

        return RedisListStore.from_url(settings.compliance.redis_url)
    return SqlListStore(open_database(settings.storage.url))


def open_compliance(settings: Settings) -> ComplianceService:
    """The service as configured: Redis lists and caps when clustered, else SQL + in-process."""
    from compliance.caps import InMemoryCapCounter  # noqa: PLC0415
    from compliance.windows import CallingWindow  # noqa: PLC0415

    cfg: ComplianceConfig = settings.compliance
    caps: Any = InMemoryCapCounter()
    if cfg.redis_url:
        from compliance.redis_store import RedisCapCounter  # noqa: PLC0415

        caps = RedisCapCounter.from_url(cfg.redis_url)
    window = CallingWindow.daily(cfg.window_start, cfg.window_end, cfg.window_weekdays,
                                 [date.fromisoformat(d) for d in cfg.holidays])
    return ComplianceService(
        open_list_store(settings), caps,
        cap_rules=[CapRule(c.purpose, c.limit, c.period, c.scope) for c in cfg.caps],
        region=cfg.default_region, default_tz=ZoneInfo(cfg.default_timezone),
        default_window=window)


def word_store(settings: Settings, db: Database | None = None) -> SqlWordStore:
    """The word lists in the database; a change also tells the other nodes (over Redis when
    ``compliance.redis_url`` is set)."""
    return SqlWordStore(db or open_database(settings.storage.url),
                        on_change=change_notifier(settings.compliance.redis_url))


def keep_out_of_full_collections(_: WordFilter) -> None:
    """A compiled filter is ~10 tracked objects per term (1M for 100k terms), and every full
    collection walks them all: 350 ms with the event loop stopped, so every call's audio
    stops too (measured, docs/benchmarks.md). The engine freezes what it loads at start-up,
    but filters are compiled on first use and again after each word change, so each new one is
    frozen the same way. ``gc.freeze`` is cheap (it moves the generations' lists); a frozen
    object still goes when its last reference does, so a replaced filter is freed; only
    garbage *cycles* alive at that moment stay until exit, a few per word change."""
    gc.freeze()


def word_registry(settings: Settings, clock: Clock | None = None) -> WordRegistry:
    """Filters per tenant over :func:`word_store`, recompiled when the lists change; the
    version is asked of the database only when a change was announced or the poll is due."""
    max_age = POLL_WITH_REDIS_S if settings.compliance.redis_url else POLL_WITHOUT_REDIS_S
    store = VersionedWordStore(word_store(settings), clock or SystemClock(), max_age)
    reg = WordRegistry(store, words_file=settings.compliance.words_file,
                       on_compiled=keep_out_of_full_collections)
    reg.refresh()
    return reg
