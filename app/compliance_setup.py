"""Building the compliance services from the configuration, for the engine and the CLI alike.

Lists (and caps) come from Redis when ``compliance.redis_url`` is set so every engine node sees
the same state, else from the SQL database at ``storage.url``; word lists always from SQL, with
the optional words file merged in and hot-reloaded.
"""

from __future__ import annotations

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


def word_registry(settings: Settings, clock: Clock | None = None) -> WordRegistry:
    """Filters per tenant over :func:`word_store`, recompiled when the lists change; the
    version is asked of the database only when a change was announced or the poll is due."""
    max_age = POLL_WITH_REDIS_S if settings.compliance.redis_url else POLL_WITHOUT_REDIS_S
    store = VersionedWordStore(word_store(settings), clock or SystemClock(), max_age)
    reg = WordRegistry(store, words_file=settings.compliance.words_file)
    reg.refresh()
    return reg
