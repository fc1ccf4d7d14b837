"""Opening the database: one engine per database per process, schema through migrations.

Every part of a process (the CDR writer, the flow store, compliance, voiceprints, the console)
used to open its own SQLAlchemy engine on the same file; now :func:`open_database` hands them
the same :class:`Database` (one connection pool, one set of SQLite pragmas), and brings the schema
up to date through Alembic (:mod:`storage.migrate`) the first time the process opens it.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import MetaData, create_engine, event
from sqlalchemy.engine import Engine
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker

# Named constraints, so a later migration can drop or change one on SQLite and PostgreSQL alike.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class Database:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._sessions = sessionmaker(engine, expire_on_commit=False)
        self.migrated = False

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A transaction: committed when the block ends, rolled back on error."""
        with self._sessions() as s, s.begin():
            yield s

    def migrate(self) -> None:
        """Bring the schema to the newest migration (a no-op query when it is current)."""
        # Alembic logs its plugins at INFO as it is imported; our own line says what migrated.
        logging.getLogger("alembic").setLevel(logging.WARNING)
        from storage.migrate import upgrade  # noqa: PLC0415 - alembic loads only when needed

        upgrade(self.engine)
        self.migrated = True

    def create_schema(self) -> None:
        """Kept for callers that predate migrations: the same as :meth:`migrate`."""
        self.migrate()


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")  # readers (CLI, console) never block the engine
    cur.execute("PRAGMA synchronous=NORMAL")
    # several engine processes (ivr run --workers N) write the same file: wait for the lock
    cur.execute("PRAGMA busy_timeout=10000")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.close()


_OPEN: dict[str, Database] = {}
_LOCK = threading.Lock()


def open_database(url: str, *, create: bool = True) -> Database:
    """The process's :class:`Database` for ``url`` (``sqlite:///path`` creates the folder);
    with ``create`` the schema is migrated to the newest revision first.

    ``sqlite:///:memory:`` is never shared: each call is a new, empty database.
    """
    with _LOCK:
        db = _OPEN.get(url)
        if db is None:
            db = _new(url)
            if url != "sqlite:///:memory:":
                _OPEN[url] = db
        if create and not db.migrated:
            db.migrate()
    return db


def _new(url: str) -> Database:
    if url.startswith("sqlite:///") and url != "sqlite:///:memory:":
        Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(url, pool_pre_ping=not url.startswith("sqlite"))
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas)
    return Database(engine)


def close_all() -> None:
    """Dispose every engine this process opened (tests; an orderly exit)."""
    with _LOCK:
        for db in _OPEN.values():
            db.engine.dispose()
        _OPEN.clear()
