"""Schema through migrations: a new database, a pre-migration one, idempotence, downgrade and
back, PostgreSQL-ready SQL, the models and the migrations agreeing, one engine per process, and
the audit log's append-only triggers."""

from __future__ import annotations

from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import create_engine, inspect, text

from app.db_models import metadata
from storage.db import open_database
from storage.migrate import current_revision, downgrade, head_revision, offline_sql, upgrade

BASELINE_TABLES = {"calls", "compliance_list_entries", "compliance_meta", "compliance_words",
                   "flow_defs", "flow_routes", "flow_versions", "speaker_audit",
                   "speaker_consents", "speaker_samples", "speaker_voiceprints"}


def _diff(url: str) -> list[object]:
    engine = create_engine(url)
    with engine.connect() as conn:
        return compare_metadata(MigrationContext.configure(conn), metadata)


def test_a_new_database_is_at_head_and_matches_the_models(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/new.sqlite"
    db = open_database(url)
    with db.engine.connect() as conn:
        assert current_revision(conn) == head_revision()
    assert _diff(url) == [], "a model changed without a migration: run `ivr db revision -m ...`"


def test_the_check_sees_a_model_without_a_migration(tmp_path: Path) -> None:
    """The comparison above must be able to fail: a table dropped behind its back shows."""
    url = f"sqlite:///{tmp_path}/drift.sqlite"
    db = open_database(url)
    with db.engine.begin() as conn:
        conn.execute(text("DROP TABLE flow_tests"))
    assert any("flow_tests" in str(d) for d in _diff(url))


def test_a_database_made_before_migrations_is_adopted(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/old.sqlite"
    legacy = create_engine(url)
    upgrade(legacy, "0001_baseline")  # the tables create_all() used to make, exactly ...
    with legacy.begin() as conn:
        conn.execute(text("DROP TABLE alembic_version"))  # ... and no migration history
    assert set(inspect(legacy).get_table_names()) == BASELINE_TABLES
    with legacy.begin() as conn:
        conn.execute(text("INSERT INTO compliance_meta (key, value) VALUES ('words_version', 7)"))
    assert upgrade(legacy) is None  # it had no revision
    with legacy.connect() as conn:
        assert current_revision(conn) == head_revision()
        assert conn.execute(text("SELECT value FROM compliance_meta")).scalar() == 7
    assert {"users", "audit_log", "flow_drafts"} <= set(inspect(legacy).get_table_names())


def test_upgrade_is_idempotent_and_downgrade_goes_back(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite:///{tmp_path}/ud.sqlite")
    upgrade(engine)
    assert upgrade(engine) == head_revision()  # nothing to do the second time
    downgrade(engine, "0001_baseline")
    assert "users" not in inspect(engine).get_table_names()
    upgrade(engine)
    assert "users" in inspect(engine).get_table_names()


def test_one_engine_per_database_per_process(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/one.sqlite"
    assert open_database(url) is open_database(url)
    assert open_database(url).engine is open_database(url, create=False).engine
    assert open_database("sqlite:///:memory:") is not open_database("sqlite:///:memory:")


def test_the_migrations_render_for_postgresql_without_sqlite_sql() -> None:
    sql = offline_sql("postgresql://ivr@localhost/ivr")
    assert "CREATE TABLE calls" in sql and "CREATE TABLE audit_log" in sql
    assert "plpgsql" in sql  # the append-only trigger in PostgreSQL's own words
    for sqlite_only in ("AUTOINCREMENT", "PRAGMA", "RAISE(ABORT"):
        assert sqlite_only not in sql


def test_history_cannot_be_rewritten_even_by_hand(tmp_path: Path) -> None:
    db = open_database(f"sqlite:///{tmp_path}/audit.sqlite")
    with db.engine.begin() as conn:
        conn.execute(text("INSERT INTO audit_log (at, actor, actor_kind, tenant, action, "
                          "resource, detail, ip) VALUES (1, 'a', 'cli', 't', 'x', 'r', '{}', '')"))
    for sql in ("UPDATE audit_log SET actor = 'b'", "DELETE FROM audit_log"):
        with pytest.raises(Exception, match="append-only"), db.engine.begin() as conn:
            conn.execute(text(sql))


@pytest.mark.postgres
def test_postgresql_migrates_matches_the_models_and_keeps_history(postgres_url: str) -> None:
    db = open_database(postgres_url)
    with db.engine.connect() as conn:
        assert current_revision(conn) == head_revision()
    assert _diff(postgres_url) == []
    with db.engine.begin() as conn:
        conn.execute(text("INSERT INTO audit_log (at, actor, actor_kind, tenant, action, "
                          "resource, detail, ip) VALUES (1, 'a', 'cli', 't', 'x', 'r', '{}', '')"))
    for sql in ("UPDATE audit_log SET actor = 'b'", "DELETE FROM audit_log",
                "TRUNCATE audit_log"):
        with pytest.raises(Exception, match="append-only"), db.engine.begin() as conn:
            conn.execute(text(sql))
