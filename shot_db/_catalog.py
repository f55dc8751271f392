"""Shots and keyframes: idempotent upserts of the things every render and version refers to."""

from __future__ import annotations

import os

from sqlalchemy import select
from sqlalchemy.orm import Session

from shot_db import _checks as check
from shot_db._errors import ShotDBError, ShotDBUsageError
from shot_db.models import Keyframe, Shot


def upsert_shot(*, session: Session, show: str, sequence: str, code: str, fps: float) -> Shot:
    """The shot (show, sequence, code), created if new; its fps is updated when it changed."""
    stmt = select(Shot).where(
        Shot.show == check.name(show, "show"),
        Shot.sequence == check.name(sequence, "sequence"),
        Shot.code == check.name(code, "code"),
    )
    fps = check.positive(fps, f"{show}/{sequence}/{code} fps")
    shot = check.locked(session, stmt)
    if shot is None:
        shot = check.insert_or_get(session, Shot(show=show, sequence=sequence, code=code, fps=fps), stmt)
    if shot.fps != fps:
        shot.fps = fps
        session.flush()
    return shot


def find_shot(*, session: Session, show: str, sequence: str, code: str) -> Shot:
    """The shot (show, sequence, code), or ShotDBError if the shot DB has never seen it."""
    shot = session.scalars(
        select(Shot).where(Shot.show == show, Shot.sequence == sequence, Shot.code == code)
    ).one_or_none()
    if shot is None:
        raise ShotDBUsageError(f"shot {show}/{sequence}/{code}: not in the shot DB")
    return shot


def upsert_keyframe(
    *, session: Session, pixel_hash: str, width: int, height: int, path: str | os.PathLike[str]
) -> Keyframe:
    """The keyframe with these pixels, created if new; its stored path follows the latest call."""
    stored = keyframe_path(pixel_hash, width, height, path)
    stmt = select(Keyframe).where(Keyframe.pixel_hash == pixel_hash)
    keyframe = check.locked(session, stmt)
    if keyframe is None:
        row = Keyframe(pixel_hash=pixel_hash, width=width, height=height, path=stored)
        keyframe = check.insert_or_get(session, row, stmt)
    update_keyframe(keyframe, width, height, stored)
    session.flush()
    return keyframe


def keyframe_path(pixel_hash: str, width: int, height: int, path: str | os.PathLike[str]) -> str:
    """Check a keyframe's fields; returns its stored path as recorded (absolute)."""
    check.sha256(pixel_hash, "keyframe pixel_hash")
    for field, value in (("width", width), ("height", height)):
        if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
            raise ShotDBError(f"keyframe {pixel_hash[:12]} {field}: {value!r} must be a positive integer")
    return check.path(path, f"keyframe {pixel_hash[:12]} path")


def update_keyframe(keyframe: Keyframe, width: int, height: int, stored: str) -> None:
    """The same pixels must have the same size; the stored path follows the latest record."""
    if (keyframe.width, keyframe.height) != (width, height):
        # The pixel hash covers the shape, so a different size under one hash is a caller's bug.
        raise ShotDBError(
            f"keyframe {keyframe.pixel_hash[:12]} size: {width}x{height} given, "
            f"{keyframe.width}x{keyframe.height} recorded"
        )
    keyframe.path = stored


def resolve_shot(*, session: Session, ref: str) -> Shot:
    """The shot named by `ref`: "show/sequence/code", or a bare code that exactly one shot has."""
    parts = ref.strip("/").split("/")
    if len(parts) == 3:
        return find_shot(session=session, show=parts[0], sequence=parts[1], code=parts[2])
    if len(parts) != 1 or not parts[0]:
        raise ShotDBUsageError(f"shot {ref!r}: give show/sequence/code or a shot code")
    found = session.scalars(select(Shot).where(Shot.code == parts[0]).order_by(Shot.show, Shot.sequence)).all()
    if not found:
        raise ShotDBUsageError(f"shot {ref}: not in the shot DB")
    if len(found) > 1:
        names = ", ".join(f"{s.show}/{s.sequence}/{s.code}" for s in found)
        raise ShotDBUsageError(f"shot {ref}: several shots have this code ({names}); give show/sequence/code")
    return found[0]
