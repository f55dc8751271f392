"""A render's life: claimed (running), tried one or more times, then finished or failed.

A pair re-queued after failing is claimed again and keeps its row; every try stays as an attempt, and
the database holds at most one successful attempt per render (a partial unique index).
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from shot_db import _checks as check
from shot_db._errors import ShotDBError
from shot_db.models import AttemptStatus, Keyframe, Render, RenderAttempt, RenderStatus, Shot
from shot_db.models._base import utcnow
from shot_db.records import RenderSpec


def find_finished_render(*, session: Session, render_key: str) -> Render | None:
    """The finished render with this key (its frames can be reused), or None."""
    return session.scalars(
        select(Render).where(Render.render_key == render_key, Render.status == RenderStatus.finished)
    ).one_or_none()


def claim_render(
    *,
    session: Session,
    spec: RenderSpec,
    shot: Shot,
    frame_a: int,
    frame_b: int,
    flow_run_id: str | None = None,
) -> Render:
    """The render row for `spec.render_key`, created or re-claimed as running.

    A finished render is returned unchanged (reuse its frames). A running or failed one moves to
    running again for this flow run. A key recorded with different inputs raises ShotDBError.
    """
    values = spec_values(spec)
    if not (isinstance(frame_a, int) and isinstance(frame_b, int) and 0 <= frame_a < frame_b):
        raise ShotDBError(
            f"render {spec.render_key[:12]} frames: need 0 <= frame_a < frame_b, got {frame_a}, {frame_b}"
        )
    for field in ("keyframe_a_hash", "keyframe_b_hash"):
        if session.get(Keyframe, values[field]) is None:
            raise ShotDBError(f"render {spec.render_key[:12]} {field}: keyframe {values[field][:12]} not recorded yet")
    stmt = select(Render).where(Render.render_key == spec.render_key)
    render = check.locked(session, stmt)
    if render is None:
        row = Render(
            **values,
            shot_id=shot.id,
            frame_a=frame_a,
            frame_b=frame_b,
            status=RenderStatus.running,
            meta={},
            flow_run_id=flow_run_id,
        )
        render = check.insert_or_get(session, row, stmt)
        if render is row:
            return render
    reclaim(render, values, flow_run_id)
    session.flush()
    return render


def reclaim(render: Render, values: Mapping[str, Any], flow_run_id: str | None) -> None:
    """An existing row claimed again: its inputs must be the same; unless finished it runs again."""
    for field, value in values.items():
        if getattr(render, field) != value:
            raise ShotDBError(
                f"render {render.render_key[:12]} {field}: {value!r} given, {getattr(render, field)!r} recorded "
                "under the same render key"
            )
    if render.status is not RenderStatus.finished:
        render.status = RenderStatus.running
        render.error = None
        render.finished_at = None
        render.flow_run_id = flow_run_id


def record_attempt(
    *,
    session: Session,
    render_key: str,
    worker: str,
    node: str,
    started_at: datetime,
    finished_at: datetime,
    error: str | None = None,
    model_loads: int = 0,
    flow_run_id: str | None = None,
) -> RenderAttempt:
    """Append one try of a running render (ok when `error` is None), numbered 1, 2, 3... per render."""
    render = _running(session, render_key)
    check.aware(started_at, f"render {render_key[:12]} attempt started_at")
    check.aware(finished_at, f"render {render_key[:12]} attempt finished_at")
    if finished_at < started_at:
        raise ShotDBError(f"render {render_key[:12]} attempt finished_at: {finished_at} is before started_at")
    if not isinstance(model_loads, int) or isinstance(model_loads, bool) or model_loads < 0:
        raise ShotDBError(f"render {render_key[:12]} attempt model_loads: {model_loads!r} must be an integer >= 0")
    if error is None and _ok_attempt(session, render) is not None:
        raise ShotDBError(f"render {render_key[:12]}: already has a successful attempt")
    last = session.scalar(select(func.max(RenderAttempt.attempt)).where(RenderAttempt.render_id == render.id))
    attempt = RenderAttempt(
        render_id=render.id,
        attempt=(last or 0) + 1,
        worker=check.short_text(worker, "attempt worker", max_len=128),
        node=check.short_text(node, "attempt node", max_len=128),
        started_at=started_at,
        finished_at=finished_at,
        status=AttemptStatus.ok if error is None else AttemptStatus.failed,
        error=error,
        model_loads=model_loads,
        flow_run_id=flow_run_id,
    )
    session.add(attempt)
    session.flush()
    return attempt


def finish_render(
    *,
    session: Session,
    render_key: str,
    output_dir: str | os.PathLike[str],
    frame_hashes: Sequence[str],
    meta: Mapping[str, Any] | None = None,
) -> Render:
    """Mark a running render finished: its frames, and worker, node and times of its one ok attempt."""
    render = _running(session, render_key)
    ok = _ok_attempt(session, render)
    if ok is None:
        raise ShotDBError(f"render {render_key[:12]}: no successful attempt recorded; record_attempt first")
    if len(frame_hashes) != render.inbetweens:
        raise ShotDBError(
            f"render {render_key[:12]} frame_hashes: {len(frame_hashes)} given for {render.inbetweens} in-betweens"
        )
    render.frame_hashes = [
        check.sha256(h, f"render {render_key[:12]} frame_hashes[{i}]") for i, h in enumerate(frame_hashes)
    ]
    render.output_dir = check.path(output_dir, f"render {render_key[:12]} output_dir")
    render.meta = check.as_json(dict(meta or {}), f"render {render_key[:12]} meta")
    render.status = RenderStatus.finished
    render.worker, render.node = ok.worker, ok.node
    render.started_at, render.finished_at = ok.started_at, ok.finished_at
    render.seconds = (ok.finished_at - ok.started_at).total_seconds()
    render.error = None
    session.flush()
    return render


def fail_render(*, session: Session, render_key: str, error: str) -> Render:
    """Mark a running render failed (it keeps its row and attempts; claiming it again re-queues it)."""
    render = _running(session, render_key)
    if _ok_attempt(session, render) is not None:
        raise ShotDBError(f"render {render_key[:12]}: has a successful attempt; finish it instead")
    last = session.scalars(
        select(RenderAttempt).where(RenderAttempt.render_id == render.id).order_by(RenderAttempt.attempt.desc())
    ).first()
    render.status = RenderStatus.failed
    render.error = check.short_text(error, f"render {render_key[:12]} error", max_len=100_000)
    render.finished_at = utcnow()
    if last is not None:
        render.worker, render.node = last.worker, last.node
    session.flush()
    return render


def spec_values(spec: RenderSpec) -> dict[str, Any]:
    key = check.sha256(spec.render_key, "render_key")
    label = f"render {key[:12]}"
    times = [float(t) for t in spec.times]
    if not times or not all(math.isfinite(t) and 0 < t < 1 for t in times):
        raise ShotDBError(f"{label} times: {spec.times!r} must be one or more numbers in (0, 1)")
    if not isinstance(spec.seed, int) or isinstance(spec.seed, bool) or not -(2**63) <= spec.seed < 2**63:
        raise ShotDBError(f"{label} seed: {spec.seed!r} must be a 64-bit integer")
    return {
        "render_key": key,
        "keyframe_a_hash": check.sha256(spec.keyframe_a, f"{label} keyframe_a"),
        "keyframe_b_hash": check.sha256(spec.keyframe_b, f"{label} keyframe_b"),
        "inbetweens": len(times),
        "times": times,
        "backend": check.short_text(spec.backend, f"{label} backend", max_len=64),
        "weights_sha256": _short(spec.weights_sha256, f"{label} weights_sha256"),
        "config_hash": _short(spec.config_hash, f"{label} config_hash"),
        "code_version": check.short_text(spec.code_version, f"{label} code_version", max_len=64),
        "params": check.as_json(dict(spec.params), f"{label} params"),
        "seed": spec.seed,
        "sketch_hashes": [
            [float(t), check.sha256(h, f"{label} sketch_hashes[{i}]")] for i, (t, h) in enumerate(spec.sketch_hashes)
        ],
    }


def _short(value: str, field: str) -> str:
    # May be empty: a backend without weights (crossfade) has no weights hash.
    if not isinstance(value, str) or len(value) > 64:
        raise ShotDBError(f"{field}: {value!r} must be a string of at most 64 characters")
    return value


def _running(session: Session, render_key: str) -> Render:
    render = check.locked(session, select(Render).where(Render.render_key == render_key))
    if render is None:
        raise ShotDBError(f"render {render_key[:12]}: not in the shot DB; claim_render first")
    if render.status is not RenderStatus.running:
        raise ShotDBError(f"render {render_key[:12]}: is {render.status.value}, not running")
    return render


def _ok_attempt(session: Session, render: Render) -> RenderAttempt | None:
    return session.scalars(
        select(RenderAttempt).where(RenderAttempt.render_id == render.id, RenderAttempt.status == AttemptStatus.ok)
    ).one_or_none()
