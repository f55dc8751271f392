"""The nightly batch: a shot list in, a new version of every shot that changed out."""

from __future__ import annotations

import time

from prefect import flow, unmapped
from prefect.futures import PrefectFutureList
from prefect.runtime import flow_run

from tasks import record
from tasks.detect import ShotPlan
from tasks.report import BatchReport
from tasks.settings import Settings
from tasks.shotlist import Shot
from tasks.steps import collect, detect, load_shots, plan_renders, publish, recover, render, report
from tooncrafter_model.errors import ToonfarmError, one_line


def _planned(shots: list[Shot], futures: PrefectFutureList[ShotPlan]) -> tuple[list[ShotPlan], list[tuple[str, str]]]:
    plans: list[ShotPlan] = []
    unplanned: list[tuple[str, str]] = []
    for shot, future in zip(shots, futures, strict=True):
        try:
            plans.append(future.result())
        except Exception as exc:  # bad media, or anything else one shot raises: it fails, the others go on
            unplanned.append((shot.id, one_line(exc) if isinstance(exc, ToonfarmError) else f"{shot.id}: {one_line(exc)}"))
    return plans, unplanned


@flow(name="render-batch", log_prints=False)
def render_batch(shotlist: str, settings: Settings | None = None, shots: list[str] | None = None) -> BatchReport:
    """Plan every shot of the list (or only `shots`, by id or code), render all their pairs as one queue
    on the farm, and publish each shot as a new version the moment its own pairs are done."""
    settings = settings or Settings()
    settings.share_files()
    run_id = str(flow_run.id) if flow_run.id else None
    started = time.monotonic()
    selected = load_shots(shotlist, settings.allow_outside_root, shots, settings.shot_defaults, settings.limits)
    plans, unplanned = _planned(selected, detect.map(selected, unmapped(settings.store.root)))
    with record.open_db(settings.db_url, migrate=True, retry_s=settings.db_retry_s) as db:
        recover(db, selected, settings)
        record.begin_batch(db, run_id or "local", "render-batch", shotlist)
        works, unrecorded = plan_renders(plans, settings, db, run_id)
        published = [(done, publish.submit(db, done, settings, run_id)) for done in render(works, settings, db, run_id)]
        outcomes = collect(published)
        batch = BatchReport(tuple(outcomes), tuple(unplanned + unrecorded), run_id, time.monotonic() - started)
        record.finish_batch(db, run_id or "local", batch.rendered, batch.reused, batch.failed, batch.ok)
    return report(batch)
