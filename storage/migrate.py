"""Schema migrations (Alembic): every schema change is a script in ``storage/migrations/versions``.

:func:`upgrade` brings a database to the newest revision. It runs whenever a process opens a
database (``open_database``), so ``ivr run``, ``ivr console`` and every CLI command agree on the
schema; when the database is already current it costs one small query. Databases made before
migrations existed (tables created straight from the models) are adopted: the baseline revision
creates only the tables that are missing.

Two processes starting together must not both migrate: SQLite files take an exclusive file lock
beside the database, PostgreSQL a transaction-scoped advisory lock.
"""

from __future__ import annotations

import fcntl
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import MetaData, text
from sqlalchemy.engine import Connection, Engine

log = logging.getLogger("ivr.storage")

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
PG_MIGRATION_LOCK_ID = 0x1F2E_3D4C  # pg_advisory_xact_lock key: one migrator per cluster


class SchemaError(RuntimeError):
    """The database schema cannot be brought up to date (the message says what to do)."""


def alembic_config(*, connection: Connection | None = None, url: str | None = None,
                   metadata: MetaData | None = None) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    if url is not None:
        cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    cfg.attributes["connection"] = connection
    cfg.attributes["target_metadata"] = metadata
    return cfg


@cache
def head_revision() -> str:
    heads = ScriptDirectory.from_config(alembic_config()).get_heads()
    if len(heads) != 1:  # two branches that each added a migration: merge them first
        raise SchemaError(f"migrations have {len(heads)} heads ({', '.join(heads)}); run "
                          "`ivr db merge` (alembic merge) so there is one")
    return heads[0]


def current_revision(connection: Connection) -> str | None:
    return MigrationContext.configure(connection).get_current_revision()


@contextmanager
def _migration_lock(engine: Engine) -> Iterator[None]:
    """One migrator at a time across processes (see the module docstring)."""
    db_path = engine.url.database if engine.dialect.name == "sqlite" else None
    if db_path and db_path != ":memory:":
        with open(f"{db_path}.migrate.lock", "a+b") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)
    else:
        yield


def upgrade(engine: Engine, target: str = "head") -> str | None:
    """Bring the database to ``target``; returns the revision it was at before (None: new)."""
    with engine.connect() as probe:
        before = current_revision(probe)
    if target == "head" and before == head_revision():
        return before
    with _migration_lock(engine), engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": PG_MIGRATION_LOCK_ID})
        before = current_revision(conn)
        command.upgrade(alembic_config(connection=conn), target)
        after = current_revision(conn)
    if before != after:  # a new database is no news; an upgraded one is
        log.log(logging.INFO if before else logging.DEBUG,
                "database schema migrated from %s to %s", before or "empty", after)
    return before


def downgrade(engine: Engine, target: str) -> None:
    with _migration_lock(engine), engine.begin() as conn:
        command.downgrade(alembic_config(connection=conn), target)


def revision(url: str, message: str, metadata: MetaData, *, autogenerate: bool = True) -> Any:
    """Write a new migration script (compared against ``metadata`` when autogenerating)."""
    return command.revision(alembic_config(url=url, metadata=metadata), message=message,
                            autogenerate=autogenerate)


def offline_sql(url: str, target: str = "head") -> str:
    """The SQL the migrations would run on ``url``'s dialect, as text (no database needed):
    how we check the scripts hold no SQL one dialect refuses."""
    import io  # noqa: PLC0415

    buf = io.StringIO()
    cfg = alembic_config(url=url)
    cfg.output_buffer = buf
    command.upgrade(cfg, target, sql=True)
    return buf.getvalue()
