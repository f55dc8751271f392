"""Shot versions: numbered 1, 2, 3... per shot, allocated safely under concurrency, never overwritten.

Allocation locks the shot row (SELECT ... FOR UPDATE on PostgreSQL; on SQLite every write transaction
starts with BEGIN IMMEDIATE), so two batches finishing the same shot take turns: the second sees the
first's version and either takes the next number or, with the same assembly key, reuses it. The unique
(shot_id, number) constraint backs this up in the database itself.

A version given an `owner` is recorded as `placing`: its number is taken, its folder not yet renamed
into place. `publish_version` marks it published once it is there; `drop_version` takes back one that
never got there (ARCHITECTURE.md, "Publishing").
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session, selectinload

from shot_db import _checks as check
from shot_db._errors import ShotDBError
from shot_db.models import (
    Keyframe,
    Render,
    RenderStatus,
    Shot,
    ShotVersion,
    ShotVersionFrame,
    ShotVersionKeyframe,
    ShotVersionOutput,
    ShotVersionRender,
    VersionStatus,
)
from shot_db.models._base import PATH_LEN
from shot_db.models.version import KIND_LEN
from shot_db.records import NewVersion, OutputFile, OutputFrame, VersionOutputs, VersionPair

_KIND = re.compile(r"[a-z0-9][a-z0-9_-]*")


def latest_version(*, session: Session, shot: Shot) -> ShotVersion | None:
    """The shot's highest-numbered version (with its outputs loaded), or None before its first."""
    return session.scalars(
        select(ShotVersion)
        .where(ShotVersion.shot_id == shot.id)
        .order_by(ShotVersion.number.desc())
        .limit(1)
        .options(selectinload(ShotVersion.outputs))
    ).first()


def create_version(
    *,
    session: Session,
    shot: Shot,
    assembly_key: str,
    renders: Sequence[VersionPair],
    keyframes: Mapping[int, str],
    outputs: VersionOutputs | Callable[[int], VersionOutputs],
    fps: float | None = None,
    settings: Mapping[str, Any] | None = None,
    flow_run_id: str | None = None,
    origins: Mapping[int, str] | None = None,
    owner: str | None = None,
    first_free: int = 1,
) -> NewVersion:
    """Record the shot's next version, or return the latest one unchanged if it has this assembly key.

    `renders` are the finished renders in pair order, `keyframes` maps frame index -> pixel hash, and
    `origins` frame index -> the file each drawing was read from.
    `outputs` may be a function of the new version number (called only when a version is created,
    while the shot is locked), so output paths such as .../v003/ can name the number they got.
    With an `owner` the version starts as placing, owned by that process. The number is at least
    `first_free` (a folder already on disk keeps its number).
    """
    label = f"shot {shot.name}"
    check.sha256(assembly_key, f"{label} assembly_key")
    if check.locked(session, select(Shot).where(Shot.id == shot.id)) is None:
        raise ShotDBError(f"{label}: not in the shot DB")
    latest = latest_version(session=session, shot=shot)
    if latest is not None and latest.assembly_key == assembly_key:
        return NewVersion(version=latest, created=False)
    number = max(latest.number + 1 if latest is not None else 1, first_free)
    by_key = _finished_renders(session, renders, label)
    by_hash = _keyframes(session, keyframes, label)
    out = outputs(number) if callable(outputs) else outputs
    frames = [_frame(i, f, by_key, by_hash, label) for i, f in enumerate(out.frames, 1)]
    if not frames:
        raise ShotDBError(f"{label} outputs.frames: a version needs at least one frame")
    files = [_output(i, o, label) for i, o in enumerate(out.outputs)]
    if not files:
        raise ShotDBError(f"{label} outputs.outputs: a version needs at least one output")
    kinds = [o.kind for o in files]
    if len(set(kinds)) != len(kinds):
        raise ShotDBError(f"{label} outputs.outputs: each kind once, got {kinds}")
    version = ShotVersion(
        shot_id=shot.id,
        number=number,
        assembly_key=assembly_key,
        frame_count=len(frames),
        fps=check.positive(fps if fps is not None else shot.fps, f"{label} fps"),
        sidecar_path=check.path(out.sidecar_path, f"{label} sidecar_path"),
        settings=check.as_json(dict(settings or {}), f"{label} settings"),
        flow_run_id=flow_run_id,
        status=VersionStatus.placing if owner is not None else VersionStatus.published,
        owner=check.short_text(owner, f"{label} owner", max_len=128) if owner is not None else None,
        renders=[
            ShotVersionRender(position=i, render_id=by_key[p.render_key].id, frame_a=p.frame_a, frame_b=p.frame_b)
            for i, p in enumerate(renders)
        ],
        keyframes=[
            ShotVersionKeyframe(frame=f, keyframe_hash=h, origin=_origin((origins or {}).get(f), f, label))
            for f, h in sorted(keyframes.items())
        ],
        frames=frames,
        outputs=files,
    )
    session.add(version)
    session.flush()
    return NewVersion(version=version, created=True)


def publish_version(*, session: Session, version_id: uuid.UUID) -> None:
    """A placing version is in place: published (a published one stays as it is)."""
    version = session.get(ShotVersion, version_id, with_for_update=True, populate_existing=True)
    if version is None:
        raise ShotDBError(f"version {version_id}: not in the shot DB")
    version.status, version.owner = VersionStatus.published, None
    session.flush()


def drop_version(*, session: Session, version_id: uuid.UUID) -> None:
    """Take back a placing version whose folder never got into place; its number is free again."""
    version = session.get(ShotVersion, version_id, with_for_update=True, populate_existing=True)
    if version is None:
        return
    if version.status is not VersionStatus.placing:
        raise ShotDBError(f"version {version_id}: is {version.status.value}; only a placing version is taken back")
    for child in (ShotVersionFrame, ShotVersionOutput, ShotVersionRender, ShotVersionKeyframe):
        session.execute(delete(child).where(child.version_id == version_id))
    session.delete(version)
    session.flush()


def _origin(origin: str | None, frame: int, label: str) -> str | None:
    return check.short_text(origin, f"{label} origins[{frame}]", max_len=PATH_LEN) if origin else None


def _finished_renders(session: Session, pairs: Sequence[VersionPair], label: str) -> dict[str, Render]:
    for i, p in enumerate(pairs):
        check.sha256(p.render_key, f"{label} renders[{i}].render_key")
        if not (isinstance(p.frame_a, int) and isinstance(p.frame_b, int) and 0 <= p.frame_a < p.frame_b):
            raise ShotDBError(f"{label} renders[{i}]: need 0 <= frame_a < frame_b, got {p.frame_a}, {p.frame_b}")
    keys = {p.render_key for p in pairs}
    found = {r.render_key: r for r in session.scalars(select(Render).where(Render.render_key.in_(keys)))}
    for i, p in enumerate(pairs):
        render = found.get(p.render_key)
        if render is None or render.status is not RenderStatus.finished:
            state = "not in the shot DB" if render is None else render.status.value
            raise ShotDBError(f"{label} renders[{i}]: render {p.render_key[:12]} is {state}, not finished")
    return found


def _keyframes(session: Session, keyframes: Mapping[int, str], label: str) -> dict[str, Keyframe]:
    for frame, pixel_hash in keyframes.items():
        if not isinstance(frame, int) or frame < 0:
            raise ShotDBError(f"{label} keyframes: frame index {frame!r} must be an integer >= 0")
        check.sha256(pixel_hash, f"{label} keyframes[{frame}]")
    hashes = set(keyframes.values())
    found = {k.pixel_hash: k for k in session.scalars(select(Keyframe).where(Keyframe.pixel_hash.in_(hashes)))}
    missing = sorted(hashes - found.keys())
    if missing:
        raise ShotDBError(f"{label} keyframes: {missing[0][:12]} not recorded yet (upsert_keyframe first)")
    return found


def _frame(
    number: int, frame: OutputFrame, renders: dict[str, Render], keyframes: dict[str, Keyframe], label: str
) -> ShotVersionFrame:
    where = f"{label} frames[{number - 1}]"
    pixel_hash = check.sha256(frame.pixel_hash, f"{where}.pixel_hash")
    if frame.render_key is not None and frame.keyframe_hash is None:
        render = renders.get(frame.render_key)
        if render is None:
            raise ShotDBError(f"{where}.render_key: {frame.render_key[:12]} is not one of this version's renders")
        if not isinstance(frame.inbetween, int) or not 1 <= frame.inbetween <= render.inbetweens:
            raise ShotDBError(f"{where}.inbetween: {frame.inbetween!r} must be in 1..{render.inbetweens}")
        return ShotVersionFrame(
            number=number,
            pixel_hash=pixel_hash,
            path=check.path(frame.path, f"{where}.path") if frame.path is not None else None,
            render_id=render.id,
            inbetween=frame.inbetween,
        )
    if frame.keyframe_hash is not None and frame.render_key is None and frame.inbetween is None:
        if frame.keyframe_hash not in keyframes:
            raise ShotDBError(
                f"{where}.keyframe_hash: {frame.keyframe_hash[:12]} is not one of this version's keyframes"
            )
        return ShotVersionFrame(
            number=number,
            pixel_hash=pixel_hash,
            path=check.path(frame.path, f"{where}.path") if frame.path is not None else None,
            keyframe_hash=frame.keyframe_hash,
        )
    raise ShotDBError(f"{where}: give either render_key + inbetween or keyframe_hash as the frame's source")


def _output(position: int, o: OutputFile, label: str) -> ShotVersionOutput:
    where = f"{label} outputs[{position}]"
    if not isinstance(o.kind, str) or len(o.kind) > KIND_LEN or not _KIND.fullmatch(o.kind):
        raise ShotDBError(f"{where}.kind: {o.kind!r} must be a format name (lowercase letters, digits, '_', '-')")
    if not isinstance(o.frame_count, int) or isinstance(o.frame_count, bool) or o.frame_count < 1:
        raise ShotDBError(f"{where}.frame_count: {o.frame_count!r} must be an integer >= 1")
    return ShotVersionOutput(
        kind=o.kind,
        position=position,
        path=check.path(o.path, f"{where}.path"),
        sha256=check.sha256(o.sha256, f"{where}.sha256"),
        frame_count=o.frame_count,
        details=check.as_json(dict(o.details), f"{where}.details"),
    )
