"""Alembic migrations: the one way the schema changes (``docs/storage.md``)."""
