"""The Prefect tasks: each a thin wrapper adding run policy (retries, names, tags) to a plain function.

Per-pair work never becomes a Prefect task (about 10 ms each): pairs go to the Ray actors directly, and
progress is reported at DEBUG level on the `toonfarm.progress` logger, which the CLI turns into progress
bars (and which stays out of Prefect's console log otherwise).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from prefect import State, Task, get_run_logger, task
from prefect.client.schemas.objects import TaskRun
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE
from prefect.futures import PrefectFuture

from cluster import PairResult
from shot_db import ShotDB
from tasks.detect import ShotPlan, detect_shot
from tasks.publish import ShotOutcome, publish_shot, sweep_staging
from tasks.qa import QALog
from tasks.record import ResultRecorder, finished_renders, record_plans, settle_dead_runs
from tasks.render import ShotRenders, ShotWork, plan_work, render_shots
from tasks.dashboard import Dashboard, artifact_key
from tasks.report import BatchReport, report_markdown
from tasks.settings import Limits, Settings
from tasks.shotlist import Shot, load_shotlist
from tasks.testhook import pause_at
from tooncrafter_model.errors import is_transient, one_line
from tooncrafter_model.store import shot_folder

progress = logging.getLogger("toonfarm.progress")


@task(name="load-shot-list", cache_policy=NO_CACHE)
def load_shots(
    shotlist: str,
    allow_outside_root: bool,
    only: list[str] | None = None,
    defaults: dict[str, Any] | None = None,
    limits: Limits = Limits(),
) -> list[Shot]:
    """The shot list's shots in render order (rush shots first); `only` keeps the shots with those ids."""
    return load_shotlist(shotlist, allow_outside_root=allow_outside_root, defaults=defaults, limits=limits).select(only)


@task(name="detect", task_run_name="detect {shot.id}", cache_policy=NO_CACHE)
def detect(shot: Shot, store: Path) -> ShotPlan:
    """Cuts, held drawings and keyframe pairs of one shot; keyframes stored content-addressed."""
    plan = detect_shot(shot, store)
    progress.debug("planned", extra={"toonfarm": {"event": "planned", "shot": shot.id, "pairs": len(plan.pairs)}})
    return plan


@task(name="recover", cache_policy=NO_CACHE)
def recover(db: ShotDB, shots: list[Shot], settings: Settings) -> None:
    """Settle what dead runs left behind (ARCHITECTURE.md, "Publishing"): runs gone from this host, or
    silent on any host for `dead_after_s`; their placing versions, running rows, and the staging folders
    in these shots' folders. A live run's are left alone."""
    settled, dead = settle_dead_runs(db, settings.dead_after_s)
    folders = {shot_folder(s.output or settings.output_root, s.show, s.sequence, s.code) for s in shots}
    removed = sweep_staging(sorted(folders), dead)
    if settled or removed:
        get_run_logger().warning(
            "settled dead runs: published %s, took back %s, failed %d batches and %d renders, removed %d staging folders",
            list(settled.published), list(settled.dropped), settled.batches, settled.renders, len(removed),
        )


@task(name="plan-renders", cache_policy=NO_CACHE)
def plan_renders(
    plans: list[ShotPlan], settings: Settings, db: ShotDB, flow_run_id: str | None
) -> tuple[list[ShotWork], list[tuple[str, str]]]:
    """Render keys for every pair; finished keys are reused; the rest are claimed in the shot DB. Shots
    that cannot be planned or recorded come back apart, (shot id, error), and the others go on."""
    works, failed = plan_work(plans, settings, lambda keys: finished_renders(db, keys))
    refused = record_plans(db, works, flow_run_id)
    pause_at("planned")
    out = {shot for shot, _ in refused}
    return [w for w in works if w.shot_id not in out], failed + refused


def _transient(task: Task[..., object], run: TaskRun, state: State[object]) -> bool:
    """Retry what the error's type says another try may fix (a dropped shot DB connection), nothing else."""
    return is_transient(state.result(raise_on_failure=False))


@task(
    name="publish", task_run_name="publish {done.work.plan.shot.id}", cache_policy=NO_CACHE,
    retries=1, retry_delay_seconds=2, retry_condition_fn=_transient,
)
def publish(db: ShotDB, done: ShotRenders, settings: Settings, flow_run_id: str | None, board: Dashboard) -> ShotOutcome:
    """Assemble, stylize and record a new version of a shot whose pairs are all done; show it on the dashboard."""
    outcome = publish_shot(db, done, settings, flow_run_id)
    board.published(outcome)
    progress.debug("published", extra={"toonfarm": {"event": "published", "shot": outcome.shot_id, "status": outcome.status}})
    return outcome


@task(name="report", cache_policy=NO_CACHE)
def report(batch: BatchReport, sequences: list[str]) -> BatchReport:
    """The batch's summary as a markdown artifact, keyed by its sequences (`summary-<show>-<sequence>`)."""
    create_markdown_artifact(key=artifact_key("summary", *sequences), markdown=report_markdown(batch),
                             description=batch.summary_line)  # fmt: skip
    return batch


def render(
    works: list[ShotWork], settings: Settings, db: ShotDB, flow_run_id: str | None, board: Dashboard,
    so_far: dict[str, ShotRenders] | None = None,
) -> Iterator[ShotRenders]:
    """Render every pair on the actor pool; yields each shot once all its pairs have settled (`so_far`
    holds them all as they stand: render_shots).

    A generator, not a task: it holds the Ray pool open while the flow publishes finished shots.
    """
    recorder = ResultRecorder(db, flow_run_id)
    total = sum(len(w.jobs) for w in works)
    progress.debug("rendering", extra={"toonfarm": {"event": "rendering", "pairs": total, "shots": len(works)}})

    board.rendering()

    def on_result(result: PairResult) -> None:
        recorder.add(result)
        progress.debug("pair", extra={"toonfarm": {"event": "pair", "shot": result.job.shot, "ok": result.ok}})
        board.pair_done(result.job.render_key)

    def on_try() -> None:
        progress.debug("try", extra={"toonfarm": {"event": "try"}})
        board.pair_added()

    qa = QALog(db, flow_run_id, on_try)
    yield from render_shots(works, settings, on_result, recorder.flush, qa, board.pair_step, so_far)
    recorder.flush()


def collect(published: list[tuple[ShotRenders, PrefectFuture[ShotOutcome]]], board: Dashboard) -> list[ShotOutcome]:
    """Wait for every publish; a publish that raised becomes a failed outcome naming the error."""
    outcomes = []
    for done, future in published:
        try:
            outcomes.append(future.result())
        except Exception as exc:  # one shot's bad LUT or media must not lose the others' results
            shot_id = done.work.shot_id
            outcomes.append(ShotOutcome(shot_id, "failed", rendered=done.rendered, reused=done.reused,
                                        failed=done.failed, errors=(f"{shot_id}: {one_line(exc)}",),
                                        worker_seconds=done.worker_seconds))
            board.published(outcomes[-1])
    return outcomes
