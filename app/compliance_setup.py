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
from compliance.wordlist import WordRegistry
from storage.db import open_database


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


def word_registry(settings: Settings) -> WordRegistry:
    reg = WordRegistry(SqlWordStore(open_database(settings.storage.url)),
                       words_file=settings.compliance.words_file)
    reg.refresh()
    return reg
