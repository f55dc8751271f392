"""A running batch's heartbeat: its row is stamped with the database's clock while it runs and no longer
once it ends; a beat that meets a database that dropped every connection and refuses new ones is missed,
said, and tried again, and the run goes on."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

import shot_db
from shot_db import ShotDB
from tasks import record
from tasks.heartbeat import beating
from tasks.owner import this_process

from .conftest import PG_ADMIN_URL, silence


def _silent_s(db: ShotDB) -> float:
    """How long this process's batches have been silent, by the database's clock."""
    return record.run(db, lambda s: shot_db.beat_ages(session=s))[this_process().token]


def _until(done: Callable[[], bool], what: str, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not done():
        assert time.monotonic() < deadline, f"never {what}"
        time.sleep(0.02)


def test_a_running_batch_beats_until_it_ends(fresh_url: str) -> None:
    with record.open_db(fresh_url, migrate=True) as db:
        record.begin_batch(db, "run-1", "render-batch", None)
        assert _silent_s(db) < 60  # begun with its first beat
        record.run(db, lambda s: silence(s, "run-1", 3600))
        with beating(db, "run-1", every_s=0.05) as thread:
            _until(lambda: _silent_s(db) < 60, "beat")
        assert not thread.is_alive()
        record.run(db, lambda s: silence(s, "run-1", 3600))
        time.sleep(0.2)  # four beats' worth
        assert _silent_s(db) >= 3600  # the batch ended: nothing beats for it


def test_a_batch_settled_by_another_run_stops_beating(fresh_url: str, caplog: pytest.LogCaptureFixture) -> None:
    """A run cut off from the shot DB past dead_after_s is settled by others; back, it says so once."""
    with record.open_db(fresh_url, migrate=True) as db:
        record.begin_batch(db, "run-1", "render-batch", None)
        with caplog.at_level(logging.WARNING, "toonfarm.heartbeat"), beating(db, "run-1", every_s=0.05) as thread:
            record.run(db, lambda s: silence(s, "run-1", 3600))
            _until(lambda: _silent_s(db) < 60, "beat")
            record.run(db, lambda s: shot_db.settle_dead_runs(session=s, is_dead=lambda _: True, in_place=lambda _: False))
            _until(lambda: not thread.is_alive(), "stopped beating")
        assert [r.getMessage() for r in caplog.records] == [
            "batch run-1: no longer running as this process's; another run settled it after it fell silent"
        ]


@pytest.mark.postgres
def test_a_beat_that_meets_a_dropped_database_does_not_stop_the_run(
    backend: str, fresh_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    if backend == "sqlite":
        pytest.skip("a SQLite file has no connection to drop")
    url = make_url(fresh_url).update_query_dict({"application_name": "beating"})  # its connections, no others
    name = url.database
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")

    def refuse(refused: bool) -> None:
        with admin.connect() as conn:
            conn.execute(text(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS {str(not refused).lower()}'))
            if refused:  # what a restart does to the connections it had
                conn.execute(text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'beating'"))

    def missed() -> list[logging.LogRecord]:
        return [r for r in caplog.records if "heartbeat missed" in r.getMessage()]

    with record.open_db(url.render_as_string(hide_password=False), migrate=True, retry_s=0) as db:
        record.begin_batch(db, "run-1", "render-batch", None)
        with caplog.at_level(logging.WARNING, "toonfarm.heartbeat"), beating(db, "run-1", every_s=0.05) as thread:
            _until(lambda: _silent_s(db) < 0.5, "beat")
            refuse(True)
            try:
                _until(lambda: len(missed()) >= 3, "missed a beat")
                assert thread.is_alive()  # still trying
            finally:
                refuse(False)
            record.run(db, lambda s: silence(s, "run-1", 3600))
            _until(lambda: _silent_s(db) < 60, "beat again")  # the database is back: so are the beats
        assert not thread.is_alive()
    admin.dispose()
    assert "unavailable" in missed()[0].getMessage(), missed()[0].getMessage()
