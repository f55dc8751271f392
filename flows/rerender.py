"""Re-render one shot after one of its keyframes changed: only pairs whose render keys changed render."""

from __future__ import annotations

from prefect import flow

from flows.render_batch import render_batch
from tasks.report import BatchReport
from tasks.settings import Settings


@flow(name="rerender-shot")
def rerender_shot(shotlist: str, shot: str, settings: Settings | None = None) -> BatchReport:
    """Run the batch for `shot` alone; unchanged pairs are reused, and the shot gets a new version only
    if its frames changed."""
    return render_batch(shotlist, settings, shots=[shot])
