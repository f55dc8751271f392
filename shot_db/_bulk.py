"""Many renders at once: a batch claims its pairs and records its results in a few statements.

The transitions are _renders.py's (`reclaim`, `settle`); what is here is fetching and locking every row a
batch touches in a few statements instead of several per render: the per-pair cost of a farm is mostly here.

Every statement locks and inserts rows in key order. Two batches claiming overlapping pairs in their own
orders would each hold a key the other waits for (PostgreSQL detects the cycle and kills one); in one order
the later batch simply waits for the first to commit.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any, TypeVar

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from shot_db import _checks as check
from shot_db._errors import ShotDBError
from shot_db._catalog import keyframe_path, update_keyframe, upsert_keyframe
from shot_db._renders import claim_render, reclaim, settle, spec_values
from shot_db.models import AttemptStatus, Keyframe, Render, RenderAttempt, RenderStatus, Shot
from shot_db.records import KeyframeRecord, RenderClaim, RenderOutcome

T = TypeVar("T")
_CHUNK = 500  # keys per IN (...): far below SQLite's and PostgreSQL's parameter limits


def chunks(items: Sequence[T]) -> Iterator[Sequence[T]]:
    for i in range(0, len(items), _CHUNK):
        yield items[i : i + _CHUNK]


def _renders(session: Session, keys: Sequence[str]) -> dict[str, Render]:
    """The rows of `keys` that exist, locked until the transaction ends, with fresh values."""
    found: dict[str, Render] = {}
    for part in chunks(sorted(keys)):
        stmt = select(Render).where(Render.render_key.in_(part)).order_by(Render.render_key).with_for_update()
        found.update((r.render_key, r) for r in session.scalars(stmt.execution_options(populate_existing=True)))
    return found


def upsert_keyframes(*, session: Session, keyframes: Sequence[KeyframeRecord]) -> None:
    """`upsert_keyframe` for every record (a hash given twice must agree on its size)."""
    wanted: dict[str, tuple[KeyframeRecord, str]] = {}
    for k in keyframes:
        stored = keyframe_path(k.pixel_hash, k.width, k.height, k.path)
        if k.pixel_hash in wanted and (wanted[k.pixel_hash][0].width, wanted[k.pixel_hash][0].height) != (k.width, k.height):
            raise ShotDBError(f"keyframe {k.pixel_hash[:12]} size: given twice with different sizes")
        wanted[k.pixel_hash] = (k, stored)
    hashes = sorted(wanted)
    found: dict[str, Keyframe] = {}
    for part in chunks(hashes):
        stmt = select(Keyframe).where(Keyframe.pixel_hash.in_(part)).order_by(Keyframe.pixel_hash).with_for_update()
        found.update((r.pixel_hash, r) for r in session.scalars(stmt.execution_options(populate_existing=True)))
    for h, row in found.items():
        update_keyframe(row, wanted[h][0].width, wanted[h][0].height, wanted[h][1])
    new = [Keyframe(pixel_hash=h, width=k.width, height=k.height, path=p) for h, (k, p) in sorted(wanted.items()) if h not in found]
    try:
        with session.begin_nested():
            session.add_all(new)
    except IntegrityError:  # another batch recorded some of them meanwhile: one by one
        for k, _ in (wanted[row.pixel_hash] for row in new):
            upsert_keyframe(session=session, pixel_hash=k.pixel_hash, width=k.width, height=k.height, path=k.path)
    session.flush()


def check_claims(claims: Sequence[RenderClaim]) -> dict[str, tuple[dict[str, Any], RenderClaim]]:
    """The claims' column values by render key, or ShotDBError naming the first field the shot DB cannot
    hold (a seed beyond 64 bits, times outside (0, 1)...); reads and writes nothing."""
    values: dict[str, tuple[dict[str, Any], RenderClaim]] = {}
    for c in claims:
        if not (isinstance(c.frame_a, int) and isinstance(c.frame_b, int) and 0 <= c.frame_a < c.frame_b):
            raise ShotDBError(
                f"render {c.spec.render_key[:12]} frames: need 0 <= frame_a < frame_b, got {c.frame_a}, {c.frame_b}"
            )
        values.setdefault(c.spec.render_key, (spec_values(c.spec), c))
    return values


def claim_renders(*, session: Session, claims: Sequence[RenderClaim], flow_run_id: str | None = None) -> dict[str, Render]:
    """`claim_render` for every claim (by render key; a key claimed twice counts once)."""
    values = check_claims(claims)
    hashes = sorted({v[f] for v, _ in values.values() for f in ("keyframe_a_hash", "keyframe_b_hash")})
    known = {h for part in chunks(hashes) for h in session.scalars(select(Keyframe.pixel_hash).where(Keyframe.pixel_hash.in_(part)))}
    for key, (v, _) in values.items():
        for f in ("keyframe_a_hash", "keyframe_b_hash"):
            if v[f] not in known:
                raise ShotDBError(f"render {key[:12]} {f}: keyframe {v[f][:12]} not recorded yet")
    found = _renders(session, list(values))
    for key, render in found.items():
        reclaim(render, values[key][0], flow_run_id)
    new = [
        Render(**v, shot_id=c.shot_id, frame_a=c.frame_a, frame_b=c.frame_b, status=RenderStatus.running, meta={},
               flow_run_id=flow_run_id)
        for key, (v, c) in sorted(values.items()) if key not in found
    ]
    try:
        with session.begin_nested():
            session.add_all(new)
    except IntegrityError:  # another batch inserted some of these keys meanwhile: one by one, as it allows
        for row in new:
            v, c = values[row.render_key]
            found[row.render_key] = claim_render(
                session=session, spec=c.spec, shot=session.get_one(Shot, c.shot_id), frame_a=c.frame_a,
                frame_b=c.frame_b, flow_run_id=flow_run_id,
            )
        return found
    session.flush()
    found.update((r.render_key, r) for r in new)
    return found


def record_outcomes(
    *, session: Session, outcomes: Sequence[RenderOutcome], flow_run_id: str | None = None
) -> list[str]:
    """`record_outcome` for every outcome; returns the keys skipped because another batch had already
    finished them (same key, same frames)."""
    renders = _renders(session, [o.render_key for o in outcomes])
    ids = [r.id for r in renders.values()]
    last: dict[Any, int] = {}
    has_ok: set[Any] = set()
    for part in chunks(ids):
        numbers = select(RenderAttempt.render_id, func.max(RenderAttempt.attempt)).where(RenderAttempt.render_id.in_(part))
        last.update((rid, n) for rid, n in session.execute(numbers.group_by(RenderAttempt.render_id)))
        has_ok.update(session.scalars(
            select(RenderAttempt.render_id).where(RenderAttempt.render_id.in_(part), RenderAttempt.status == AttemptStatus.ok)
        ))
    skipped: list[str] = []
    seen: set[str] = set()
    for o in outcomes:
        label = f"render {o.render_key[:12]}"
        if o.render_key in seen:
            raise ShotDBError(f"{label}: two outcomes for one render in one call")
        seen.add(o.render_key)
        render = renders.get(o.render_key)
        if render is None:
            raise ShotDBError(f"{label}: not in the shot DB; claim_render first")
        if not settle(session, render, o, last.get(render.id, 0), render.id in has_ok, flow_run_id):
            skipped.append(o.render_key)
    session.flush()
    return skipped


def record_outcome(*, session: Session, outcome: RenderOutcome, flow_run_id: str | None = None) -> bool:
    """Record one render's tries and finish or fail it (`settle`); False when another batch had already
    finished it (same key, same frames), which leaves it as that batch recorded it."""
    return not record_outcomes(session=session, outcomes=[outcome], flow_run_id=flow_run_id)
