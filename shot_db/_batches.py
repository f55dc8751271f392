"""Batch runs: one row per flow run, with counters several tasks bump at once without losing updates."""

from __future__ import annotations

import os

from sqlalchemy import select
from sqlalchemy.orm import Session

from shot_db import _checks as check
from shot_db._errors import ShotDBError
from shot_db.models import BatchRun, BatchStatus
from shot_db.models._base import utcnow


def begin_batch(
    *,
    session: Session,
    flow_run_id: str,
    flow_name: str,
    shot_list_path: str | os.PathLike[str] | None = None,
    owner: str | None = None,
) -> BatchRun:
    """The flow run's batch row, created as running by `owner` (the process running it); a retried flow
    run reopens its row, counts kept."""
    stmt = select(BatchRun).where(BatchRun.flow_run_id == check.short_text(flow_run_id, "flow_run_id", max_len=64))
    path = check.path(shot_list_path, "batch shot_list_path") if shot_list_path is not None else None
    batch = check.locked(session, stmt)
    if batch is None:
        row = BatchRun(
            flow_run_id=flow_run_id,
            flow_name=check.short_text(flow_name, "batch flow_name", max_len=128),
            shot_list_path=path,
            status=BatchStatus.running,
            owner=owner,
        )
        batch = check.insert_or_get(session, row, stmt)
        if batch is row:
            return batch
    batch.status, batch.finished_at, batch.owner = BatchStatus.running, None, owner
    session.flush()
    return batch


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


def finish_batch(*, session: Session, flow_run_id: str, status: BatchStatus = BatchStatus.finished) -> BatchRun:
    """Close the batch as finished or failed, stamping its finish time."""
    status = BatchStatus(status)
    if status is BatchStatus.running:
        raise ShotDBError(f"batch {flow_run_id} status: a batch finishes as 'finished' or 'failed', not 'running'")
    batch = _batch(session, flow_run_id)
    batch.status, batch.finished_at = status, utcnow()
    session.flush()
    return batch


def _batch(session: Session, flow_run_id: str) -> BatchRun:
    batch = check.locked(session, select(BatchRun).where(BatchRun.flow_run_id == flow_run_id))
    if batch is None:
        raise ShotDBError(f"batch {flow_run_id}: not in the shot DB; begin_batch first")
    return batch
