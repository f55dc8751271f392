"""Opening the shot DB: renders migrate it, reads never do, and a database that did not answer is transient."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

import shot_db
from shot_db.models import Shot

from .conftest import PG_ADMIN_URL


def _revision(url: str) -> str | None:
    engine = shot_db.make_engine(url)
    try:
        return shot_db.current_revision(engine)
    finally:
        engine.dispose()


def test_reading_a_database_that_is_not_there_creates_nothing(tmp_path: Path) -> None:
    path = tmp_path / "never.sqlite"
    with pytest.raises(shot_db.ShotDBUsageError, match=f"shot DB {path}: no such file"):
        shot_db.ShotDB.open(shot_db.default_url(path))
    assert not path.exists()
    with shot_db.ShotDB.open(shot_db.default_url(path), migrate=True) as db:
        assert shot_db.current_revision(db.engine) == shot_db.head_revision()


def test_reading_an_empty_database_names_the_upgrade(fresh_url: str) -> None:
    if make_url(fresh_url).get_backend_name() == "sqlite":
        create_engine(fresh_url).connect().close()  # an empty SQLite file
    with pytest.raises(shot_db.ShotDBUsageError, match=r"has no toonfarm schema: run `toonfarm db upgrade`"):
        shot_db.ShotDB.open(fresh_url)
    assert _revision(fresh_url) is None


def test_a_database_behind_is_refused_by_reads_and_upgraded_by_renders(fresh_url: str) -> None:
    shot_db.upgrade(fresh_url, "0001")
    head = shot_db.head_revision()
    behind = rf"is at revision 0001, this toonfarm reads {head}: run `toonfarm db upgrade`"
    with pytest.raises(shot_db.ShotDBUsageError, match=behind):
        shot_db.ShotDB.open(fresh_url)
    assert _revision(fresh_url) == "0001"  # the read changed nothing
    with shot_db.ShotDB.open(fresh_url, migrate=True):
        pass
    with shot_db.ShotDB.open(fresh_url) as db, db.transaction() as s:
        assert shot_db.current_revision(db.engine) == head
        with pytest.raises(shot_db.ShotDBUsageError, match="shot sh0010: not in the shot DB"):
            shot_db.resolve_shot(session=s, ref="sh0010")


def test_a_database_from_a_newer_toonfarm_is_refused_both_ways(fresh_url: str) -> None:
    shot_db.upgrade(fresh_url)
    engine = shot_db.make_engine(fresh_url)
    with engine.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = '9999'"))
    engine.dispose()
    for migrate in (False, True):
        with pytest.raises(shot_db.ShotDBUsageError, match="at revision 9999, newer than this toonfarm knows"):
            shot_db.ShotDB.open(fresh_url, migrate=migrate)
    assert _revision(fresh_url) == "9999"


@pytest.mark.postgres
def test_a_database_that_does_not_answer_is_unavailable() -> None:
    nobody = make_url(PG_ADMIN_URL).set(port=1).render_as_string(hide_password=False)
    with pytest.raises(shot_db.ShotDBUnavailable, match="shot DB at .*:1/test: unavailable"):
        shot_db.ShotDB.open(nobody, migrate=True)


@pytest.mark.postgres
def test_a_connection_dropped_mid_transaction_is_unavailable(backend: str, fresh_url: str) -> None:
    if backend == "sqlite":
        pytest.skip("a SQLite file has no connection to drop")
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with shot_db.ShotDB.open(fresh_url, migrate=True) as db:
        with pytest.raises(shot_db.ShotDBUnavailable, match="unavailable"), db.transaction() as s:
            pid = s.execute(text("SELECT pg_backend_pid()")).scalar_one()
            with admin.connect() as conn:  # what a database restart or a network cut does to it
                conn.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
            s.execute(text("SELECT 1"))
        with db.transaction() as s:  # the pool replaces the dead connection: the next try works
            assert s.execute(text("SELECT 1")).scalar_one() == 1
    admin.dispose()


@pytest.mark.postgres
def test_run_tries_sql_work_again_when_the_connection_drops_midway(backend: str, fresh_url: str) -> None:
    if backend == "sqlite":
        pytest.skip("a SQLite file has no connection to drop")
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    tries: list[int] = []

    def work(s: Session) -> int:
        s.add(Shot(show="run", sequence="sq010", code=f"sh{len(tries):04d}", fps=24))
        s.flush()
        tries.append(s.execute(text("SELECT pg_backend_pid()")).scalar_one())
        if len(tries) == 1:  # the first try loses its connection after writing, as in a database restart
            with admin.connect() as conn:
                conn.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": tries[0]})
        return int(s.execute(text("SELECT count(*) FROM shot")).scalar_one())

    with shot_db.ShotDB.open(fresh_url, migrate=True, retry_s=10) as db:
        assert db.run(work) == 1  # the second try's row only: the first was rolled back with its connection
        assert len(tries) == 2 and tries[0] != tries[1]
        with db.transaction() as s:
            assert s.execute(text("SELECT code FROM shot")).scalars().all() == ["sh0001"]
        with pytest.raises(shot_db.ShotDBUnavailable):  # no time to retry: the drop is said at once
            tries.clear()
            shot_db.ShotDB(db.engine, retry_s=0).run(work)
    admin.dispose()
