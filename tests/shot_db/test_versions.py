"""Shot versions: numbered per shot, no new version for the same assembly key, and no duplicate or lost
version when batches race on one shot."""

from __future__ import annotations

import threading
from dataclasses import replace
from collections import Counter
from pathlib import Path

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

import shot_db
from shot_db.models import ShotVersion, ShotVersionFrame
from shot_db.records import VersionPair

from .conftest import Farm, sha


def test_versions_count_up_and_same_assembly_key_reuses_the_latest(session: Session, farm: Farm) -> None:
    with session.begin():
        shot = farm.shot(session, "sh0010")
        assert shot_db.latest_version(session=session, shot=shot) is None
        v1 = farm.simple_version(session, shot, tag="lut-a")
    assert v1.created and v1.version.number == 1 and v1.version.frame_count == 4
    assert [(o.kind, o.position) for o in v1.version.outputs] == [("png", 0), ("h264", 1)]
    assert v1.version.outputs[0].path.endswith("pilot/sq010/sh0010/v001/png")
    with session.begin():
        same = farm.simple_version(session, shot, tag="lut-a")
    assert not same.created and same.version.id == v1.version.id
    with session.begin():
        v2 = farm.simple_version(session, shot, tag="lut-b")
        back = farm.simple_version(session, shot, tag="lut-a")  # differs from the latest (v2): a new version
    assert (v2.created, v2.version.number, back.created, back.version.number) == (True, 2, True, 3)
    assert back.version.outputs[1].path.endswith("v003/sh0010_v003.mp4")
    assert shot_db.latest_version(session=session, shot=shot) is back.version
    other = farm.shot(session, "sh0020")
    assert farm.simple_version(session, other).version.number == 1  # numbering is per shot


def test_version_numbers_are_unique_in_the_database(session: Session, farm: Farm) -> None:
    shot = farm.shot(session)
    version = farm.simple_version(session, shot).version
    with pytest.raises(IntegrityError), session.begin_nested():
        session.add(
            ShotVersion(shot_id=shot.id, number=version.number, assembly_key=sha("other"), frame_count=1, fps=24,
                        sidecar_path="/s", settings={})
        )


def test_frames_record_their_source(session: Session, farm: Farm) -> None:
    shot = farm.shot(session)
    version = farm.simple_version(session, shot).version
    frames = session.scalars(
        select(ShotVersionFrame).where(ShotVersionFrame.version_id == version.id).order_by(ShotVersionFrame.number)
    ).all()
    assert [(f.number, f.keyframe_hash is not None, f.inbetween) for f in frames] == [
        (1, True, None), (2, False, 1), (3, False, 2), (4, True, None)
    ]
    assert frames[1].render_id == frames[2].render_id is not None


def _inputs(session: Session, farm: Farm) -> tuple[object, str, str, str]:
    shot = farm.shot(session)
    a, b = farm.keyframe(session, "a"), farm.keyframe(session, "b")
    return shot, a, b, farm.render(session, shot, farm.spec(a, b), 0, 3)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ("unfinished", "renders\\[0\\]: render .* is running, not finished"),
        ("unknown_keyframe", "keyframes: .* not recorded yet"),
        ("frame_from_elsewhere", "frames\\[1\\].render_key: .* is not one of this version's renders"),
        ("inbetween_out_of_range", "frames\\[1\\].inbetween: 3 must be in 1..2"),
        ("no_source", "frames\\[1\\]: give either render_key \\+ inbetween or keyframe_hash"),
        ("bad_pair", "renders\\[0\\]: need 0 <= frame_a < frame_b"),
        ("no_outputs", "outputs.outputs: a version needs at least one output"),
        ("output_twice", "outputs.outputs: each kind once, got \\['png', 'png'\\]"),
        ("output_unhashed", "outputs\\[1\\].sha256: None is not a sha256"),
        ("output_kind", "outputs\\[1\\].kind: 'H.264' must be a format name"),
        ("output_frames", "outputs\\[0\\].frame_count: 0 must be an integer >= 1"),
    ],
)
def test_bad_versions_name_the_field(session: Session, farm: Farm, change: str, message: str) -> None:
    shot, a, b, key = _inputs(session, farm)
    pairs, keyframes = [VersionPair(key, 0, 3)], {0: a, 3: b}
    layout: list[tuple[str, object]] = [("key", a), ("render", (key, 1)), ("render", (key, 2)), ("key", b)]
    if change == "unfinished":
        spec = farm.spec(a, b, seed=99)
        shot_db.claim_render(session=session, spec=spec, shot=shot, frame_a=3, frame_b=6)  # type: ignore[arg-type]
        pairs = [VersionPair(spec.render_key, 3, 6)]
    elif change == "unknown_keyframe":
        keyframes = {0: a, 3: sha("never")}
    elif change == "frame_from_elsewhere":
        layout[1] = ("render", (sha("elsewhere"), 1))
    elif change == "inbetween_out_of_range":
        layout[1] = ("render", (key, 3))
    elif change == "bad_pair":
        pairs = [VersionPair(key, 3, 3)]
    outputs = farm.outputs(shot, layout)(1)  # type: ignore[arg-type]
    if change == "no_source":
        frames = list(outputs.frames)
        frames[1] = type(frames[1])(path=frames[1].path, pixel_hash=frames[1].pixel_hash)
        outputs = replace(outputs, frames=tuple(frames))
    png, mp4 = outputs.outputs
    files = {
        "no_outputs": (), "output_twice": (png, png), "output_unhashed": (png, replace(mp4, sha256=None)),
        "output_kind": (png, replace(mp4, kind="H.264")), "output_frames": (replace(png, frame_count=0), mp4),
    }  # fmt: skip
    if change in files:
        outputs = replace(outputs, outputs=files[change])
    with pytest.raises(shot_db.ShotDBError, match=message):
        shot_db.create_version(
            session=session, shot=shot, assembly_key=sha("asm"), renders=pairs,  # type: ignore[arg-type]
            keyframes=keyframes, outputs=outputs,
        )


def test_batches_racing_on_one_shot_make_no_duplicate_and_lose_no_version(fresh_engine: Engine, tmp_path: Path) -> None:
    """Several threads, each its own session and transaction, create versions of one shot at once."""
    Session = shot_db.make_sessionmaker(fresh_engine)
    farm = Farm(tmp_path / "out")
    with Session() as s, s.begin():
        shot = farm.shot(s, "sh0010")
        a, b = farm.keyframe(s, "a"), farm.keyframe(s, "b")
        key = farm.render(s, shot, farm.spec(a, b), 0, 3)
    layout = [("key", a), ("render", (key, 1)), ("render", (key, 2)), ("key", b)]
    threads, rounds = 4, 5
    results: list[tuple[int, bool, str]] = []
    errors: list[BaseException] = []
    barrier = threading.Barrier(threads)

    def batch(worker: int) -> None:
        try:
            for r in range(rounds):
                barrier.wait()  # every round, all threads reach create_version together
                for tag in (f"w{worker}-r{r}", f"same-r{r}"):  # a key of its own, then one all threads share
                    with Session() as s, s.begin():
                        made = shot_db.create_version(
                            session=s, shot=shot, assembly_key=sha("asm", tag), renders=[VersionPair(key, 0, 3)],
                            keyframes={0: a, 3: b}, outputs=farm.outputs(shot, layout, tag),
                        )
                        results.append((made.version.number, made.created, made.version.assembly_key))
        except BaseException as exc:  # noqa: BLE001 - collected and asserted below
            errors.append(exc)
            barrier.abort()

    workers = [threading.Thread(target=batch, args=(i,)) for i in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    assert errors == []
    with Session() as s:
        rows = s.execute(select(ShotVersion.number, ShotVersion.assembly_key).order_by(ShotVersion.number)).all()
    numbers = [n for n, _ in rows]
    assert numbers == list(range(1, len(rows) + 1))  # no duplicate, no gap
    created = [(n, k) for n, made, k in results if made]
    assert sorted(created) == [tuple(r) for r in rows]  # every version some batch made is there: none lost
    own = Counter(k for _, made, k in results if made)
    for worker in range(threads):
        for r in range(rounds):
            assert own[sha("asm", f"w{worker}-r{r}")] >= 1  # each batch's own version was recorded
    for (_, k1), (_, k2) in zip(rows, rows[1:]):
        assert k1 != k2  # never two identical versions in a row
