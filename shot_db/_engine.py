"""Engines and sessions from a URL: SQLite files tuned for several writers, PostgreSQL through psycopg 3."""

from __future__ import annotations

import os
import sqlite3
import time
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import URL, Connection, make_url
from sqlalchemy.exc import ArgumentError
from sqlalchemy.orm import Session, sessionmaker

from shot_db._errors import ShotDBError, ShotDBUsageError

# Execution option a read-only sessionmaker sets: its SQLite transactions start DEFERRED.
_READ_ONLY = "shot_db_read_only"


def default_url(path: str | os.PathLike[str]) -> str:
    """The URL of a SQLite shot DB file at `path` (made absolute, so the URL means one file everywhere)."""
    return URL.create("sqlite+pysqlite", database=os.path.abspath(os.fspath(path))).render_as_string()


def make_engine(url: str, *, busy_timeout_s: float = 30.0) -> Engine:
    """An engine for `url`: `sqlite:///file` (WAL, foreign keys, BEGIN IMMEDIATE) or `postgresql+psycopg://`."""
    try:
        parsed = make_url(url)
    except ArgumentError as exc:
        raise ShotDBUsageError(f"shot DB url: cannot parse {url!r} ({exc})") from None
    backend = parsed.get_backend_name()
    if backend == "postgresql":
        if parsed.drivername in ("postgresql", "postgresql+psycopg"):
            parsed = parsed.set(drivername="postgresql+psycopg")
        else:
            raise ShotDBUsageError(f"shot DB url: driver {parsed.drivername!r} is not supported; use postgresql+psycopg://")
        return create_engine(parsed, pool_pre_ping=True)
    if backend == "sqlite":
        if busy_timeout_s < 5:
            raise ShotDBError(f"shot DB busy_timeout_s: {busy_timeout_s} is below 5 s; writers would fail under load")
        engine = create_engine(parsed, connect_args={"timeout": busy_timeout_s})
        _tune_sqlite(engine, in_memory=parsed.database in (None, "", ":memory:"), busy_timeout_s=busy_timeout_s)
        return engine
    raise ShotDBUsageError(
        f"shot DB url: {parsed.drivername!r} is not supported; use sqlite:///<file> or postgresql+psycopg://"
    )


def _tune_sqlite(engine: Engine, *, in_memory: bool, busy_timeout_s: float) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # sqlite3 (Python 3.11) otherwise opens transactions only before DML, so a SELECT that a write
        # depends on runs outside the transaction and concurrent read-modify-writes lose updates.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA busy_timeout={int(busy_timeout_s * 1000)}")
        cursor.execute("PRAGMA foreign_keys=ON")
        if not in_memory:
            _wal(cursor, busy_timeout_s)
            cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        # IMMEDIATE takes the write lock up front: writers queue (busy timeout) instead of reading a
        # snapshot they can no longer commit on top of. Read-only sessions keep WAL's concurrent reads.
        read_only = conn.get_execution_options().get(_READ_ONLY, False)
        conn.exec_driver_sql("BEGIN" if read_only else "BEGIN IMMEDIATE")


def _wal(cursor: sqlite3.Cursor, timeout_s: float) -> None:
    # WAL is stored in the file, so only a new file needs switching. Switching needs the file to
    # itself, and SQLite answers "locked" at once rather than waiting, so several processes opening a
    # new shot DB together retry here.
    deadline = time.monotonic() + timeout_s
    while cursor.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
        try:
            cursor.execute("PRAGMA journal_mode=WAL")
        except sqlite3.OperationalError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def make_sessionmaker(engine: Engine, *, read_only: bool = False) -> sessionmaker[Session]:
    """Sessions on `engine`; objects stay readable after commit. The caller owns every transaction.

    `read_only` is for readers such as a dashboard: on SQLite their transactions do not take the write
    lock, on PostgreSQL they are READ ONLY transactions (writes are refused).
    """
    bind = engine
    if read_only:
        options: dict[str, Any] = {_READ_ONLY: True}
        if engine.dialect.name == "postgresql":
            options["postgresql_readonly"] = True
        bind = engine.execution_options(**options)
    return sessionmaker(bind=bind, expire_on_commit=False)
