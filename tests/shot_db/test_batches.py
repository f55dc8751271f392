"""Batch runs: one row per flow run; counters bumped by many tasks at once lose no update."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from sqlalchemy import Engine
from sqlalchemy.orm import Session

import shot_db
from shot_db.models import BatchStatus
from shot_db.records import BatchShotRecord


def test_batch_life(session: Session, tmp_path: Path) -> None:
    with session.begin():
        batch = shot_db.begin_batch(
            session=session, flow_run_id="run-1", flow_name="nightly", shot_list_path=tmp_path / "shots.yaml"
        )
        assert batch.status is BatchStatus.running and batch.shot_list_path == str(tmp_path / "shots.yaml")
    with session.begin():
        shot_db.count_batch(session=session, flow_run_id="run-1", rendered=3, reused=2)
        shot_db.count_batch(session=session, flow_run_id="run-1", failed=1)
        done = shot_db.finish_batch(session=session, flow_run_id="run-1")
    assert (done.rendered, done.reused, done.failed, done.status) == (3, 2, 1, BatchStatus.finished)
    assert done.finished_at is not None and done.finished_at >= done.started_at
    retried = shot_db.begin_batch(session=session, flow_run_id="run-1", flow_name="nightly")
    assert retried.id == batch.id and retried.status is BatchStatus.running and retried.finished_at is None
    assert retried.rendered == 3  # a retried flow run keeps what it counted
    failed = shot_db.finish_batch(session=session, flow_run_id="run-1", status=BatchStatus.failed)
    assert failed.status is BatchStatus.failed


def test_batch_errors_name_the_field(session: Session) -> None:
    with pytest.raises(shot_db.ShotDBError, match="batch run-9: not in the shot DB; begin_batch first"):
        shot_db.count_batch(session=session, flow_run_id="run-9", rendered=1)
    shot_db.begin_batch(session=session, flow_run_id="run-9", flow_name="nightly")
    with pytest.raises(shot_db.ShotDBError, match="reused: -1 must be an integer >= 0"):
        shot_db.count_batch(session=session, flow_run_id="run-9", reused=-1)
    with pytest.raises(shot_db.ShotDBError, match="finishes as 'finished' or 'failed'"):
        shot_db.finish_batch(session=session, flow_run_id="run-9", status=BatchStatus.running)


def test_counting_from_many_threads_loses_no_update(fresh_engine: Engine) -> None:
    """Read-modify-write under concurrency: every increment from every thread is in the total."""
    Session = shot_db.make_sessionmaker(fresh_engine)
    with Session() as s, s.begin():
        shot_db.begin_batch(session=s, flow_run_id="run-1", flow_name="nightly")
    threads, per_thread = 4, 20
    barrier = threading.Barrier(threads)
    errors: list[BaseException] = []

    def count() -> None:
        barrier.wait()
        try:
            for i in range(per_thread):
                with Session() as s, s.begin():
                    shot_db.count_batch(session=s, flow_run_id="run-1", rendered=1, reused=i % 2)
        except BaseException as exc:  # noqa: BLE001 - collected and asserted below
            errors.append(exc)

    workers = [threading.Thread(target=count) for _ in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    assert errors == []
    with Session() as s, s.begin():
        batch = shot_db.finish_batch(session=s, flow_run_id="run-1")
    assert (batch.rendered, batch.reused) == (threads * per_thread, threads * per_thread // 2)


def test_a_batch_records_how_each_shot_ended_and_what_it_cost(session: Session) -> None:
    with session.begin():
        shot_db.begin_batch(session=session, flow_run_id="run-2", flow_name="render-batch",
                            name="shots.yaml 2026-11-27 02:00", trigger="nightly")  # fmt: skip
        shot_db.begin_batch(session=session, flow_run_id="run-3", flow_name="render-batch")
    shots = [
        BatchShotRecord("pilot/sq010/sh0010", "new-version", 3, 48, rendered=5, reused=1, worker_seconds=12.5,
                        gpu_seconds=12.5, video="/out/pilot/sq010/sh0010/v003/sh0010_v003.mp4"),
        BatchShotRecord("pilot/sq010/sh0020", "failed", rendered=0, failed=2, worker_seconds=3.0, gpu_seconds=3.0,
                        error="pair 0->4: worker died"),
    ]
    with session.begin():
        shot_db.finish_batch(session=session, flow_run_id="run-2", status=BatchStatus.failed, shots=shots,
                             worker_seconds=15.5, gpu_seconds=15.5)  # fmt: skip
    with session.begin():
        latest = shot_db.latest_batches(session=session, limit=2)
    by_id = {b.flow_run_id: b for b in latest}
    run = by_id["run-2"]
    assert (run.name, run.trigger, run.status, run.worker_seconds, run.gpu_seconds) == (
        "shots.yaml 2026-11-27 02:00", "nightly", "failed", 15.5, 15.5)
    assert [(s.shot, s.status, s.version, s.worker_seconds, s.error) for s in run.shots] == [
        ("pilot/sq010/sh0010", "new-version", 3, 12.5, None), ("pilot/sq010/sh0020", "failed", None, 3.0, "pair 0->4: worker died")]
    assert by_id["run-3"].shots == () and by_id["run-3"].worker_seconds == 0
    assert len(shot_db.latest_batches(session=session, limit=1)) == 1
    with pytest.raises(shot_db.ShotDBError, match=r"shots\[0\] worker_seconds: -1 must be a finite number >= 0"):
        shot_db.finish_batch(session=session, flow_run_id="run-3", shots=[BatchShotRecord("a/b/c", "failed", worker_seconds=-1)])
