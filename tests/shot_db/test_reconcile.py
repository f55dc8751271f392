"""What a dead run left, settled by the next: placing versions published (their folder is in place) or
taken back (it is not; the number is free again), dead batches and their running renders failed, staging
folders removed. Dead is gone from this host, or silent on any host for `dead_after_s`; a live run's rows
are never touched, and another host's run that beats is alive."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy.orm import Session

import shot_db
from shot_db.models import BatchRun, BatchStatus, Render, RenderStatus, Shot, ShotVersion, VersionStatus
from shot_db.records import NewVersion, VersionPair
from tasks import record
from tasks.owner import Owner
from tasks.publish import sweep_staging
from tooncrafter_model.store import shot_folder, version_staging

from .conftest import Farm, sha, silence


def _placing(session: Session, farm: Farm, shot: Shot, tag: object, owner: str) -> NewVersion:
    a, b = farm.keyframe(session, (shot.code, "a")), farm.keyframe(session, (shot.code, "b"))
    key = farm.render(session, shot, farm.spec(a, b), 0, 3)
    layout = [("key", a), ("render", (key, 1)), ("render", (key, 2)), ("key", b)]
    return shot_db.create_version(
        session=session, shot=shot, assembly_key=sha("assembly", shot.code, tag), renders=[VersionPair(key, 0, 3)],
        keyframes={0: a, 3: b}, outputs=farm.outputs(shot, layout, tag), owner=owner,
    )


def _numbers(session: Session, shot: Shot) -> list[int]:
    return [v.number for v in shot_db.shot_history(session=session, show=shot.show, sequence=shot.sequence, code=shot.code)]


def test_placing_versions_of_dead_owners_are_published_or_taken_back(session: Session, farm: Farm) -> None:
    shot, other = farm.shot(session), farm.shot(session)
    farm.simple_version(session, shot, tag=1)
    placed = _placing(session, farm, shot, 2, "dead-1").version
    lost = _placing(session, farm, shot, 3, "dead-2").version
    live = _placing(session, farm, other, 1, "alive").version
    assert (placed.number, lost.number, live.number) == (2, 3, 1)
    assert _numbers(session, shot) == [1] and _numbers(session, other) == []  # placing: nobody's history yet

    settled = shot_db.settle_dead_runs(
        session=session, is_dead=lambda owner: owner.startswith("dead"), in_place=lambda sidecar: sidecar == placed.sidecar_path
    )

    assert settled.published == (f"{shot.name} v002",) and settled.dropped == (f"{shot.name} v003",)
    assert _numbers(session, shot) == [1, 2] and session.get(ShotVersion, lost.id) is None
    assert session.get_one(ShotVersion, live.id).status is VersionStatus.placing  # alive: left alone
    assert _placing(session, farm, shot, 4, "alive").version.number == 3  # the number taken back is free again
    shot_db.publish_version(session=session, version_id=live.id)
    assert _numbers(session, other) == [1]


def test_a_dead_batch_and_its_running_renders_fail_a_live_ones_stay(session: Session, farm: Farm) -> None:
    shot = farm.shot(session)
    a, b, c = (farm.keyframe(session, x) for x in "abc")
    for run, owner, spec in (("run-dead", "dead-1", farm.spec(a, b)), ("run-live", "alive", farm.spec(b, c))):
        shot_db.begin_batch(session=session, flow_run_id=run, flow_name="render-batch", owner=owner)
        shot_db.claim_render(session=session, spec=spec, shot=shot, frame_a=0, frame_b=2, flow_run_id=run)

    settled = shot_db.settle_dead_runs(session=session, is_dead=lambda o: o.startswith("dead"), in_place=lambda _: False)

    assert (settled.batches, settled.renders) == (1, 1)
    batches = {r.flow_run_id: r.status for r in session.query(BatchRun)}
    assert batches == {"run-dead": BatchStatus.failed, "run-live": BatchStatus.running}
    renders = {r.flow_run_id: (r.status, r.error) for r in session.query(Render)}
    assert renders["run-live"] == (RenderStatus.running, None)
    assert renders["run-dead"][0] is RenderStatus.failed and "died" in (renders["run-dead"][1] or "")
    again = shot_db.claim_render(session=session, spec=farm.spec(a, b), shot=shot, frame_a=0, frame_b=2, flow_run_id="run-3")
    assert again.status is RenderStatus.running  # claimed again, it runs again


def test_a_run_on_another_host_silent_past_dead_after_s_is_settled_one_that_beats_is_not(fresh_url: str, farm: Farm) -> None:
    """Each owner, on a host this one cannot look into, runs a batch with a running render, two placing
    versions (one renamed into place, one not) and a staging folder; only the silent one's are settled."""
    silent, beating, old = (Owner("render-node-7", "b00tb00tb00t", pid, 4242) for pid in (101, 102, 103))
    with record.open_db(fresh_url, migrate=True) as db:
        left: dict[Owner, tuple[str, str, Path]] = {}
        with record.transaction(db) as s:
            for owner in (silent, beating, old):
                run = f"run-{owner.pid}"
                shot_db.begin_batch(session=s, flow_run_id=run, flow_name="render-batch", owner=owner.token)
                shot = farm.shot(s)
                a, b = farm.keyframe(s, (run, "a")), farm.keyframe(s, (run, "b"))
                shot_db.claim_render(session=s, spec=farm.spec(a, b), shot=shot, frame_a=0, frame_b=2, flow_run_id=run)
                placed, lost = (_placing(s, farm, shot, tag, owner.token).version for tag in (1, 2))
                Path(placed.sidecar_path).parent.mkdir(parents=True)
                Path(placed.sidecar_path).write_text("{}")  # renamed into place, not yet marked published
                staging = version_staging(shot_folder(farm.root, shot.show, shot.sequence, shot.code), owner.slug)
                staging.mkdir()
                left[owner] = (f"{shot.name} v{placed.number:03d}", f"{shot.name} v{lost.number:03d}", staging)
            silence(s, f"run-{silent.pid}", 601)  # its host lost power ten minutes ago
            silence(s, f"run-{beating.pid}", 5)
            silence(s, f"run-{old.pid}", None)  # begun before heartbeats: not known to be dead

        settled, dead = record.settle_dead_runs(db, dead_after_s=600)
        removed = sweep_staging([p.parent for _, _, p in left.values()], dead)

        assert settled.published == (left[silent][0],) and settled.dropped == (left[silent][1],)
        assert (settled.batches, settled.renders) == (1, 1)
        assert removed == [left[silent][2]]
        assert all(left[o][2].is_dir() for o in (beating, old))
        with record.transaction(db) as s:
            batches = {r.flow_run_id: r.status for r in s.query(BatchRun)}
            assert batches == {"run-101": BatchStatus.failed, "run-102": BatchStatus.running, "run-103": BatchStatus.running}
            renders = {r.flow_run_id: (r.status, r.error) for r in s.query(Render).filter(Render.flow_run_id != "run-1")}
            assert renders["run-101"] == (RenderStatus.failed, f"its batch died (process {silent.token})")
            assert renders["run-102"] == renders["run-103"] == (RenderStatus.running, None)
            placing = sorted(v.owner or "" for v in s.query(ShotVersion).filter(ShotVersion.status == VersionStatus.placing))
            assert placing == sorted([beating.token] * 2 + [old.token] * 2)
