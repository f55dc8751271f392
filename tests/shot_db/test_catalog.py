"""Shots and keyframes: upserts are idempotent, and bad input names its field."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

import shot_db
from shot_db.models import Keyframe, Shot

from .conftest import sha


def test_upsert_shot_is_idempotent_and_follows_fps(session: Session) -> None:
    with session.begin():
        first = shot_db.upsert_shot(session=session, show="pilot", sequence="sq010", code="sh0010", fps=24)
        again = shot_db.upsert_shot(session=session, show="pilot", sequence="sq010", code="sh0010", fps=24)
        assert again.id == first.id
        created, updated = first.created_at, first.updated_at
    with session.begin():
        changed = shot_db.upsert_shot(session=session, show="pilot", sequence="sq010", code="sh0010", fps=12.5)
        assert changed.id == first.id and changed.fps == 12.5
        assert changed.created_at == created and changed.updated_at > updated
        assert changed.created_at.tzinfo is not None
        other = shot_db.upsert_shot(session=session, show="pilot", sequence="sq010", code="sh0020", fps=24)
        assert other.id != first.id
        assert session.scalar(select(func.count()).select_from(Shot)) == 2


def test_upsert_keyframe_is_idempotent(session: Session, tmp_path: Path) -> None:
    h = sha("kf", 1)
    with session.begin():
        k1 = shot_db.upsert_keyframe(session=session, pixel_hash=h, width=64, height=48, path=tmp_path / "a.png")
        k2 = shot_db.upsert_keyframe(session=session, pixel_hash=h, width=64, height=48, path=tmp_path / "a.png")
        assert k1 is k2 and session.scalar(select(func.count()).select_from(Keyframe)) == 1
        moved = shot_db.upsert_keyframe(session=session, pixel_hash=h, width=64, height=48, path=tmp_path / "b.png")
        assert moved.path == str(tmp_path / "b.png")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"pixel_hash": "abc"}, "keyframe pixel_hash: 'abc' is not a sha256"),
        ({"pixel_hash": sha(1).upper()}, "is not a sha256"),
        ({"width": 0}, "width: 0 must be a positive integer"),
        ({"height": 2.5}, "height: 2.5 must be a positive integer"),
        ({"path": ""}, "path: empty path"),
    ],
)
def test_bad_keyframes_name_the_field(session: Session, kwargs: dict[str, object], message: str) -> None:
    args: dict[str, object] = {"pixel_hash": sha("kf"), "width": 8, "height": 8, "path": "/store/x.png"} | kwargs
    with pytest.raises(shot_db.ShotDBError, match=message):
        shot_db.upsert_keyframe(session=session, **args)  # type: ignore[arg-type]


def test_one_pixel_hash_with_two_sizes_is_refused(session: Session) -> None:
    h = sha("kf", 2)
    shot_db.upsert_keyframe(session=session, pixel_hash=h, width=64, height=48, path="/store/k.png")
    with pytest.raises(shot_db.ShotDBError, match="size: 32x48 given, 64x48 recorded"):
        shot_db.upsert_keyframe(session=session, pixel_hash=h, width=32, height=48, path="/store/k.png")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"code": "sh/10"}, "code: 'sh/10' must be a non-empty name"),
        ({"show": ""}, "show: '' must be a non-empty name"),
        ({"fps": 0}, "fps: 0 must be a finite number > 0"),
        ({"fps": float("nan")}, "fps: nan must be"),
    ],
)
def test_bad_shots_name_the_field(session: Session, kwargs: dict[str, object], message: str) -> None:
    args: dict[str, object] = {"show": "pilot", "sequence": "sq010", "code": "sh0010", "fps": 24} | kwargs
    with pytest.raises(shot_db.ShotDBError, match=message):
        shot_db.upsert_shot(session=session, **args)  # type: ignore[arg-type]


def test_resolve_shot_by_id_or_unique_code(session: Session) -> None:
    with session.begin():
        a = shot_db.upsert_shot(session=session, show="pilot", sequence="sq010", code="sh0010", fps=24)
        shot_db.upsert_shot(session=session, show="pilot", sequence="sq010", code="sh0020", fps=24)
        shot_db.upsert_shot(session=session, show="other", sequence="sq900", code="sh0020", fps=24)
        assert shot_db.resolve_shot(session=session, ref="pilot/sq010/sh0010").id == a.id
        assert shot_db.resolve_shot(session=session, ref="sh0010").id == a.id
        with pytest.raises(shot_db.ShotDBError, match=r"several shots have this code \(other/sq900/sh0020, pilot/sq010/sh0020\)"):
            shot_db.resolve_shot(session=session, ref="sh0020")
        with pytest.raises(shot_db.ShotDBError, match="shot sh9999: not in the shot DB"):
            shot_db.resolve_shot(session=session, ref="sh9999")
        with pytest.raises(shot_db.ShotDBError, match="give show/sequence/code or a shot code"):
            shot_db.resolve_shot(session=session, ref="pilot/sh0010")
