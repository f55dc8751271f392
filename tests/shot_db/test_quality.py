"""Quality decisions in the shot DB: the scores a re-run replays a decision from, the decision recorded
once per pair and policy, and the lineage of a frame naming the decision that chose its render."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from sqlalchemy.orm import Session

import shot_db
from shot_db import ShotDBError
from shot_db.records import AttemptRecord, QADecisionRecord, QATryRecord, RenderOutcome, VersionPair

from .conftest import T0, Farm, sha

QA_GHOST = {"problems": [], "flags": ["frame 0001 (t=0.333): ghost 0.31 > 0.1"],
            "frames": [{"index": 1, "t": 0.333, "ghost": 0.31}], "seconds": 0.05}
QA_CLEAN = {"problems": [], "flags": [], "frames": [{"index": 1, "t": 0.333, "ghost": 0.01}], "seconds": 0.05}


def _finish(session: Session, farm: Farm, shot: shot_db.models.Shot, seed: int, qa: object | None) -> str:
    """A finished render of the shot's pair (keyframes a, b at 0 and 3) with `seed` and QA record `qa`."""
    a, b = farm.keyframe(session, "a"), farm.keyframe(session, "b")
    spec = farm.spec(a, b, seed=seed)
    shot_db.claim_render(session=session, spec=spec, shot=shot, frame_a=0, frame_b=3, flow_run_id="run-1")
    meta = {"qa": qa} if qa is not None else {}
    attempt = AttemptRecord("actor-0", "node-a", T0, T0 + timedelta(seconds=2), None, 1)
    shot_db.record_outcome(session=session, outcome=RenderOutcome(
        spec.render_key, (attempt,), f"/out/store/renders/{spec.render_key}",
        tuple(sha("frame", spec.render_key, i) for i in range(2)), meta,
    ))
    return spec.render_key


def _decision(shot_id: uuid.UUID, first: str, accepted: str, *, outcome: str = "retried") -> QADecisionRecord:
    return QADecisionRecord(
        render_key=first, accepted_key=accepted, policy_hash=sha("policy", "retry"),
        policy={"on_fail": "retry", "retries": 2, "thresholds": {"ghost": 0.1}}, outcome=outcome,
        reason="frame 0001 (t=0.333): ghost 0.31 > 0.1", shot_id=shot_id,
        tries=(QATryRecord(first, ("frame 0001 (t=0.333): ghost 0.31 > 0.1",), 3.1), QATryRecord(accepted, (), 0.1)),
    )


def test_finished_quality_is_the_recorded_scores_of_finished_renders(session: Session, farm: Farm) -> None:
    shot = farm.shot(session)
    flagged, unscored = _finish(session, farm, shot, 1, QA_GHOST), _finish(session, farm, shot, 2, None)
    broken = _finish(session, farm, shot, 3, {"error": "ValueError: scoring failed"})
    a, b = farm.keyframe(session, "a"), farm.keyframe(session, "b")
    running = farm.spec(a, b, seed=4)
    shot_db.claim_render(session=session, spec=running, shot=shot, frame_a=0, frame_b=3)
    found = shot_db.finished_quality(session=session, keys=[flagged, unscored, broken, running.render_key, sha("x")])
    assert found == {flagged: QA_GHOST, unscored: None, broken: None}


def test_a_decision_is_recorded_once_and_named_in_the_lineage_of_its_frames(session: Session, farm: Farm) -> None:
    shot = farm.shot(session)
    first, retry = _finish(session, farm, shot, 7, QA_GHOST), _finish(session, farm, shot, 90210, QA_CLEAN)
    decision = _decision(shot.id, first, retry)
    assert shot_db.record_decisions(session=session, decisions=[decision], flow_run_id="run-2") == 1
    assert shot_db.record_decisions(session=session, decisions=[decision], flow_run_id="run-3") == 0  # a re-run

    a, b = farm.keyframe(session, "a"), farm.keyframe(session, "b")
    layout = [("key", a), ("render", (retry, 1)), ("render", (retry, 2)), ("key", b)]
    shot_db.create_version(
        session=session, shot=shot, assembly_key=sha("assembly", "qa"), renders=[VersionPair(retry, 0, 3)],
        keyframes={0: a, 3: b}, outputs=farm.outputs(shot, layout, "qa"), settings={}, flow_run_id="run-2",
    )
    (found,) = shot_db.lineage(session=session, target=sha("out", "qa", "render", (retry, 1)))
    qa = found.render.qa if found.render else None
    assert qa is not None and qa.outcome == "retried" and qa.flow_run_id == "run-2"
    assert (qa.render_key, qa.accepted_key) == (first, retry)
    assert qa.reason == "frame 0001 (t=0.333): ghost 0.31 > 0.1" and qa.policy["on_fail"] == "retry"
    assert [(t.number, t.render_key, t.seed, t.backend, t.severity) for t in qa.tries] == [
        (1, first, 7, "rife", 3.1), (2, retry, 90210, "rife", 0.1)
    ]
    assert qa.tries[0].flags == ("frame 0001 (t=0.333): ghost 0.31 > 0.1",) and qa.tries[1].flags == ()


def test_a_render_no_decision_chose_has_none(session: Session, farm: Farm) -> None:
    shot = farm.shot(session)
    farm.simple_version(session, shot)
    (found,) = shot_db.lineage(session=session, target=sha("out", "", "key", farm.keyframe(session, (shot.code, "a"))))
    assert [r.qa for r in found.version.renders] == [None]


GONE = sha("gone")


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"accepted_key": GONE}, "accepted_key: .* is not one of its tries"),
        ({"outcome": "melted"}, "outcome: 'melted' is not one of flagged, retried, fell-back"),
        ({"tries": ()}, "the first try must be the render"),
        ({"accepted_key": GONE, "tries": "first, gone"}, r"tries\[1\]: render .* is not in the shot DB"),
    ],
)
def test_bad_decisions_are_refused_naming_the_field(
    session: Session, farm: Farm, change: dict[str, object], message: str
) -> None:
    shot = farm.shot(session)
    first, retry = _finish(session, farm, shot, 7, QA_GHOST), _finish(session, farm, shot, 8, QA_CLEAN)
    decision = _decision(shot.id, first, retry)
    if change.get("tries") == "first, gone":
        change = {**change, "tries": (QATryRecord(first, (), 2.0), QATryRecord(GONE, (), 0.0))}
    bad = QADecisionRecord(**{**decision.__dict__, **change})
    with pytest.raises(ShotDBError, match=message):
        shot_db.record_decisions(session=session, decisions=[bad])
