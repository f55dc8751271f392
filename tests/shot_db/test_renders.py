"""A render's life, one state machine: claimed, failed, re-queued, finished with its one ok attempt, reused."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from datetime import timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

import shot_db
from shot_db.models import AttemptStatus, Render, RenderAttempt, RenderStatus
from shot_db.records import AttemptRecord, RenderOutcome

from .conftest import T0, Farm, sha


def _try(at: int, error: str | None = None, worker: str = "actor-0") -> AttemptRecord:
    start = T0 + timedelta(seconds=at)
    return AttemptRecord(worker, "node-a", start, start + timedelta(seconds=2.5), error, model_loads=1)


def _done(key: str, *attempts: AttemptRecord, n: int = 2) -> RenderOutcome:
    frames = tuple(sha("f", i) for i in range(1, n + 1))
    return RenderOutcome(key, attempts, "/out/store/renders/k", frames, {"padding": [0, 16]})


def _failed(key: str, *attempts: AttemptRecord, error: str = "worker died") -> RenderOutcome:
    return RenderOutcome(key, attempts, error=error)


def test_failed_then_requeued_then_finished(session: Session, farm: Farm) -> None:
    with session.begin():
        shot = farm.shot(session)
        spec = farm.spec(farm.keyframe(session, "a"), farm.keyframe(session, "b"))
        render = shot_db.claim_render(session=session, spec=spec, shot=shot, frame_a=0, frame_b=3, flow_run_id="run-1")
        assert render.status is RenderStatus.running and render.inbetweens == 2
        assert shot_db.find_finished_render(session=session, render_key=spec.render_key) is None
    with session.begin():
        failed = _failed(spec.render_key, _try(0, "worker died", worker="actor-0"))
        assert shot_db.record_outcome(session=session, outcome=failed, flow_run_id="run-1")
        assert render.status is RenderStatus.failed and render.worker == "actor-0" and render.error == "worker died"
    with session.begin():  # the next batch re-queues the pair: same row, status moves on
        again = shot_db.claim_render(session=session, spec=spec, shot=shot, frame_a=0, frame_b=3, flow_run_id="run-2")
        assert again.id == render.id and again.status is RenderStatus.running and again.error is None
        assert shot_db.record_outcome(session=session, outcome=_done(spec.render_key, _try(60, worker="actor-1")),
                                      flow_run_id="run-2")
    done = shot_db.find_finished_render(session=session, render_key=spec.render_key)
    assert done is render and done.status is RenderStatus.finished
    assert (done.worker, done.started_at, done.seconds) == ("actor-1", T0 + timedelta(seconds=60), 2.5)
    assert done.flow_run_id == "run-2" and done.meta == {"padding": [0, 16]}
    attempts = session.scalars(
        select(RenderAttempt).where(RenderAttempt.render_id == render.id).order_by(RenderAttempt.attempt)
    ).all()
    assert [(a.attempt, a.status, a.worker, a.flow_run_id) for a in attempts] == [
        (1, AttemptStatus.failed, "actor-0", "run-1"),
        (2, AttemptStatus.ok, "actor-1", "run-2"),
    ]
    reused = shot_db.claim_render(session=session, spec=spec, shot=farm.shot(session), frame_a=5, frame_b=8)
    assert reused is done and reused.status is RenderStatus.finished and (reused.frame_a, reused.frame_b) == (0, 3)


def test_a_finished_render_is_left_as_it_was_finished(session: Session, farm: Farm) -> None:
    shot = farm.shot(session)
    spec = farm.spec(farm.keyframe(session, "a"), farm.keyframe(session, "b"))
    render = shot_db.claim_render(session=session, spec=spec, shot=shot, frame_a=0, frame_b=3)
    assert shot_db.record_outcome(session=session, outcome=_done(spec.render_key, _try(0)))
    # another batch rendered the same key: its outcome is skipped, the first one's frames stay
    assert not shot_db.record_outcome(session=session, outcome=_done(spec.render_key, _try(10, worker="actor-9")))
    assert not shot_db.record_outcome(session=session, outcome=_failed(spec.render_key, _try(20, "late")))
    assert (render.status, render.worker) == (RenderStatus.finished, "actor-0")
    assert session.scalars(select(RenderAttempt.attempt).where(RenderAttempt.render_id == render.id)).all() == [1]
    # The database itself refuses a second ok attempt, whatever the code does.
    with pytest.raises(IntegrityError), session.begin_nested():
        session.add(
            RenderAttempt(render_id=render.id, attempt=9, worker="w", node="n", started_at=T0, finished_at=T0,
                          status=AttemptStatus.ok)
        )


def test_a_render_no_worker_tried_fails_without_attempts(session: Session, farm: Farm) -> None:
    shot = farm.shot(session)
    spec = farm.spec(farm.keyframe(session, "a"), farm.keyframe(session, "b"))
    render = shot_db.claim_render(session=session, spec=spec, shot=shot, frame_a=0, frame_b=3)
    outcome = _failed(spec.render_key, error="no live render workers left (worker died)")
    assert shot_db.record_outcome(session=session, outcome=outcome)
    assert (render.status, render.error, render.worker) == (RenderStatus.failed, outcome.error, None)
    assert render.finished_at is not None


@pytest.mark.parametrize(
    ("outcome", "message"),
    [
        (lambda k: _done(k), "a finished render needs its successful attempt"),
        (lambda k: _done(k, _try(0), _try(5, "late")), "exactly one ok attempt, its last"),
        (lambda k: _done(k, _try(0), _try(5)), "exactly one ok attempt"),
        (lambda k: _failed(k, _try(0)), "a failed one none"),
        (lambda k: _done(k, _try(0), n=3), "frame_hashes: 3 given for 2 in-betweens"),
        (lambda k: RenderOutcome(k, (_try(0),), None, (sha(1), sha(2))), "output_dir: a finished render needs its folder"),
    ],
)
def test_outcomes_are_checked_and_name_the_render(
    session: Session, farm: Farm, outcome: Callable[[str], RenderOutcome], message: str
) -> None:
    shot = farm.shot(session)
    spec = farm.spec(farm.keyframe(session, "a"), farm.keyframe(session, "b"))
    shot_db.claim_render(session=session, spec=spec, shot=shot, frame_a=0, frame_b=3)
    with pytest.raises(shot_db.ShotDBError, match=f"render {spec.render_key[:12]}.*{message}"):
        shot_db.record_outcome(session=session, outcome=outcome(spec.render_key))


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
        shot_db.record_outcome(session=session, outcome=_done(spec.render_key, _try(0)))
    shot_db.claim_render(session=session, spec=spec, shot=shot, frame_a=0, frame_b=3)
    naive = AttemptRecord("w", "n", T0.replace(tzinfo=None), T0)
    with pytest.raises(shot_db.ShotDBError, match="started_at: .* must be a timezone-aware datetime"):
        shot_db.record_outcome(session=session, outcome=_done(spec.render_key, naive))
    backwards = AttemptRecord("w", "n", T0, T0 - timedelta(seconds=1))
    with pytest.raises(shot_db.ShotDBError, match="finished_at: .* is before started_at"):
        shot_db.record_outcome(session=session, outcome=_done(spec.render_key, backwards))
    assert session.scalars(select(Render.status)).all() == [RenderStatus.running]
