"""Migrations: head on an empty database, head == create_all on both engines, and every revision
upgraded from the one before it with data in the database (and downgraded back to that data)."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, inspect

import shot_db
from shot_db import _migrate
from shot_db.models import Base
from shot_db.records import OutputFile

from .conftest import sha


def _revisions() -> list[str]:
    script = ScriptDirectory.from_config(_migrate.alembic_config())
    return [r.revision for r in reversed(list(script.walk_revisions()))]


def _options(options: dict[str, Any]) -> list[tuple[str, str]]:
    return sorted((k, str(v)) for k, v in options.items())  # e.g. a partial index's WHERE clause


def _schema(engine: Engine) -> dict[str, Any]:
    """Everything the database says about its tables, in a comparable form."""
    insp = inspect(engine)
    out: dict[str, Any] = {}
    for table in sorted(set(insp.get_table_names()) - {"alembic_version"}):
        out[table] = {
            "columns": sorted((c["name"], str(c["type"]), c["nullable"]) for c in insp.get_columns(table)),
            "pk": (insp.get_pk_constraint(table)["name"], insp.get_pk_constraint(table)["constrained_columns"]),
            "fks": sorted(
                (f["name"], f["constrained_columns"], f["referred_table"], f["referred_columns"])
                for f in insp.get_foreign_keys(table)
            ),
            "uniques": sorted((u["name"], u["column_names"]) for u in insp.get_unique_constraints(table)),
            "indexes": sorted(
                (i["name"], i["column_names"], bool(i["unique"]), _options(i.get("dialect_options", {})))
                for i in insp.get_indexes(table)
            ),
            "checks": sorted((c["name"], " ".join(c["sqltext"].split())) for c in insp.get_check_constraints(table)),
        }
    return out


def test_upgrade_head_on_an_empty_database(fresh_url: str) -> None:
    engine = shot_db.make_engine(fresh_url)
    assert shot_db.current_revision(engine) is None
    shot_db.upgrade(fresh_url)  # by URL, as a CLI would
    assert shot_db.current_revision(engine) == _revisions()[-1]
    assert set(inspect(engine).get_table_names()) == set(Base.metadata.tables) | {"alembic_version"}
    shot_db.upgrade(engine)  # a second upgrade is a no-op
    assert shot_db.current_revision(engine) == _revisions()[-1]
    engine.dispose()


def test_migrations_build_exactly_the_models_schema(new_database: Callable[[], str]) -> None:
    migrated, created = shot_db.make_engine(new_database()), shot_db.make_engine(new_database())
    shot_db.upgrade(migrated)
    Base.metadata.create_all(created)
    with migrated.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}), Base.metadata)
    assert diff == []
    assert _schema(migrated) == _schema(created)
    assert len(_schema(created)) == len(Base.metadata.tables)
    migrated.dispose()
    created.dispose()


def test_downgrade_to_base_and_back(fresh_engine: Engine) -> None:
    _migrate.downgrade(fresh_engine, "base")
    assert shot_db.current_revision(fresh_engine) is None
    assert set(inspect(fresh_engine).get_table_names()) <= {"alembic_version"}
    shot_db.upgrade(fresh_engine)
    assert shot_db.current_revision(fresh_engine) == _revisions()[-1]


def test_workers_upgrading_at_once_upgrade_once(fresh_url: str) -> None:
    errors: list[BaseException] = []
    barrier = threading.Barrier(3)

    def run() -> None:
        barrier.wait()
        try:
            shot_db.upgrade(fresh_url)
        except BaseException as exc:  # noqa: BLE001 - collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    engine = shot_db.make_engine(fresh_url)
    assert shot_db.current_revision(engine) == _revisions()[-1]
    engine.dispose()


# ------------------------------------------------------------------ each revision, upgraded with data in it
# SEED[r] fills a database that is at revision r; CHECK[r] verifies that data after upgrading to r.
# A new revision needs both (the registry test below fails otherwise).

_NOW = datetime(2026, 1, 5, 2, 0, tzinfo=UTC)
_IDS = {name: uuid.uuid5(uuid.NAMESPACE_URL, name) for name in ("shot", "render", "attempt", "version", "batch")}
_KEY_A, _KEY_B = sha("kf", "a"), sha("kf", "b")
_RENDER_KEY = sha("render", 1)
_FRAMES_0001 = [sha("out", i) for i in range(4)]
_MP4_0001 = sha("mp4", 1)


def _t(conn: Connection, name: str) -> sa.Table:
    return sa.Table(name, sa.MetaData(), autoload_with=conn)


def _column_type(value: object) -> sa.types.TypeEngine[Any] | None:
    # Seeds write through SQLAlchemy's portable types, as the code of that revision did.
    if isinstance(value, uuid.UUID):
        return sa.Uuid()
    if isinstance(value, dict | list):
        return sa.JSON()
    if isinstance(value, datetime):
        return sa.DateTime(timezone=True)
    return None


def _insert(conn: Connection, name: str, **row: Any) -> None:
    table = sa.table(name, *(sa.column(k, _column_type(v)) for k, v in row.items()))
    conn.execute(table.insert().values(**row))


_V1_FILES = {
    "png_dir": "/out/pilot/sq010/sh0010/v001/png", "mp4_path": "/out/pilot/sq010/sh0010/v001/sh0010_v001.mp4",
    "sidecar_path": "/out/pilot/sq010/sh0010/v001/provenance.json",
}  # fmt: skip


def _seed_catalog(conn: Connection) -> None:
    """The rows every revision so far has in the same form: a shot, its keyframes, a render, a batch."""
    _insert(conn, "shot", id=_IDS["shot"], show="pilot", sequence="sq010", code="sh0010", fps=24.0,
            created_at=_NOW, updated_at=_NOW)
    for h in (_KEY_A, _KEY_B):
        _insert(conn, "keyframe", pixel_hash=h, width=64, height=48, path=f"/out/store/keyframes/{h}.png",
                created_at=_NOW)
    _insert(conn, "render", id=_IDS["render"], render_key=_RENDER_KEY, shot_id=_IDS["shot"], frame_a=0, frame_b=3,
            keyframe_a_hash=_KEY_A, keyframe_b_hash=_KEY_B, inbetweens=2, times=[1 / 3, 2 / 3], backend="rife",
            weights_sha256=sha("w"), config_hash="cfg", code_version="toonfarm-model-1", params={"steps": 4},
            seed=7, sketch_hashes=[], status="finished", output_dir="/out/store/renders/x",
            frame_hashes=[sha("f", 1), sha("f", 2)], worker="actor-0", node="n", started_at=_NOW,
            finished_at=_NOW, seconds=1.5, error=None, meta={}, flow_run_id="run-1", created_at=_NOW)
    _insert(conn, "render_attempt", id=_IDS["attempt"], render_id=_IDS["render"], attempt=1, worker="actor-0",
            node="n", started_at=_NOW, finished_at=_NOW, status="ok", error=None, model_loads=1, flow_run_id="run-1")
    _insert(conn, "batch_run", id=_IDS["batch"], flow_run_id="run-1", flow_name="nightly", shot_list_path=None,
            started_at=_NOW, finished_at=None, rendered=1, reused=0, failed=0, status="running")


def _seed_links(conn: Connection, version: uuid.UUID) -> None:
    _insert(conn, "shot_version_render", version_id=version, position=0, render_id=_IDS["render"], frame_a=0,
            frame_b=3)
    _insert(conn, "shot_version_keyframe", version_id=version, frame=0, keyframe_hash=_KEY_A)
    _insert(conn, "shot_version_keyframe", version_id=version, frame=3, keyframe_hash=_KEY_B)


def _seed_0001(conn: Connection) -> None:
    _seed_catalog(conn)
    _insert(conn, "shot_version", id=_IDS["version"], shot_id=_IDS["shot"], number=1, assembly_key=sha("asm"),
            frame_count=4, fps=24.0, **_V1_FILES, output_hashes={"mp4_sha256": _MP4_0001, "frames": _FRAMES_0001},
            settings={"lut": None}, flow_run_id="run-1", created_at=_NOW)
    _seed_links(conn, _IDS["version"])


def _check_0002(conn: Connection) -> None:
    version = _t(conn, "shot_version")
    frames = _t(conn, "shot_version_frame")
    assert "output_hashes" not in version.c
    assert conn.execute(sa.select(version.c.mp4_sha256)).scalar_one() == _MP4_0001
    rows = conn.execute(
        sa.select(frames.c.number, frames.c.pixel_hash, frames.c.path, frames.c.render_id, frames.c.keyframe_hash)
        .order_by(frames.c.number)
    ).all()
    assert [tuple(r) for r in rows] == [(i + 1, h, None, None, None) for i, h in enumerate(_FRAMES_0001)]


_VERSION_0002 = uuid.uuid5(uuid.NAMESPACE_URL, "version 2")
_MP4_0002 = sha("mp4", 2)
_V2_FILES = {
    "png_dir": "/out/pilot/sq010/sh0010/v002/png", "mp4_path": "/out/pilot/sq010/sh0010/v002/sh0010_v002.mp4",
    "sidecar_path": "/out/pilot/sq010/sh0010/v002/provenance.json",
}  # fmt: skip


def _seed_0002(conn: Connection) -> None:
    """Version 1 as 0002 carried it over from 0001 (frames without paths), and version 2 made at 0002."""
    _seed_catalog(conn)
    for version, number, files, mp4, frames in ((_IDS["version"], 1, _V1_FILES, _MP4_0001, 4),
                                                (_VERSION_0002, 2, _V2_FILES, _MP4_0002, 2)):  # fmt: skip
        _insert(conn, "shot_version", id=version, shot_id=_IDS["shot"], number=number, assembly_key=sha("asm", number),
                frame_count=frames, fps=24.0, **files, mp4_sha256=mp4, settings={"lut": None},
                flow_run_id=f"run-{number}", created_at=_NOW)
        _seed_links(conn, version)
    for i, h in enumerate(_FRAMES_0001, 1):
        _insert(conn, "shot_version_frame", version_id=_IDS["version"], number=i, pixel_hash=h)
    png = _V2_FILES["png_dir"]
    _insert(conn, "shot_version_frame", version_id=_VERSION_0002, number=1, pixel_hash=_KEY_A,
            path=f"{png}/sh0010.0001.png", keyframe_hash=_KEY_A)
    _insert(conn, "shot_version_frame", version_id=_VERSION_0002, number=2, pixel_hash=sha("f", 1),
            path=f"{png}/sh0010.0002.png", render_id=_IDS["render"], inbetween=1)


def _check_0003(conn: Connection) -> None:
    version = _t(conn, "shot_version")
    outputs = _t(conn, "shot_version_output")
    assert not {"png_dir", "mp4_path", "mp4_sha256"} & set(version.c.keys())
    rows = conn.execute(
        sa.select(outputs.c.version_id, outputs.c.kind, outputs.c.position, outputs.c.path, outputs.c.sha256,
                  outputs.c.frame_count, outputs.c.details)
        .order_by(outputs.c.path)
    ).all()  # fmt: skip
    assert [(uuid.UUID(str(r[0])), *r[1:]) for r in rows] == [  # SQLite reflects the id as CHAR(32)
        (_IDS["version"], "png", 0, _V1_FILES["png_dir"], None, 4, {}),
        (_IDS["version"], "h264", 1, _V1_FILES["mp4_path"], _MP4_0001, 4, {}),
        (_VERSION_0002, "png", 0, _V2_FILES["png_dir"], None, 2, {}),
        (_VERSION_0002, "h264", 1, _V2_FILES["mp4_path"], _MP4_0002, 2, {}),
    ]


_RETRY_KEY = sha("render", 2)
_RETRY = uuid.uuid5(uuid.NAMESPACE_URL, "retry")


def _seed_0003(conn: Connection) -> None:
    """Version 1 with its output rows, and a second render of its pair: a retry with another seed."""
    _seed_catalog(conn)
    _insert(conn, "shot_version", id=_IDS["version"], shot_id=_IDS["shot"], number=1, assembly_key=sha("asm"),
            frame_count=4, fps=24.0, sidecar_path=_V1_FILES["sidecar_path"], settings={"lut": None},
            flow_run_id="run-1", created_at=_NOW)
    _seed_links(conn, _IDS["version"])
    _insert(conn, "shot_version_output", version_id=_IDS["version"], kind="h264", position=0,
            path=_V1_FILES["mp4_path"], sha256=_MP4_0001, frame_count=4, details={})
    _insert(conn, "render", id=_RETRY, render_key=_RETRY_KEY, shot_id=_IDS["shot"], frame_a=0, frame_b=3,
            keyframe_a_hash=_KEY_A, keyframe_b_hash=_KEY_B, inbetweens=2, times=[1 / 3, 2 / 3], backend="rife",
            weights_sha256=sha("w"), config_hash="cfg", code_version="toonfarm-model-1", params={"steps": 4},
            seed=123, sketch_hashes=[], status="finished", output_dir="/out/store/renders/y",
            frame_hashes=[sha("f", 3), sha("f", 4)], worker="actor-1", node="n", started_at=_NOW,
            finished_at=_NOW, seconds=1.5, error=None, meta={}, flow_run_id="run-2", created_at=_NOW)


def _check_0004(conn: Connection) -> None:
    """The new tables start empty, take a decision on the renders already there, and keep it consistent."""
    decisions, tries = _t(conn, "qa_decision"), _t(conn, "qa_try")
    assert conn.execute(sa.select(sa.func.count()).select_from(decisions)).scalar_one() == 0
    decision = uuid.uuid5(uuid.NAMESPACE_URL, "decision")
    _insert(conn, "qa_decision", id=decision, render_id=_IDS["render"], accepted_render_id=_RETRY,
            policy_hash=sha("policy"), policy={"on_fail": "retry", "retries": 2}, outcome="retried",
            reason="frame 0001 (t=0.333): ghost 0.31 > 0.1", shot_id=_IDS["shot"], flow_run_id="run-2",
            created_at=_NOW)
    for number, render, severity in ((1, _IDS["render"], 3.1), (2, _RETRY, 0.2)):
        _insert(conn, "qa_try", decision_id=decision, number=number, render_id=render, flags=[], severity=severity)
    rows = conn.execute(sa.select(tries.c.number, tries.c.render_id).order_by(tries.c.number)).all()
    assert [(n, uuid.UUID(str(r))) for n, r in rows] == [(1, _IDS["render"]), (2, _RETRY)]
    with pytest.raises(sa.exc.IntegrityError), conn.begin_nested():  # a pair is decided once per policy
        _insert(conn, "qa_decision", id=uuid.uuid4(), render_id=_IDS["render"], accepted_render_id=_IDS["render"],
                policy_hash=sha("policy"), policy={}, outcome="flagged", reason="-", shot_id=_IDS["shot"],
                created_at=_NOW)
    with pytest.raises(sa.exc.IntegrityError), conn.begin_nested():
        _insert(conn, "qa_decision", id=uuid.uuid4(), render_id=_IDS["render"], accepted_render_id=_IDS["render"],
                policy_hash=sha("other"), policy={}, outcome="melted", reason="-", shot_id=_IDS["shot"],
                created_at=_NOW)
    conn.execute(tries.delete())
    conn.execute(decisions.delete())


def _seed_0004(conn: Connection) -> None:
    """Version 1 with its outputs, a finished batch: what every 0004 database holds."""
    _seed_0003(conn)
    batches = _t(conn, "batch_run")
    conn.execute(batches.update().values(status="finished", finished_at=_NOW))


def _check_0005(conn: Connection) -> None:
    """Old rows read as 'not recorded' (NULL host, GPUs and origin; no cost); new rows take them."""
    render, batch, keyframes = _t(conn, "render"), _t(conn, "batch_run"), _t(conn, "shot_version_keyframe")
    assert conn.execute(sa.select(render.c.host, render.c.gpus).where(render.c.id == _IDS["render"])).one() == (None, None)
    assert conn.execute(sa.select(batch.c.name, batch.c.worker_seconds, batch.c.gpu_seconds)).one() == (None, 0, 0)
    assert {o for (o,) in conn.execute(sa.select(keyframes.c.origin))} == {None}
    _insert(conn, "batch_shot", id=uuid.uuid4(), batch_id=_IDS["batch"], position=0, shot="pilot/sq010/sh0010",
            status="failed", version=None, frames=0, rendered=0, reused=0, failed=1, worker_seconds=2.5,
            gpu_seconds=0.0, error="pair 0->3: worker died")
    with pytest.raises(sa.exc.IntegrityError), conn.begin_nested():  # a shot ends once per batch
        _insert(conn, "batch_shot", id=uuid.uuid4(), batch_id=_IDS["batch"], position=1, shot="pilot/sq010/sh0010",
                status="unchanged", frames=4, rendered=0, reused=1, failed=0, worker_seconds=0.0, gpu_seconds=0.0)
    conn.execute(_t(conn, "batch_shot").delete())


def _check_0006(conn: Connection) -> None:
    """Versions made before are published and owned by nobody, batches too; a version can be placing, and
    nothing else."""
    versions, batches = _t(conn, "shot_version"), _t(conn, "batch_run")
    assert conn.execute(sa.select(versions.c.status, versions.c.owner)).all() == [("published", None)]
    assert conn.execute(sa.select(batches.c.owner)).all() == [(None,)]
    for status, ok in (("placing", True), ("melted", False)):
        with conn.begin_nested() as nested:
            try:
                _insert(conn, "shot_version", id=uuid.uuid4(), shot_id=_IDS["shot"], number=2, assembly_key=sha("2"),
                        frame_count=4, fps=24.0, sidecar_path="/out/v002/provenance.json", settings={},
                        flow_run_id="run-3", created_at=_NOW, status=status, owner="host/boot/12/34")
            except sa.exc.IntegrityError:
                assert not ok
            else:
                assert ok
            nested.rollback()


def _seed_0006(conn: Connection) -> None:
    """A batch still running, owned by a process on another host: what a run killed before heartbeats left."""
    _seed_0003(conn)
    conn.execute(_t(conn, "batch_run").update().values(owner="render-node-7/b00tb00tb00t/101/4242"))


def _check_0007(conn: Connection) -> None:
    """A batch from before heartbeats never beat (so it is never judged silent); a batch takes a beat of the
    database's clock."""
    batches = _t(conn, "batch_run")
    assert conn.execute(sa.select(batches.c.status, batches.c.heartbeat_at)).all() == [("running", None)]
    with conn.begin_nested() as nested:
        conn.execute(batches.update().values(heartbeat_at=sa.func.now()))
        assert conn.execute(sa.select(batches.c.heartbeat_at)).scalar_one() is not None
        nested.rollback()


SEED: dict[str, Callable[[Connection], None]] = {
    "0001": _seed_0001, "0002": _seed_0002, "0003": _seed_0003, "0004": _seed_0004,
    "0005": _seed_0004,  # 0005 adds columns that read as not recorded, and an empty table
    "0006": _seed_0006,
}  # fmt: skip
CHECK: dict[str, Callable[[Connection], None]] = {
    "0002": _check_0002, "0003": _check_0003, "0004": _check_0004, "0005": _check_0005, "0006": _check_0006,
    "0007": _check_0007,
}  # fmt: skip


def test_every_revision_has_a_data_test() -> None:
    revisions = _revisions()
    assert set(SEED) == set(revisions[:-1])
    assert set(CHECK) == set(revisions[1:])


def _dump(conn: Connection) -> dict[str, list[str]]:
    meta = sa.MetaData()
    meta.reflect(conn)
    return {
        name: sorted(repr(sorted(row._asdict().items())) for row in conn.execute(sa.select(table)))
        for name, table in meta.tables.items()
        if name != "alembic_version"
    }


@pytest.mark.parametrize("step", range(len(_revisions()) - 1), ids=lambda i: "->".join(_revisions()[i : i + 2]))
def test_revision_upgrades_a_database_with_data(step: int, fresh_url: str) -> None:
    before, after = _revisions()[step : step + 2]
    engine = shot_db.make_engine(fresh_url)
    shot_db.upgrade(engine, before)
    with engine.begin() as conn:
        SEED[before](conn)
    with engine.connect() as conn:
        seeded = _dump(conn)
    shot_db.upgrade(engine, after)
    assert shot_db.current_revision(engine) == after
    with engine.connect() as conn:
        CHECK[after](conn)
    _migrate.downgrade(engine, before)
    with engine.connect() as conn:
        assert _dump(conn) == seeded
    engine.dispose()


def test_data_from_0001_reads_through_the_api_at_head(fresh_url: str) -> None:
    engine = shot_db.make_engine(fresh_url)
    shot_db.upgrade(engine, "0001")
    with engine.begin() as conn:
        _seed_0001(conn)
    shot_db.upgrade(engine)
    Session = shot_db.make_sessionmaker(engine)
    with Session() as session, session.begin():
        (found,) = shot_db.lineage(session=session, target=_FRAMES_0001[2])
        assert found.frame is not None and found.frame.number == 3 and found.frame.path is None
        assert found.version.number == 1
        assert found.version.output("h264") == OutputFile("h264", "/out/pilot/sq010/sh0010/v001/sh0010_v001.mp4",
                                                          _MP4_0001, 4, {})  # fmt: skip
        assert found.version.output("png") == OutputFile("png", "/out/pilot/sq010/sh0010/v001/png", None, 4, {})
        (whole,) = shot_db.lineage(session=session, target=_MP4_0001)
        assert whole.frame is None and whole.output == found.version.output("h264")
        assert [r.render_key for r in found.version.renders] == [_RENDER_KEY]
        history = shot_db.shot_history(session=session, show="pilot", sequence="sq010", code="sh0010")
        assert [v.number for v in history] == [1]
    engine.dispose()


def test_a_version_without_a_png_and_an_h264_stays_at_0003(fresh_url: str) -> None:
    """0002 has a PNG folder and a hashed MP4 per version: going back refuses, naming the version, and
    leaves the shot DB as it was (the downgrade is one transaction)."""
    engine = shot_db.make_engine(fresh_url)
    shot_db.upgrade(engine, "0002")
    with engine.begin() as conn:
        _seed_0002(conn)
    shot_db.upgrade(engine, "0003")
    with engine.begin() as conn:
        outputs = _t(conn, "shot_version_output")
        conn.execute(outputs.update().where(outputs.c.kind == "h264", outputs.c.path == _V2_FILES["mp4_path"])
                     .values(kind="prores4444", path=_V2_FILES["mp4_path"].replace(".mp4", ".mov")))  # fmt: skip
    with engine.connect() as conn:
        before = _dump(conn)
    with pytest.raises(ValueError, match=rf"^shot_version {_VERSION_0002}: .* cannot go back to 0002$"):
        _migrate.downgrade(engine, "0002")
    assert shot_db.current_revision(engine) == "0003"
    with engine.connect() as conn:
        assert _dump(conn) == before
    engine.dispose()
