"""A render's life: claimed, a failed attempt, re-queued, a successful attempt, finished, reused."""

from __future__ import annotations

import dataclasses
from datetime import timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

import shot_db
from shot_db.models import AttemptStatus, Render, RenderAttempt, RenderStatus

from .conftest import T0, Farm, sha


def _attempt(
    session: Session, key: str, *, at: int, error: str | None = None, worker: str = "actor-0"
) -> RenderAttempt:
    start = T0 + timedelta(seconds=at)
    return shot_db.record_attempt(
        session=session, render_key=key, worker=worker, node="node-a", started_at=start,
        finished_at=start + timedelta(seconds=2.5), error=error, model_loads=1, flow_run_id="run-1",
    )


def test_failed_then_requeued_then_finished(session: Session, farm: Farm) -> None:
    with session.begin():
        shot = farm.shot(session)
        spec = farm.spec(farm.keyframe(session, "a"), farm.keyframe(session, "b"))
        render = shot_db.claim_render(session=session, spec=spec, shot=shot, frame_a=0, frame_b=3, flow_run_id="run-1")
        assert render.status is RenderStatus.running and render.inbetweens == 2
        assert shot_db.find_finished_render(session=session, render_key=spec.render_key) is None
    with session.begin():
        _attempt(session, spec.render_key, at=0, error="worker died", worker="actor-0")
        failed = shot_db.fail_render(session=session, render_key=spec.render_key, error="worker died")
        assert failed.status is RenderStatus.failed and failed.worker == "actor-0"
    with session.begin():  # the next batch re-queues the pair: same row, status moves on
        again = shot_db.claim_render(session=session, spec=spec, shot=shot, frame_a=0, frame_b=3, flow_run_id="run-2")
        assert again.id == render.id and again.status is RenderStatus.running and again.error is None
        _attempt(session, spec.render_key, at=60, worker="actor-1")
        done = shot_db.finish_render(
            session=session, render_key=spec.render_key, output_dir="/out/store/renders/k",
            frame_hashes=[sha("f", 1), sha("f", 2)], meta={"padding": [0, 16]},
        )
    assert done.status is RenderStatus.finished
    assert (done.worker, done.started_at, done.seconds) == ("actor-1", T0 + timedelta(seconds=60), 2.5)
    assert done.flow_run_id == "run-2" and done.meta == {"padding": [0, 16]}
    attempts = session.scalars(
        select(RenderAttempt).where(RenderAttempt.render_id == render.id).order_by(RenderAttempt.attempt)
    ).all()
    assert [(a.attempt, a.status, a.worker) for a in attempts] == [
        (1, AttemptStatus.failed, "actor-0"),
        (2, AttemptStatus.ok, "actor-1"),
    ]
    assert shot_db.find_finished_render(session=session, render_key=spec.render_key) is done
    reused = shot_db.claim_render(session=session, spec=spec, shot=farm.shot(session), frame_a=5, frame_b=8)
    assert reused is done and reused.status is RenderStatus.finished and (reused.frame_a, reused.frame_b) == (0, 3)


def test_at_most_one_successful_attempt(session: Session, farm: Farm) -> None:
    shot = farm.shot(session)
    spec = farm.spec(farm.keyframe(session, "a"), farm.keyframe(session, "b"))
    render = shot_db.claim_render(session=session, spec=spec, shot=shot, frame_a=0, frame_b=3)
    _attempt(session, spec.render_key, at=0)
    with pytest.raises(shot_db.ShotDBError, match="already has a successful attempt"):
        _attempt(session, spec.render_key, at=10)
    with pytest.raises(shot_db.ShotDBError, match="has a successful attempt; finish it instead"):
        shot_db.fail_render(session=session, render_key=spec.render_key, error="x")
    # The database itself refuses a second ok attempt, whatever the code does.
    with pytest.raises(IntegrityError), session.begin_nested():
        session.add(
            RenderAttempt(render_id=render.id, attempt=9, worker="w", node="n", started_at=T0, finished_at=T0,
                          status=AttemptStatus.ok)
        )


def test_finish_needs_a_successful_attempt_and_every_frame(session: Session, farm: Farm) -> None:
    shot = farm.shot(session)
    spec = farm.spec(farm.keyframe(session, "a"), farm.keyframe(session, "b"), n=3)
    shot_db.claim_render(session=session, spec=spec, shot=shot, frame_a=0, frame_b=4)
    frames = [sha("f", i) for i in range(3)]
    with pytest.raises(shot_db.ShotDBError, match="no successful attempt recorded"):
        shot_db.finish_render(session=session, render_key=spec.render_key, output_dir="/o", frame_hashes=frames)
    _attempt(session, spec.render_key, at=0)
    with pytest.raises(shot_db.ShotDBError, match="frame_hashes: 2 given for 3 in-betweens"):
        shot_db.finish_render(session=session, render_key=spec.render_key, output_dir="/o", frame_hashes=frames[:2])
    shot_db.finish_render(session=session, render_key=spec.render_key, output_dir="/o", frame_hashes=frames)
    with pytest.raises(shot_db.ShotDBError, match="is finished, not running"):
        shot_db.finish_render(session=session, render_key=spec.render_key, output_dir="/o", frame_hashes=frames)
    with pytest.raises(shot_db.ShotDBError, match="is finished, not running"):
        _attempt(session, spec.render_key, at=100, error="late")


def test_same_key_with_other_inputs_is_refused(session: Session, farm: Farm) -> None:
    shot = farm.shot(session)
    spec = farm.spec(farm.keyframe(session, "a"), farm.keyframe(session, "b"))
    shot_db.claim_render(session=session, spec=spec, shot=shot, frame_a=0, frame_b=3)
    other = dataclasses.replace(spec, seed=8)
    with pytest.raises(shot_db.ShotDBError, match="seed: 8 given, 7 recorded under the same render key"):
        shot_db.claim_render(session=session, spec=other, shot=shot, frame_a=0, frame_b=3)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"times": ()}, "times: \\(\\) must be one or more numbers in \\(0, 1\\)"),
        ({"times": (0.5, 1.0)}, "must be one or more numbers in"),
        ({"render_key": "nope"}, "render_key: 'nope' is not a sha256"),
        ({"keyframe_b": sha("never recorded")}, "keyframe_b_hash: keyframe .* not recorded yet"),
        ({"params": {"x": object()}}, "params: not JSON-serialisable"),
        ({"seed": 2**64}, "seed: .* must be a 64-bit integer"),
    ],
)
def test_bad_render_specs_name_the_field(session: Session, farm: Farm, change: dict[str, object], message: str) -> None:
    shot = farm.shot(session)
    spec = dataclasses.replace(farm.spec(farm.keyframe(session, "a"), farm.keyframe(session, "b")), **change)
    with pytest.raises(shot_db.ShotDBError, match=message):
        shot_db.claim_render(session=session, spec=spec, shot=shot, frame_a=0, frame_b=3)


def test_attempts_need_aware_times_and_a_claimed_render(session: Session, farm: Farm) -> None:
    shot = farm.shot(session)
    spec = farm.spec(farm.keyframe(session, "a"), farm.keyframe(session, "b"))
    with pytest.raises(shot_db.ShotDBError, match="not in the shot DB; claim_render first"):
        _attempt(session, spec.render_key, at=0)
    shot_db.claim_render(session=session, spec=spec, shot=shot, frame_a=0, frame_b=3)
    with pytest.raises(shot_db.ShotDBError, match="started_at: .* must be a timezone-aware datetime"):
        shot_db.record_attempt(session=session, render_key=spec.render_key, worker="w", node="n",
                               started_at=T0.replace(tzinfo=None), finished_at=T0)
    with pytest.raises(shot_db.ShotDBError, match="finished_at: .* is before started_at"):
        shot_db.record_attempt(session=session, render_key=spec.render_key, worker="w", node="n",
                               started_at=T0, finished_at=T0 - timedelta(seconds=1))
    assert session.scalars(select(Render.status)).all() == [RenderStatus.running]
