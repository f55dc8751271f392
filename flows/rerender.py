"""Re-render one shot after one of its keyframes changed: only pairs whose render keys changed render."""

from __future__ import annotations

from prefect import State, flow

from flows.render_batch import batch
from tasks.dashboard import planned_run_name
from tasks.report import BatchReport
from tasks.settings import Settings


@flow(name="rerender-shot", flow_run_name=planned_run_name)
def rerender_shot(
    shotlist: str, shot: str, settings: Settings | None = None, trigger: str = "keyframe-change"
) -> State[BatchReport]:
    """The batch for `shot` alone, in this run (its own task runs and artifacts, named after the shot);
    unchanged pairs are reused, and the shot gets a new version only if its frames changed."""
    return batch(shotlist, settings, [shot], trigger)
