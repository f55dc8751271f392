"""What a dead run left behind, settled by the next one: its placing versions, running batch and renders.

A run is known dead by its owner (host, boot, process, start time) or by its silence (`beat_ages`: how
long since its batches last beat); the caller's `is_dead` decides (tasks/owner.py). Never by the age of
its rows: a slow live run's rows are left alone. A placing version whose folder is in place (`in_place` of
its sidecar) is published; one whose rename never happened is taken back, and its number is free again.
A dead batch is failed, and the renders it still had running are failed with a reason; the next claim of
their keys runs them again.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session, joinedload

from shot_db._versions import drop_version, publish_version
from shot_db.models import BatchRun, BatchStatus, Render, RenderStatus, ShotVersion, VersionStatus
from shot_db.models._base import UTCDateTime, utcnow


@dataclass(frozen=True)
class Settled:
    """What `settle_dead_runs` changed: versions by `show/sequence/code vNNN`, and row counts."""

    published: tuple[str, ...] = ()
    dropped: tuple[str, ...] = ()
    batches: int = 0
    renders: int = 0

    def __bool__(self) -> bool:
        return bool(self.published or self.dropped or self.batches or self.renders)


def beat_ages(*, session: Session) -> dict[str, float]:
    """Seconds since each owner's newest batch heartbeat, by the database's clock (hosts' clocks differ),
    for every owner whose batches beat; owners of batches made before heartbeats are not in it."""
    now = session.execute(select(func.now(type_=UTCDateTime()))).scalar_one()
    newest = select(BatchRun.owner, func.max(BatchRun.heartbeat_at)).group_by(BatchRun.owner)
    return {owner: (now - beat).total_seconds() for owner, beat in session.execute(newest) if owner and beat}


def settle_dead_runs(
    *, session: Session, is_dead: Callable[[str], bool], in_place: Callable[[str], bool]
) -> Settled:
    """Settle the rows of every run `is_dead` says is gone (see the module's docstring)."""
    placing = session.scalars(
        select(ShotVersion)
        .where(ShotVersion.status == VersionStatus.placing)
        .options(joinedload(ShotVersion.shot))
        .order_by(ShotVersion.id)
        .with_for_update(of=ShotVersion)
        .execution_options(populate_existing=True)
    ).all()
    published, dropped = [], []
    for v in placing:
        if v.owner is None or not is_dead(v.owner):
            continue
        name = f"{v.shot.name} v{v.number:03d}"
        if in_place(v.sidecar_path):
            publish_version(session=session, version_id=v.id)
            published.append(name)
        else:
            drop_version(session=session, version_id=v.id)
            dropped.append(name)
    running = session.scalars(
        select(BatchRun)
        .where(BatchRun.status == BatchStatus.running, BatchRun.owner.is_not(None))
        .order_by(BatchRun.id)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).all()
    dead = [b for b in running if b.owner is not None and is_dead(b.owner)]
    renders = 0
    for b in dead:
        b.status, b.finished_at = BatchStatus.failed, utcnow()
        left = session.scalars(
            select(Render)
            .where(Render.status == RenderStatus.running, Render.flow_run_id == b.flow_run_id)
            .order_by(Render.render_key)
            .with_for_update()
            .execution_options(populate_existing=True)
        ).all()
        for r in left:
            r.status, r.finished_at, r.error = RenderStatus.failed, utcnow(), f"its batch died (process {b.owner})"
        renders += len(left)
    session.flush()
    return Settled(tuple(published), tuple(dropped), len(dead), renders)
