"""Batch runs: one row per flow run, with counters several tasks bump at once without losing updates."""

from __future__ import annotations

import os
from collections.abc import Sequence

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session, selectinload

from shot_db import _checks as check
from shot_db._errors import ShotDBError
from shot_db.models import BatchRun, BatchShot, BatchStatus
from shot_db.models._base import utcnow
from shot_db.records import BatchInfo, BatchShotInfo, BatchShotRecord


def begin_batch(
    *,
    session: Session,
    flow_run_id: str,
    flow_name: str,
    shot_list_path: str | os.PathLike[str] | None = None,
    name: str | None = None,
    trigger: str | None = None,
    owner: str | None = None,
) -> BatchRun:
    """The flow run's batch row, created as running by `owner` (the process running it) with its first
    heartbeat; a retried flow run reopens its row, counts kept. `name` is the flow run's, `trigger` what
    started it (cli, nightly, keyframe-change)."""
    stmt = select(BatchRun).where(BatchRun.flow_run_id == check.short_text(flow_run_id, "flow_run_id", max_len=64))
    path = check.path(shot_list_path, "batch shot_list_path") if shot_list_path is not None else None
    batch = check.locked(session, stmt)
    if batch is None:
        row = BatchRun(
            flow_run_id=flow_run_id,
            flow_name=check.short_text(flow_name, "batch flow_name", max_len=128),
            shot_list_path=path,
            status=BatchStatus.running,
            name=check.short_text(name, "batch name", max_len=255) if name else None,
            trigger=check.short_text(trigger, "batch trigger", max_len=32) if trigger else None,
            owner=owner,
            heartbeat_at=func.now(),
        )
        batch = check.insert_or_get(session, row, stmt)
        if batch is row:
            return batch
    batch.status, batch.finished_at, batch.owner, batch.heartbeat_at = BatchStatus.running, None, owner, func.now()
    session.flush()
    return batch


def beat_batch(*, session: Session, flow_run_id: str, owner: str) -> bool:
    """A heartbeat: stamp the batch of `flow_run_id` with the database's clock, if it is still running and
    `owner`'s. False otherwise: not begun yet, finished, or settled by a run that found it silent."""
    beaten = session.scalars(
        update(BatchRun)
        .where(BatchRun.flow_run_id == flow_run_id, BatchRun.owner == owner, BatchRun.status == BatchStatus.running)
        .values(heartbeat_at=func.now())
        .returning(BatchRun.id)
        .execution_options(synchronize_session=False)
    )
    return beaten.first() is not None


def taken_for_dead(*, session: Session, flow_run_id: str, owner: str) -> bool:
    """True when another run settled `owner`'s batch as dead while `owner` still runs it: the row is still
    `owner`'s but no longer running (the owner's own `finish_batch` is its last write, so it never asks
    after that). What a run cut off from the shot DB for longer than the others' patience finds."""
    stmt = select(BatchRun.id).where(
        BatchRun.flow_run_id == flow_run_id, BatchRun.owner == owner, BatchRun.status != BatchStatus.running
    )
    return session.scalars(stmt).first() is not None


def count_batch(
    *, session: Session, flow_run_id: str, rendered: int = 0, reused: int = 0, failed: int = 0
) -> BatchRun:
    """Add to the batch's pair counts; safe when several tasks of one flow run count at once."""
    for field, value in (("rendered", rendered), ("reused", reused), ("failed", failed)):
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise ShotDBError(f"batch {flow_run_id} {field}: {value!r} must be an integer >= 0")
    batch = _batch(session, flow_run_id)
    batch.rendered += rendered
    batch.reused += reused
    batch.failed += failed
    session.flush()
    return batch


def finish_batch(
    *,
    session: Session,
    flow_run_id: str,
    status: BatchStatus = BatchStatus.finished,
    shots: Sequence[BatchShotRecord] = (),
    worker_seconds: float = 0.0,
    gpu_seconds: float = 0.0,
) -> BatchRun:
    """Close the batch as finished or failed, stamping its finish time, with how each of its `shots`
    ended and what its renders cost (added: a retried flow run adds its second run's)."""
    status = BatchStatus(status)
    if status is BatchStatus.running:
        raise ShotDBError(f"batch {flow_run_id} status: a batch finishes as 'finished' or 'failed', not 'running'")
    batch = _batch(session, flow_run_id)
    batch.status, batch.finished_at = status, utcnow()
    batch.worker_seconds += check.not_negative(worker_seconds, f"batch {flow_run_id} worker_seconds")
    batch.gpu_seconds += check.not_negative(gpu_seconds, f"batch {flow_run_id} gpu_seconds")
    ended = {s.shot: s for s in session.scalars(select(BatchShot).where(BatchShot.batch_id == batch.id))}
    for i, shot in enumerate(shots):
        label = f"batch {flow_run_id} shots[{i}]"
        row = ended.get(shot.shot) or BatchShot(batch_id=batch.id, shot=check.short_text(shot.shot, label, max_len=255))
        for name in ("status", "version", "frames", "rendered", "reused", "failed", "video", "error"):
            setattr(row, name, getattr(shot, name))
        row.position = i
        row.worker_seconds = check.not_negative(shot.worker_seconds, f"{label} worker_seconds")
        row.gpu_seconds = check.not_negative(shot.gpu_seconds, f"{label} gpu_seconds")
        session.add(row)
    session.flush()
    return batch


def latest_batches(*, session: Session, limit: int = 10) -> tuple[BatchInfo, ...]:
    """The `limit` most recently started batches, newest first, each with its shots."""
    rows = session.scalars(
        select(BatchRun).order_by(BatchRun.started_at.desc()).limit(limit).options(selectinload(BatchRun.shots))
    ).all()
    return tuple(
        BatchInfo(
            b.flow_run_id, b.flow_name, b.name, b.trigger, b.shot_list_path, b.status.value, b.started_at,
            b.finished_at, b.rendered, b.reused, b.failed, b.worker_seconds, b.gpu_seconds,
            tuple(BatchShotInfo(s.shot, s.status, s.version, s.frames, s.rendered, s.reused, s.failed,
                                s.worker_seconds, s.gpu_seconds, s.video, s.error) for s in b.shots),
        )
        for b in rows
    )  # fmt: skip


def _batch(session: Session, flow_run_id: str) -> BatchRun:
    batch = check.locked(session, select(BatchRun).where(BatchRun.flow_run_id == flow_run_id))
    if batch is None:
        raise ShotDBError(f"batch {flow_run_id}: not in the shot DB; begin_batch first")
    return batch
