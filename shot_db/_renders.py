"""A render's life, the one state machine: claimed (running), then settled as finished or failed with
every try it took; a failed render claimed again runs again, a finished one is reused.

A pair re-queued after failing keeps its row; every try stays as an attempt, and the database holds at
most one successful attempt per render (a partial unique index). The batch functions in _bulk.py make
the same transitions for many renders in a few statements.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from shot_db import _checks as check
from shot_db._errors import ShotDBError
from shot_db.models import AttemptStatus, Keyframe, Render, RenderAttempt, RenderStatus, Shot
from shot_db.models._base import utcnow
from shot_db.records import RenderOutcome, RenderSpec


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


def settle(
    session: Session, render: Render, o: RenderOutcome, last_attempt: int, has_ok: bool, flow_run_id: str | None
) -> bool:
    """The one transition out of "running": append the outcome's attempts (numbered after `last_attempt`),
    then mark the render finished (its frames, and who made them) or failed. A render another batch
    finished first is left alone (False). A failed outcome may have no attempt: no worker was left to try.
    """
    label = f"render {o.render_key[:12]}"
    if render.status is RenderStatus.finished:
        return False
    if render.status is not RenderStatus.running:
        raise ShotDBError(f"{label}: is {render.status.value}, not running")
    oks = [a for a in o.attempts if a.error is None]
    if o.error is None and not o.attempts:
        raise ShotDBError(f"{label} attempts: a finished render needs its successful attempt")
    if len(oks) + has_ok > 1 or (o.error is None) != bool(oks) or (oks and oks[0] is not o.attempts[-1]):
        raise ShotDBError(f"{label} attempts: a finished render has exactly one ok attempt, its last; a failed one none")
    for i, a in enumerate(o.attempts, start=last_attempt + 1):
        check.aware(a.started_at, f"{label} attempt started_at")
        check.aware(a.finished_at, f"{label} attempt finished_at")
        if a.finished_at < a.started_at:
            raise ShotDBError(f"{label} attempt finished_at: {a.finished_at} is before started_at")
        if not isinstance(a.model_loads, int) or isinstance(a.model_loads, bool) or a.model_loads < 0:
            raise ShotDBError(f"{label} attempt model_loads: {a.model_loads!r} must be an integer >= 0")
        session.add(RenderAttempt(
            render_id=render.id, attempt=i, worker=check.short_text(a.worker, "attempt worker", max_len=128),
            node=check.short_text(a.node, "attempt node", max_len=128), started_at=a.started_at,
            finished_at=a.finished_at, status=AttemptStatus.ok if a.error is None else AttemptStatus.failed,
            error=a.error, model_loads=a.model_loads, flow_run_id=flow_run_id, host=_host(a.host, label),
            gpus=check.not_negative(a.gpus, f"{label} attempt gpus"),
        ))
    final = o.attempts[-1] if o.attempts else None
    if final is not None:
        render.worker, render.node = final.worker, final.node
        render.host, render.gpus = _host(final.host, label), final.gpus
    if o.error is not None:
        render.status = RenderStatus.failed
        render.error = check.short_text(o.error, f"{label} error", max_len=100_000)
        render.finished_at = final.finished_at if final is not None else utcnow()
        return True
    assert final is not None  # checked above: a finished outcome ends with its ok attempt
    if len(o.frame_hashes) != render.inbetweens:
        raise ShotDBError(f"{label} frame_hashes: {len(o.frame_hashes)} given for {render.inbetweens} in-betweens")
    if o.output_dir is None:
        raise ShotDBError(f"{label} output_dir: a finished render needs its folder")
    render.frame_hashes = [check.sha256(h, f"{label} frame_hashes[{i}]") for i, h in enumerate(o.frame_hashes)]
    render.output_dir = check.path(o.output_dir, f"{label} output_dir")
    render.meta = check.as_json(dict(o.meta), f"{label} meta")
    render.status, render.error = RenderStatus.finished, None
    render.started_at, render.finished_at = final.started_at, final.finished_at
    render.seconds = (final.finished_at - final.started_at).total_seconds()
    return True


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


def _host(host: str | None, label: str) -> str | None:
    return check.short_text(host, f"{label} attempt host", max_len=255) if host else None


def _short(value: str, field: str) -> str:
    # May be empty: a backend without weights (crossfade) has no weights hash.
    if not isinstance(value, str) or len(value) > 64:
        raise ShotDBError(f"{field}: {value!r} must be a string of at most 64 characters")
    return value
