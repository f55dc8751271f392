"""Reading provenance back: a shot's versions, and the lineage of any output frame or file."""

from __future__ import annotations

import os
import uuid
from dataclasses import fields
from typing import Any, TypeVar

from sqlalchemy import ColumnElement, select
from sqlalchemy.orm import Session, joinedload, selectinload

from shot_db import _checks as check
from shot_db._catalog import find_shot
from shot_db._quality import decisions_choosing
from shot_db.models import (
    AttemptStatus,
    Keyframe,
    Render,
    RenderAttempt,
    Shot,
    ShotVersion,
    ShotVersionFrame,
    ShotVersionKeyframe,
    ShotVersionOutput,
    ShotVersionRender,
    VersionStatus,
)
from shot_db.records import (
    AttemptInfo,
    FrameInfo,
    KeyframeInfo,
    Lineage,
    OutputFile,
    QADecisionInfo,
    RenderInfo,
    VersionInfo,
)

R = TypeVar("R")
# A version still being placed (its folder may not be there yet) is nobody's history, nor any file's lineage.
_PUBLISHED = ShotVersion.status == VersionStatus.published

# Everything a VersionInfo shows, loaded in a fixed number of queries (relationships are lazy="raise").
_VERSION_GRAPH = (
    joinedload(ShotVersion.shot),
    selectinload(ShotVersion.renders)
    .joinedload(ShotVersionRender.render)
    .options(selectinload(Render.attempts), joinedload(Render.keyframe_a), joinedload(Render.keyframe_b)),
    selectinload(ShotVersion.keyframes).joinedload(ShotVersionKeyframe.keyframe),
    selectinload(ShotVersion.outputs),
)


def shot_history(*, session: Session, show: str, sequence: str, code: str) -> tuple[VersionInfo, ...]:
    """Every version of the shot, oldest first, each with the renders and keyframes it was made from."""
    shot = find_shot(session=session, show=show, sequence=sequence, code=code)
    return tuple(_versions(session, ShotVersion.shot_id == shot.id).values())


def newest_version(*, session: Session, show: str, sequence: str, code: str) -> VersionInfo | None:
    """The shot's highest-numbered version with everything it was made from; None when it has none yet
    (or the shot DB has never seen the shot)."""
    newest = (
        select(ShotVersion.id)
        .join(Shot, ShotVersion.shot_id == Shot.id)
        .where(Shot.show == show, Shot.sequence == sequence, Shot.code == code, _PUBLISHED)
        .order_by(ShotVersion.number.desc())
        .limit(1)
    )
    return next(iter(_versions(session, ShotVersion.id.in_(newest.scalar_subquery())).values()), None)


def lineage(*, session: Session, target: str | os.PathLike[str]) -> tuple[Lineage, ...]:
    """What produced an output, newest version first; empty when the shot DB has never recorded it.

    `target` is a frame's pixel hash, an output's sha256, or a path: an assembled frame, an output (a
    movie file, an image sequence's folder) or a provenance sidecar. Pixels that occur in several versions
    (or frames) give one Lineage each.
    """
    if isinstance(target, str) and check.is_sha256(target):
        frame_match = ShotVersionFrame.pixel_hash == target
        output_match = ShotVersionOutput.sha256 == target
        sidecars: set[uuid.UUID] = set()
    else:
        path = check.path(target, "lineage target")
        frame_match = ShotVersionFrame.path == path
        output_match = ShotVersionOutput.path == path
        sidecars = set(session.scalars(select(ShotVersion.id).where(ShotVersion.sidecar_path == path)))
    frames = session.execute(
        select(ShotVersionFrame, Render.render_key)
        .outerjoin(Render, ShotVersionFrame.render_id == Render.id)
        .where(frame_match)
    ).all()
    outputs = session.execute(select(ShotVersionOutput.version_id, ShotVersionOutput.kind).where(output_match)).all()
    wanted = sidecars | {v for v, _ in outputs} | {f.version_id for f, _ in frames}
    infos = _versions(session, ShotVersion.id.in_(wanted))
    found = [Lineage(version=infos[v], frame=None) for v in sidecars if v in infos]
    found += [Lineage(version=infos[v], frame=None, output=infos[v].output(kind)) for v, kind in outputs if v in infos]
    found += [Lineage(version=infos[f.version_id], frame=_frame_info(f, key)) for f, key in frames if f.version_id in infos]
    found.sort(key=lambda x: (x.version.created_at, x.version.number, -x.frame.number if x.frame else 1), reverse=True)
    return tuple(found)


def _versions(session: Session, where: ColumnElement[bool]) -> dict[uuid.UUID, VersionInfo]:
    rows = session.scalars(
        select(ShotVersion)
        .where(where, _PUBLISHED)
        .order_by(ShotVersion.shot_id, ShotVersion.number)
        .options(*_VERSION_GRAPH)
        .execution_options(populate_existing=True)
    ).unique()
    versions = list(rows)
    chosen = decisions_choosing(session, (p.render_id for v in versions for p in v.renders))
    return {v.id: _version_info(v, chosen) for v in versions}


def _copy(cls: type[R], row: object, **given: Any) -> R:
    """A `cls` record: the `given` fields, and every other one read from the row's column of that name."""
    names = [f.name for f in fields(cls)]  # type: ignore[arg-type]
    return cls(**{n: given[n] if n in given else getattr(row, n) for n in names})


def _version_info(v: ShotVersion, chosen: dict[uuid.UUID, QADecisionInfo]) -> VersionInfo:
    return _copy(
        VersionInfo, v, show=v.shot.show, sequence=v.shot.sequence, code=v.shot.code,
        renders=tuple(_render_info(p, chosen.get(p.render_id)) for p in v.renders),
        keyframes=tuple(_keyframe_info(k.keyframe, k.frame, k.origin) for k in v.keyframes),
        outputs=tuple(_output_file(o) for o in v.outputs),
    )


def _output_file(o: ShotVersionOutput) -> OutputFile:
    return _copy(OutputFile, o, details=dict(o.details))


def _render_info(pair: ShotVersionRender, qa: QADecisionInfo | None) -> RenderInfo:
    r = pair.render
    return _copy(
        RenderInfo, r, status=r.status.value, frame_a=pair.frame_a, frame_b=pair.frame_b, qa=qa,
        keyframe_a=_keyframe_info(r.keyframe_a, None), keyframe_b=_keyframe_info(r.keyframe_b, None),
        times=tuple(r.times), sketch_hashes=tuple((float(t), str(h)) for t, h in r.sketch_hashes),
        frame_hashes=tuple(r.frame_hashes or ()), attempts=tuple(_attempt_info(a) for a in r.attempts),
    )


def _attempt_info(a: RenderAttempt) -> AttemptInfo:
    return _copy(AttemptInfo, a, ok=a.status is AttemptStatus.ok)


def _keyframe_info(k: Keyframe, frame: int | None, origin: str | None = None) -> KeyframeInfo:
    return _copy(KeyframeInfo, k, frame=frame, origin=origin)


def _frame_info(f: ShotVersionFrame, render_key: str | None) -> FrameInfo:
    return _copy(FrameInfo, f, render_key=render_key)
