"""Opening the database: engine, session factory, schema creation."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, event
from sqlalchemy.engine import Engine
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker


class Base(DeclarativeBase):
    pass


class Database:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._sessions = sessionmaker(engine, expire_on_commit=False)

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A transaction: committed when the block ends, rolled back on error."""
        with self._sessions() as s, s.begin():
            yield s

    def create_schema(self) -> None:
        Base.metadata.create_all(self.engine)


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")  # readers (CLI, console) never block the engine
    cur.execute("PRAGMA synchronous=NORMAL")
    # several engine processes (ivr run --workers N) write the same file: wait for the lock
    cur.execute("PRAGMA busy_timeout=10000")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.close()


def open_database(url: str, *, create: bool = True) -> Database:
    """Open ``url`` (``sqlite:///path`` creates the parent folder) and create missing tables.

    Import the modules that declare tables before calling this so ``create_all`` sees them.
    """
    if url.startswith("sqlite:///") and url != "sqlite:///:memory:":
        Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(url, future=True)
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas)
    db = Database(engine)
    if create:
        db.create_schema()
    return db
