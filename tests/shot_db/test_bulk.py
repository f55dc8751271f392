"""A whole batch's claims and results in a few statements, by the same state machine as one render's."""

from __future__ import annotations

import dataclasses
import threading
from datetime import timedelta

import pytest
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

import shot_db
from shot_db.models import AttemptStatus, Render, RenderAttempt, RenderStatus
from shot_db.records import AttemptRecord, RenderClaim, RenderOutcome

from .conftest import T0, Farm, sha


def _attempt(at: int, error: str | None = None, worker: str = "actor-0") -> AttemptRecord:
    start = T0 + timedelta(seconds=at)
    return AttemptRecord(worker, "node-a", start, start + timedelta(seconds=2), error, model_loads=1)


def _ok(farm: Farm, key: str, n: int = 2, *attempts: AttemptRecord) -> RenderOutcome:
    hashes = tuple(sha("frame", key, i) for i in range(n))
    tries = attempts or (_attempt(0),)
    return RenderOutcome(key, tries, str(farm.root / "renders" / key), hashes, {"padding": [0, 8]})


def test_claim_and_record_a_batch(session: Session, farm: Farm) -> None:
    with session.begin():
        shot = farm.shot(session)
        keys = [farm.keyframe(session, i) for i in range(4)]
        specs = [farm.spec(a, b) for a, b in zip(keys, keys[1:])]
        claims = [RenderClaim(s, shot.id, 2 * i, 2 * i + 3) for i, s in enumerate(specs)]
        claimed = shot_db.claim_renders(session=session, claims=claims + claims[:1], flow_run_id="run-1")
        assert sorted(claimed) == sorted(s.render_key for s in specs)
        assert all(r.status is RenderStatus.running and r.flow_run_id == "run-1" for r in claimed.values())
    with session.begin():
        outcomes = [
            _ok(farm, specs[0].render_key),
            _ok(farm, specs[1].render_key, 2, _attempt(0, "worker died"), _attempt(5, worker="actor-1")),
            RenderOutcome(specs[2].render_key, (_attempt(0, "NaN output"),), error="NaN output"),
        ]
        assert shot_db.record_outcomes(session=session, outcomes=outcomes, flow_run_id="run-1") == []
    with session.begin():
        rows = {r.render_key: r for r in session.scalars(select(Render))}
        assert rows[specs[0].render_key].status is RenderStatus.finished
        second = rows[specs[1].render_key]
        assert (second.status, second.worker, second.seconds) == (RenderStatus.finished, "actor-1", 2.0)
        tries = session.scalars(select(RenderAttempt).where(RenderAttempt.render_id == second.id).order_by(RenderAttempt.attempt)).all()
        assert [(t.attempt, t.status) for t in tries] == [(1, AttemptStatus.failed), (2, AttemptStatus.ok)]
        assert (rows[specs[2].render_key].status, rows[specs[2].render_key].error) == (RenderStatus.failed, "NaN output")
    with session.begin():  # the next batch: the failed pair is claimed again, the finished ones stay finished
        again = shot_db.claim_renders(session=session, claims=claims, flow_run_id="run-2")
        assert again[specs[2].render_key].status is RenderStatus.running
        assert again[specs[0].render_key].status is RenderStatus.finished
        late = [_ok(farm, specs[0].render_key), _ok(farm, specs[2].render_key, 2, _attempt(60))]
        assert shot_db.record_outcomes(session=session, outcomes=late, flow_run_id="run-2") == [specs[0].render_key]
        attempts = session.scalars(
            select(RenderAttempt.attempt).join(Render).where(Render.render_key == specs[2].render_key).order_by(RenderAttempt.attempt)
        ).all()
        assert attempts == [1, 2]  # numbering continues across batches


@pytest.mark.parametrize(
    ("outcome", "message"),
    [
        (lambda f, k: _ok(f, k, 3), "frame_hashes: 3 given for 2 in-betweens"),
        (lambda f, k: RenderOutcome(k, (_attempt(0), _attempt(5)), "x", (sha(1), sha(2))), "exactly one ok attempt"),
        (lambda f, k: RenderOutcome(k, (_attempt(0, "boom"),), "x", (sha(1), sha(2))), "exactly one ok attempt"),
        (lambda f, k: RenderOutcome(k, (), "x", (sha(1), sha(2))), "needs its successful attempt"),
        (lambda f, k: RenderOutcome(sha("unknown"), (_attempt(0),), "x", (sha(1), sha(2))), "claim_render first"),
    ],
)
def test_bad_outcomes_name_the_render(session: Session, farm: Farm, outcome: object, message: str) -> None:
    with session.begin():
        shot = farm.shot(session)
        spec = farm.spec(farm.keyframe(session, "a"), farm.keyframe(session, "b"))
        shot_db.claim_renders(session=session, claims=[RenderClaim(spec, shot.id, 0, 3)])
        with pytest.raises(shot_db.ShotDBError, match=message):
            shot_db.record_outcomes(session=session, outcomes=[outcome(farm, spec.render_key)])  # type: ignore[operator]


def test_claims_check_keyframes_frames_and_inputs(session: Session, farm: Farm) -> None:
    with session.begin():
        shot = farm.shot(session)
        spec = farm.spec(farm.keyframe(session, "a"), sha("never recorded"))
        with pytest.raises(shot_db.ShotDBError, match="keyframe_b_hash: keyframe .* not recorded yet"):
            shot_db.claim_renders(session=session, claims=[RenderClaim(spec, shot.id, 0, 3)])
        with pytest.raises(shot_db.ShotDBError, match="need 0 <= frame_a < frame_b, got 3, 3"):
            shot_db.claim_renders(session=session, claims=[RenderClaim(spec, shot.id, 3, 3)])
        good = farm.spec(farm.keyframe(session, "a"), farm.keyframe(session, "b"))
        shot_db.claim_renders(session=session, claims=[RenderClaim(good, shot.id, 0, 3)])
        other = RenderClaim(dataclasses.replace(good, seed=99), shot.id, 0, 3)  # same key, other inputs
        with pytest.raises(shot_db.ShotDBError, match="seed: 99 given, 7 recorded under the same render key"):
            shot_db.claim_renders(session=session, claims=[other])


def test_racing_claims_give_one_row_per_key(fresh_engine: Engine, farm: Farm) -> None:
    sessions = shot_db.make_sessionmaker(fresh_engine)
    with sessions() as s, s.begin():
        shot_id = farm.shot(s).id
        keys = [farm.keyframe(s, i) for i in range(30)]
    claims = [RenderClaim(farm.spec(a, b), shot_id, 2 * i, 2 * i + 2) for i, (a, b) in enumerate(zip(keys, keys[1:]))]
    errors: list[BaseException] = []
    barrier = threading.Barrier(4)

    def claim(part: list[RenderClaim]) -> None:
        try:
            barrier.wait()
            with sessions() as s, s.begin():
                shot_db.claim_renders(session=s, claims=part, flow_run_id=threading.current_thread().name)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    # overlapping halves: every key is claimed by two threads at once
    parts = [claims[::2], claims[1::2], claims[:15], claims[14:]]
    threads = [threading.Thread(target=claim, args=(p,)) for p in parts]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    with sessions() as s:
        assert s.scalar(select(func.count()).select_from(Render)) == len(claims)


def test_upsert_keyframes_in_one_go(session: Session, farm: Farm) -> None:
    from shot_db.models import Keyframe
    from shot_db.records import KeyframeRecord

    a, b = sha("a"), sha("b")
    with session.begin():
        shot_db.upsert_keyframe(session=session, pixel_hash=a, width=64, height=48, path=farm.root / "old.png")
        shot_db.upsert_keyframes(session=session, keyframes=[
            KeyframeRecord(a, 64, 48, str(farm.root / "a.png")), KeyframeRecord(b, 64, 48, str(farm.root / "b.png")),
            KeyframeRecord(b, 64, 48, str(farm.root / "b.png")),
        ])
        rows = {k.pixel_hash: k for k in session.scalars(select(Keyframe))}
        assert sorted(rows) == sorted([a, b]) and rows[a].path == str(farm.root / "a.png")  # path follows
        with pytest.raises(shot_db.ShotDBError, match="size: 32x48 given, 64x48 recorded"):
            shot_db.upsert_keyframes(session=session, keyframes=[KeyframeRecord(a, 32, 48, "x.png")])
        with pytest.raises(shot_db.ShotDBError, match="width: 0 must be a positive integer"):
            shot_db.upsert_keyframes(session=session, keyframes=[KeyframeRecord(sha("c"), 0, 48, "x.png")])
