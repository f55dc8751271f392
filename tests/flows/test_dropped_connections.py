"""A PostgreSQL connection dropped in the middle of a batch's transactions (planning's claims, a publish's
reservation and its mark): each is run whole again and the batch ends as if nothing happened.

The drops are real: the first time the driver sends a chosen statement, its server process is terminated
(pg_terminate_backend) from another connection, as a database restart or a failover does to it.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, create_engine, event, func, select, text
from sqlalchemy.engine import make_url

from shot_db import ShotDB
from shot_db.models import Render, RenderStatus, ShotVersion, VersionStatus
from tooncrafter_model.store import version_numbers

from .conftest import make_shots, settings_for

pytestmark = [pytest.mark.postgres, pytest.mark.usefixtures("prefect_harness", "ray_module")]

ADMIN_URL = "postgresql+psycopg://root@127.0.0.1:5432/test"
# Each statement's first execution loses its connection: a shot's row in a savepoint of planning's claims,
# the claims themselves, a version's reservation, and the mark that publishes it.
DROP_AT = ("INSERT INTO shot ", "INSERT INTO render ", "INSERT INTO shot_version ", "UPDATE shot_version SET status")


@pytest.fixture
def database() -> Iterator[str]:
    name = f"toonfarm_drop_{uuid.uuid4().hex[:12]}"
    admin = create_engine(ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(ADMIN_URL).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture
def dropper(database: str) -> Iterator[list[str]]:
    """Terminates a connection of `database` the first time it sends each statement of DROP_AT; yields
    the statements it dropped."""
    admin = create_engine(ADMIN_URL, isolation_level="AUTOCOMMIT")
    dropped: list[str] = []

    def drop(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if conn.engine.url.database != make_url(database).database:
            return
        for start in DROP_AT:
            if statement.startswith(start) and start not in dropped:
                dropped.append(start)
                pid = conn.connection.dbapi_connection.info.backend_pid
                with admin.connect() as a:  # waits until the server process is gone
                    assert a.execute(text("SELECT pg_terminate_backend(:pid, 10000)"), {"pid": pid}).scalar_one()

    event.listen(Engine, "before_cursor_execute", drop)
    try:
        yield dropped
    finally:
        event.remove(Engine, "before_cursor_execute", drop)
        admin.dispose()


def test_a_connection_dropped_in_claims_or_publish_is_tried_again(tmp_path: Path, database: str, dropper: list[str]) -> None:
    from flows.render_batch import render_batch

    shots = make_shots(tmp_path / "in", {code: {"timing": [2] * 4} for code in ("sh010", "sh020")}, backend="crossfade")
    settings = settings_for(tmp_path, db=database, db_retry_s=30)
    batch = render_batch(str(shots.path), settings)

    assert sorted(dropper) == sorted(DROP_AT)  # every drop happened, inside the batch
    assert batch.ok, batch.errors
    assert batch.summary == "rendered 6 pairs, reused 0, failed 0"
    assert [o.version for o in batch.outcomes] == [1, 1]
    with ShotDB.open(database) as db, db.transaction() as s:
        versions = s.execute(select(ShotVersion.number, ShotVersion.status)).all()
        renders = dict(s.execute(select(Render.status, func.count()).group_by(Render.status)).all())
    assert sorted(versions) == [(1, VersionStatus.published)] * 2  # one version each, none left placing
    assert renders == {RenderStatus.finished: 6}
    for code in ("sh010", "sh020"):
        assert version_numbers(settings.output_root / "test" / "sq010" / code) == [1]
