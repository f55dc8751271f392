"""Reading provenance back: a shot's history, and the lineage of a frame hash, a PNG, any output."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy.orm import Session

import shot_db
from shot_db.records import VersionPair

from .conftest import T0, Farm, sha


def test_history_lists_versions_with_their_renders(session: Session, farm: Farm) -> None:
    with session.begin():
        shot = farm.shot(session, "sh0010")
        farm.simple_version(session, shot, tag="v1", failures=1)
        farm.simple_version(session, shot, tag="v2")
        farm.simple_version(session, farm.shot(session, "sh0020"), tag="v1")
    session.expunge_all()  # read back from the database, not from the session's objects
    history = shot_db.shot_history(session=session, show="pilot", sequence="sq010", code="sh0010")
    assert [v.number for v in history] == [1, 2]
    v1 = history[0]
    assert (v1.show, v1.sequence, v1.code, v1.frame_count, v1.fps) == ("pilot", "sq010", "sh0010", 4, 24.0)
    assert v1.settings == {"lut": "show.cube"} and v1.flow_run_id == "run-1"
    assert [(k.frame, k.width, k.path.endswith(".png")) for k in v1.keyframes] == [(0, 64, True), (3, 64, True)]
    (render,) = v1.renders
    assert (render.frame_a, render.frame_b, render.backend, render.seed) == (0, 3, "rife", 7)
    assert render.params == {"prompt": "a cat", "steps": 4} and render.times == (1 / 3, 2 / 3)
    assert [(a.attempt, a.ok, a.error) for a in render.attempts] == [(1, False, "CUDA out of memory"), (2, True, None)]
    assert render.worker == "actor-1" and render.started_at is not None and render.started_at > T0
    assert history[1].renders[0].render_key == render.render_key  # v2 reused the render
    with pytest.raises(shot_db.ShotDBError, match="shot pilot/sq010/sh9999: not in the shot DB"):
        shot_db.shot_history(session=session, show="pilot", sequence="sq010", code="sh9999")


def test_lineage_of_an_inbetween_by_hash_and_by_path(session: Session, farm: Farm) -> None:
    shot = farm.shot(session)
    version = farm.simple_version(session, shot, tag="only").version
    session.expunge_all()
    a, b = sha("keyframe", (shot.code, "a")), sha("keyframe", (shot.code, "b"))
    pixels = sha("out", "only", "render", (farm.spec(a, b).render_key, 2))  # as Farm.outputs names them
    (found,) = shot_db.lineage(session=session, target=pixels)
    assert found.frame is not None and found.frame.number == 3 and found.frame.inbetween == 2
    assert found.version.number == version.number and found.keyframe is None
    render = found.render
    assert render is not None and render.backend == "rife" and render.weights_sha256 == sha("weights", "rife")
    assert render.keyframe_a.pixel_hash == a and render.keyframe_a.path.endswith(f"{a}.png")
    assert render.flow_run_id == "run-1" and render.worker == "actor-0" and render.seconds == 3.0
    png = Path(version.outputs[0].path) / f"{shot.code}.0003.png"
    (by_path,) = shot_db.lineage(session=session, target=png)
    assert by_path == found


def test_lineage_of_a_held_keyframe_any_output_and_a_sidecar(session: Session, farm: Farm) -> None:
    shot = farm.shot(session)
    version = farm.simple_version(session, shot, tag="only").version
    png, mp4 = version.outputs
    (held,) = shot_db.lineage(session=session, target=str(Path(png.path) / f"{shot.code}.0001.png"))
    assert held.frame is not None and held.render is None and held.output is None
    assert held.keyframe is not None and held.keyframe.frame == 0
    assert [(o.kind, o.frame_count, dict(o.details)) for o in held.version.outputs] == [
        ("png", 4, {"first_frame": 1}), ("h264", 4, {"pix_fmt": "yuv420p"})
    ]
    for target, named in ((mp4.path, "h264"), (mp4.sha256, "h264"), (png.path, "png"), (png.sha256, "png"),
                          (version.sidecar_path, None)):  # fmt: skip
        assert target is not None
        (whole,) = shot_db.lineage(session=session, target=target)
        assert whole.frame is None and whole.version.number == version.number
        assert (whole.output.kind if whole.output else None) == named
        assert whole.output is None or (whole.output.path, whole.output.sha256) == (
            (mp4.path, mp4.sha256) if named == "h264" else (png.path, png.sha256)
        )
        assert [r.render_key for r in whole.version.renders] == [held.version.renders[0].render_key]
    assert shot_db.lineage(session=session, target=sha("never rendered")) == ()
    assert shot_db.lineage(session=session, target="/nowhere/x.png") == ()


def test_pixels_in_several_versions_give_one_lineage_each_newest_first(session: Session, farm: Farm) -> None:
    shot = farm.shot(session)
    a, b = farm.keyframe(session, "a"), farm.keyframe(session, "b")
    key = farm.render(session, shot, farm.spec(a, b), 0, 3)
    layout = [("key", a), ("render", (key, 1)), ("render", (key, 2)), ("key", b)]
    for n, settings in ((1, "crf 18"), (2, "crf 23")):  # same frames, another encode: a new version
        shot_db.create_version(
            session=session, shot=shot, assembly_key=sha("asm", settings), renders=[VersionPair(key, 0, 3)],
            keyframes={0: a, 3: b}, outputs=farm.outputs(shot, layout, "same pixels"), settings={"mp4": settings},
        )
    found = shot_db.lineage(session=session, target=sha("out", "same pixels", "key", a))
    assert [(x.version.number, x.frame.number if x.frame else None) for x in found] == [(2, 1), (1, 1)]


def test_newest_version_with_its_outputs(session: Session, farm: Farm) -> None:
    shot = farm.shot(session, "sh0010")
    assert shot_db.newest_version(session=session, show="pilot", sequence="sq010", code=shot.code) is None
    farm.simple_version(session, shot, tag="v1")
    farm.simple_version(session, shot, tag="v2")
    session.expunge_all()
    newest = shot_db.newest_version(session=session, show="pilot", sequence="sq010", code=shot.code)
    assert newest is not None and newest.number == 2
    h264 = newest.output("h264")
    assert h264 is not None and h264.path.endswith("v002/sh0010_v002.mp4") and newest.output("prores4444") is None
    assert shot_db.newest_version(session=session, show="pilot", sequence="sq010", code="never") is None
