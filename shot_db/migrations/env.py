"""Alembic environment for the shot DB: one tree for SQLite and PostgreSQL, batch mode on SQLite.

`shot_db.upgrade()` hands in an open connection (config.attributes["connection"]) inside its own
transaction; a `sqlalchemy.url` main option is the fallback for developer scripts.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy.engine import Connection

from shot_db._engine import make_engine
from shot_db.models import Base


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def _main() -> None:
    config = context.config
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    engine = make_engine(config.get_main_option("sqlalchemy.url") or "")
    try:
        with engine.begin() as conn:
            _run(conn)
    finally:
        engine.dispose()


_main()
