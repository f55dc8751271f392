"""The nightly batch: a shot list in, a new version of every shot that changed out."""

from __future__ import annotations

import time
from typing import Any

from prefect import State, flow, unmapped
from prefect.futures import PrefectFuture, PrefectFutureList

from tasks import record
from tasks.dashboard import Dashboard, planned_run_name
from tasks.detect import ShotPlan
from tasks.heartbeat import beating
from tasks.publish import ShotOutcome
from tasks.render import ShotRenders
from tasks.report import BatchReport
from tasks.settings import Settings
from tasks.shotlist import Shot
from tasks.steps import collect, detect, load_shots, plan_renders, publish, recover, render, report
from tooncrafter_model.errors import ToonfarmError, TransientError, one_line


def _planned(shots: list[Shot], futures: PrefectFutureList[ShotPlan]) -> tuple[list[ShotPlan], list[tuple[str, str]]]:
    plans: list[ShotPlan] = []
    unplanned: list[tuple[str, str]] = []
    for shot, future in zip(shots, futures, strict=True):
        try:
            plans.append(future.result())
        except Exception as exc:  # bad media, or anything else one shot raises: it fails, the others go on
            unplanned.append((shot.id, one_line(exc) if isinstance(exc, ToonfarmError) else f"{shot.id}: {one_line(exc)}"))
    return plans, unplanned


def batch(shotlist: str, settings: Settings | None, shots: list[str] | None, trigger: str) -> State[BatchReport]:
    """The batch's story, inside whichever flow run started it (a batch, or a shot's re-render): plan every
    shot of the list (or only `shots`, by id or code), render all their pairs as one queue on the farm,
    publish each shot as a new version the moment its own pairs are done, and end Failed when one failed."""
    settings = settings or Settings()
    settings.share_files()
    started = time.monotonic()
    selected = load_shots(shotlist, settings.allow_outside_root, shots, settings.shot_defaults, settings.limits)
    board = Dashboard(settings, shotlist, trigger)
    board.named(selected, shots)
    plans, unplanned = _planned(selected, detect.map(selected, unmapped(settings.store.root)))
    run_id = board.run_id
    published: list[tuple[ShotRenders, PrefectFuture[ShotOutcome]]] = []
    so_far: dict[str, ShotRenders] = {}
    stopped = ""
    with record.open_db(settings.db_url, migrate=True, retry_s=settings.db_retry_s) as db, \
            beating(db, record.batch_id(run_id), settings.heartbeat_s):
        try:
            recover(db, selected, settings)
            record.begin_batch(db, record.batch_id(run_id), "render-batch", shotlist, board.name, trigger)
            works, unrecorded = plan_renders(plans, settings, db, run_id)
            unplanned += unrecorded
            board.planned(selected, unplanned, sum(len(w.jobs) for w in works), sum(len(w.pairs) - len(w.jobs) for w in works))
            for done in render(works, settings, db, run_id, board, so_far):
                published.append((done, publish.submit(db, done, settings, run_id, board)))
        except TransientError as exc:  # the shot DB stayed away past db_retry_s: report what was done, and stop
            stopped = one_line(exc)
        result = BatchReport(tuple(collect(published, board)), tuple(unplanned), run_id, time.monotonic() - started,
                             gpus=settings.actor_gpus)  # fmt: skip
        if not stopped:
            try:
                record.finish_batch(db, record.batch_id(run_id), result)
            except TransientError as exc:
                stopped = one_line(exc)
        if stopped:  # its batch row stays running: the next run settles it (this process gone, or silent)
            result = result.stopped_by(stopped, [s.id for s in selected], so_far)
    return board.finish(report(result, board.sequences))


@flow(name="render-batch", flow_run_name=planned_run_name, log_prints=False)
def render_batch_flow(
    shotlist: str, settings: Settings | None = None, shots: list[str] | None = None, trigger: str = "cli"
) -> State[BatchReport]:
    """Render what changed in a shot list; Failed, naming the failed shots, when any shot failed."""
    return batch(shotlist, settings, shots, trigger)


def render_batch(
    shotlist: str, settings: Settings | None = None, shots: list[str] | None = None, trigger: str = "cli"
) -> BatchReport:
    """Run the batch flow and return its report, whether its run ended Completed or Failed (a failed shot
    fails the run, not the caller); an error that stopped the whole batch is raised."""
    return report_of(render_batch_flow(shotlist, settings, shots, trigger, return_state=True))


def report_of(state: State[Any]) -> BatchReport:
    """The BatchReport a batch's final state carries; the exception of a run that never made one."""
    result = state.result(raise_on_failure=False)
    if isinstance(result, BatchReport):
        return result
    if isinstance(result, BaseException):
        raise result
    raise RuntimeError(f"batch run ended {state.type.value} without a report: {state.message}")
