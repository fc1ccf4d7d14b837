"""Opening the database: engine, session factory, schema creation."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, event, inspect, text
from sqlalchemy.engine import Engine
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker
from sqlalchemy.schema import Column


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
        add_missing_columns(self.engine)


def _literal(value: Any) -> str | None:
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return "'" + value.replace("'", "''") + "'"
    return None


def add_missing_columns(engine: Engine) -> list[str]:
    """Columns a newer release declares on an existing table are added (``ALTER TABLE ... ADD
    COLUMN`` with the column's scalar default), so a database made by an older release keeps
    working and keeps its rows: ``create_all`` only creates missing tables. Returns what was
    added (``table.column``)."""
    insp = inspect(engine)
    tables = set(insp.get_table_names())
    added: list[str] = []
    with engine.begin() as conn:
        for table in Base.metadata.sorted_tables:
            if table.name not in tables:
                continue
            have = {c["name"] for c in insp.get_columns(table.name)}
            for col in table.columns:
                if col.name in have:
                    continue
                conn.execute(text(_add_column_ddl(engine, table.name, col)))
                added.append(f"{table.name}.{col.name}")
    return added


def _add_column_ddl(engine: Engine, table: str, col: Column[Any]) -> str:
    prep = engine.dialect.identifier_preparer
    ddl = (f"ALTER TABLE {prep.quote(table)} ADD COLUMN {prep.quote(col.name)} "
           f"{col.type.compile(dialect=engine.dialect)}")
    default = getattr(col.default, "arg", None) if col.default is not None else None
    literal = _literal(default) if default is not None and not callable(default) else None
    return ddl + (f" DEFAULT {literal}" if literal is not None else "")


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")  # readers (CLI, console) never block the engine
    cur.execute("PRAGMA synchronous=NORMAL")
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
