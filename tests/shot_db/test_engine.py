"""Engines: SQLite files tuned for several writers, PostgreSQL through psycopg 3, clear URL errors."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.exc import DBAPIError

import shot_db
from shot_db.models import BatchRun, BatchStatus


def test_default_url_is_an_absolute_sqlite_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    url = shot_db.default_url("shots.sqlite")
    assert url == f"sqlite+pysqlite:///{tmp_path / 'shots.sqlite'}"
    engine = shot_db.make_engine(url)
    shot_db.upgrade(engine)
    engine.dispose()
    assert (tmp_path / "shots.sqlite").is_file()


def test_sqlite_file_engine_settings(tmp_path: Path) -> None:
    engine = shot_db.make_engine(shot_db.default_url(tmp_path / "s.sqlite"))
    with engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() >= 5000
    engine.dispose()


def test_sqlite_transactions_take_the_write_lock_at_begin(tmp_path: Path) -> None:
    """A transaction that has only read already blocks other writers: its later write cannot go stale."""
    path = tmp_path / "s.sqlite"
    engine = shot_db.make_engine(shot_db.default_url(path))
    shot_db.upgrade(engine)
    Session = shot_db.make_sessionmaker(engine)
    ReadOnly = shot_db.make_sessionmaker(engine, read_only=True)
    other = sqlite3.connect(path, timeout=0.1, isolation_level=None)
    with Session() as session, session.begin():
        session.execute(select(BatchRun)).all()  # a read only
        with pytest.raises(sqlite3.OperationalError, match="locked"):
            other.execute("BEGIN IMMEDIATE")
    other.execute("BEGIN IMMEDIATE")  # free again once the session's transaction ended
    other.execute("ROLLBACK")
    with ReadOnly() as session, session.begin():
        session.execute(select(BatchRun)).all()
        other.execute("BEGIN IMMEDIATE")  # a read-only session leaves writers alone
        other.execute("ROLLBACK")
    other.close()
    engine.dispose()


def test_postgresql_url_gets_psycopg3() -> None:
    engine = shot_db.make_engine("postgresql://root@127.0.0.1:5432/test")
    assert engine.dialect.driver == "psycopg"
    engine.dispose()


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("mysql://u@h/db", "not supported"),
        ("postgresql+psycopg2://u@h/db", "psycopg2"),
        ("not a url", "cannot parse"),
    ],
)
def test_bad_urls_say_what_is_wrong(url: str, message: str) -> None:
    with pytest.raises(shot_db.ShotDBError, match=message):
        shot_db.make_engine(url)


def test_sqlite_busy_timeout_below_5s_is_refused(tmp_path: Path) -> None:
    with pytest.raises(shot_db.ShotDBError, match="busy_timeout_s"):
        shot_db.make_engine(shot_db.default_url(tmp_path / "s.sqlite"), busy_timeout_s=1)


def test_plain_read_modify_write_loses_no_update_on_sqlite(tmp_path: Path) -> None:
    """The SQLite setting itself: ORM read-then-write with no explicit lock, from several threads.

    (PostgreSQL needs SELECT ... FOR UPDATE for this; count_batch does that, tested on both engines.)
    """
    engine = shot_db.make_engine(shot_db.default_url(tmp_path / "s.sqlite"))
    shot_db.upgrade(engine)
    Session = shot_db.make_sessionmaker(engine)
    with Session() as s, s.begin():
        s.add(BatchRun(flow_run_id="run", flow_name="nightly", status=BatchStatus.running))
    threads, per_thread = 4, 25
    barrier = threading.Barrier(threads)

    errors: list[BaseException] = []

    def bump() -> None:
        barrier.wait()
        try:
            for _ in range(per_thread):
                with Session() as s, s.begin():
                    batch = s.scalars(select(BatchRun)).one()
                    batch.rendered = batch.rendered + 1
        except BaseException as exc:  # noqa: BLE001 - collected and asserted below
            errors.append(exc)

    workers = [threading.Thread(target=bump) for _ in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    assert errors == []
    with Session() as s:
        assert s.scalars(select(BatchRun.rendered)).one() == threads * per_thread
    engine.dispose()


def test_read_only_sessions_read_and_postgresql_refuses_their_writes(fresh_engine: Engine, backend: str) -> None:
    Session = shot_db.make_sessionmaker(fresh_engine)
    ReadOnly = shot_db.make_sessionmaker(fresh_engine, read_only=True)
    with Session() as s, s.begin():
        shot_db.begin_batch(session=s, flow_run_id="run-1", flow_name="nightly")
    with ReadOnly() as s, s.begin():
        assert s.scalars(select(BatchRun.flow_run_id)).all() == ["run-1"]
    if backend == "postgresql":
        with pytest.raises(DBAPIError, match="read-only transaction"), ReadOnly() as s, s.begin():
            shot_db.count_batch(session=s, flow_run_id="run-1", rendered=1)
