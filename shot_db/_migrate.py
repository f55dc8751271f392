"""Alembic, driven from code: the migration tree ships inside the package, no alembic.ini needed."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, text

from shot_db._engine import make_engine
from shot_db._errors import ShotDBError

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
# Any constant works; it only has to be the same for every toonfarm process upgrading one database.
_PG_UPGRADE_LOCK = 0x746F6F6E


def alembic_config() -> Config:
    """An Alembic config pointing at the packaged migrations (for `command.*` calls and tests)."""
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    return cfg


def upgrade(target: Engine | str, revision: str = "head") -> None:
    """Bring the shot DB at `target` (an engine or URL) to `revision`, in one transaction."""
    _run(target, lambda cfg: command.upgrade(cfg, revision))


def downgrade(target: Engine | str, revision: str) -> None:
    """Take the shot DB at `target` back to `revision`, in one transaction."""
    _run(target, lambda cfg: command.downgrade(cfg, revision))


def current_revision(engine: Engine) -> str | None:
    """The revision the database is at, or None when it has never been migrated."""
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def head_revision() -> str:
    """The revision this code's models are at: the newest migration shipped."""
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None, "the packaged migration tree has no head"
    return head


def known_revision(revision: str) -> bool:
    """Whether `revision` is one of the shipped migrations (a newer toonfarm may have written others)."""
    return revision in {s.revision for s in ScriptDirectory.from_config(alembic_config()).walk_revisions()}


def _run(target: Engine | str, step: Callable[[Config], None]) -> None:
    engine = make_engine(target) if isinstance(target, str) else target
    try:
        with engine.connect() as conn:
            sqlite = conn.dialect.name == "sqlite"
            if sqlite:
                # Batch mode recreates tables; with foreign keys on, dropping a referenced table would
                # fail or cascade. The pragma is a no-op inside a transaction, so it is set before BEGIN.
                conn.connection.driver_connection.execute("PRAGMA foreign_keys=OFF")  # type: ignore[union-attr]
            try:
                with conn.begin():
                    if conn.dialect.name == "postgresql":
                        # Workers that start together upgrade one after the other, never twice.
                        conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _PG_UPGRADE_LOCK})
                    cfg = alembic_config()
                    cfg.attributes["connection"] = conn
                    step(cfg)
                    if sqlite:
                        broken = conn.exec_driver_sql("PRAGMA foreign_key_check").all()
                        if broken:
                            raise ShotDBError(f"shot DB migration left broken foreign keys: {broken[:3]}")
            finally:
                if sqlite:
                    conn.connection.driver_connection.execute("PRAGMA foreign_keys=ON")  # type: ignore[union-attr]
    finally:
        if isinstance(target, str):
            engine.dispose()
