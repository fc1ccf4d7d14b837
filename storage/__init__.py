"""The one repository layer: SQLAlchemy over SQLite by default, PostgreSQL when configured.

Every area declares its tables on :class:`Base` in its own module (``storage/<area>.py`` or its
package) and goes through :func:`open_database`, so the console, the CLI and the engine share one
schema and one way to open it.
"""

from storage.db import Base, Database, open_database

__all__ = ["Base", "Database", "open_database"]
