"""`ShotDB`: a process's handle on one shot DB (its engine and sessions), opened to write or to read.

A render opens it with `migrate=True` and brings the schema to this code's head first. Everything else
(history, lineage, a dashboard) opens it to read: nothing is created or migrated, and a database whose
schema is not this code's says so in one line naming `toonfarm db upgrade`.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TypeVar

from sqlalchemy import Engine
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.orm import Session, sessionmaker

from shot_db._engine import make_engine, make_sessionmaker
from shot_db._errors import ShotDBUnavailable, ShotDBUsageError
from shot_db._migrate import current_revision, head_revision, known_revision, upgrade

UPGRADE_HINT = "run `toonfarm db upgrade`"
T = TypeVar("T")


def _pauses(retry_s: float) -> Iterator[float]:
    """The waits between tries of a database that did not answer: 0.25 s doubling to 8 s, for `retry_s`
    from now (not from the first failure, so a retried `run` whose beginning waited does not wait twice)."""
    deadline = time.monotonic() + retry_s

    def waits() -> Iterator[float]:
        pause = 0.25
        while time.monotonic() + pause <= deadline:
            yield pause
            pause = min(pause * 2, 8.0)

    return waits()


class ShotDB:
    """A shot DB opened for this process: `transaction()` gives sessions; close (or `with`) disposes it."""

    def __init__(self, engine: Engine, *, read_only: bool = False, retry_s: float = 0.0) -> None:
        self.engine = engine
        self.url = engine.url.render_as_string(hide_password=True)
        self.retry_s = retry_s
        self._sessions: sessionmaker[Session] = make_sessionmaker(engine, read_only=read_only)

    @classmethod
    def open(cls, url: str, *, migrate: bool = False, retry_s: float = 0.0) -> ShotDB:
        """Open the shot DB at `url`: with `migrate`, create or upgrade its schema to head; without, read
        only, refusing a database whose schema is missing, behind or ahead of this code. Transactions
        wait up to `retry_s` for a database that is unavailable when they begin (see `transaction`); the
        opening itself does not: a database that is not there when a run starts is said at once."""
        _refuse_missing_file(url, migrate)
        engine = make_engine(url)
        try:
            with unavailable_as_error(engine.url.render_as_string(hide_password=True)):
                _check_schema(engine, migrate)
                if migrate:
                    upgrade(engine)
        except BaseException:
            engine.dispose()
            raise
        return cls(engine, read_only=not migrate, retry_s=retry_s)

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        """One transaction: committed when the block ends, rolled back if it raises. A dropped connection
        or a lock timeout surfaces as ShotDBUnavailable.

        Beginning is retried with backoff (0.25 s doubling to 8 s) for up to `retry_s`: a PostgreSQL
        restart refuses connections for a few seconds, and SQLite's "database is locked" is met at
        BEGIN IMMEDIATE. Both happen before the block has run, so trying again repeats nothing. A
        failure inside the block is the caller's to retry (its block may have done more than SQL): `run`
        retries a block that is SQL alone.
        """
        with unavailable_as_error(self.url), self._sessions() as session:
            self._begin(session)
            try:
                yield session
                session.commit()
            except BaseException:
                session.rollback()
                raise

    def run(self, work: Callable[[Session], T]) -> T:
        """`work` in one transaction, run whole again (within `retry_s`) when the connection drops midway,
        as a database restart does. Only for work that is SQL alone: what it did before the drop was rolled
        back with it, so another try repeats nothing."""
        pauses = _pauses(self.retry_s)
        while True:
            try:
                with self.transaction() as session:
                    return work(session)
            except ShotDBUnavailable:
                if (pause := next(pauses, None)) is None:
                    raise
                time.sleep(pause)

    @contextmanager
    def savepoint(self, session: Session) -> Iterator[None]:
        """A savepoint in `session`'s transaction: what raises inside is rolled back alone and raised as it
        is, for the caller to decide (one shot's bad row fails that shot), except a database that is gone,
        which no savepoint survives: that surfaces as ShotDBUnavailable, for `run` to try the whole again."""
        with unavailable_as_error(self.url), session.begin_nested():
            yield

    def _begin(self, session: Session) -> None:
        pauses = _pauses(self.retry_s)
        while True:
            try:
                with unavailable_as_error(self.url):
                    session.connection()  # connects and begins (SQLite: BEGIN IMMEDIATE, the write lock)
                return
            except ShotDBUnavailable:
                session.rollback()
                if (pause := next(pauses, None)) is None:
                    raise
                time.sleep(pause)

    def close(self) -> None:
        self.engine.dispose()

    def __enter__(self) -> ShotDB:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@contextmanager
def unavailable_as_error(url: str) -> Iterator[None]:
    """SQLAlchemy's "the database did not answer" errors as ShotDBUnavailable; everything else as it is.

    OperationalError is what both drivers raise for a refused or dropped connection, a lock or statement
    timeout, and PostgreSQL's serialization failures and deadlocks. SQLite raises it for a missing table
    too ("no such table"), which no retry fixes, so those stay as they are.
    """
    try:
        yield
    except (OperationalError, InterfaceError, PoolTimeout) as exc:
        cause = getattr(exc, "orig", None) or exc
        lines = str(cause).strip().splitlines()
        reason = lines[0] if lines else type(cause).__name__
        if reason.startswith("no such "):
            raise
        if reason == "unable to open database file":  # SQLite: its folder is missing or not writable
            raise ShotDBUsageError(f"shot DB at {url}: cannot open the file (does its folder exist, writable?)") from None
        raise ShotDBUnavailable(f"shot DB at {url}: unavailable ({reason})") from exc
    except DBAPIError as exc:
        if not exc.connection_invalidated:
            raise
        raise ShotDBUnavailable(f"shot DB at {url}: connection lost ({type(exc.orig).__name__})") from exc


def _refuse_missing_file(url: str, migrate: bool) -> None:
    # Connecting to a SQLite file that is not there creates it: a read would leave an empty database.
    parsed = make_url(url)
    path = parsed.database
    if migrate or parsed.get_backend_name() != "sqlite" or path in (None, "", ":memory:"):
        return
    if not os.path.isfile(path):
        raise ShotDBUsageError(f"shot DB {path}: no such file (nothing rendered there yet?)")


def _check_schema(engine: Engine, migrate: bool) -> None:
    """A schema this code can read, or (to migrate) one it can upgrade: never one from a newer toonfarm."""
    current, head = current_revision(engine), head_revision()
    url = engine.url.render_as_string(hide_password=True)
    if current == head or (migrate and (current is None or known_revision(current))):
        return
    if current is None:
        raise ShotDBUsageError(f"shot DB at {url} has no toonfarm schema: {UPGRADE_HINT} (or render into it)")
    if not known_revision(current):
        raise ShotDBUsageError(
            f"shot DB at {url} is at revision {current}, newer than this toonfarm knows (head {head}): upgrade toonfarm"
        )
    raise ShotDBUsageError(f"shot DB at {url} is at revision {current}, this toonfarm reads {head}: {UPGRADE_HINT}")
