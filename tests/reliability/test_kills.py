"""A driver SIGKILLed at any stage of a batch: the next run exits 0, the output root and the shot DB agree,
nothing the killed run started is left running, and pairs it finished are not rendered again."""

from __future__ import annotations

from pathlib import Path

import pytest

from .runs import CODES, Farm, state

# Where tasks/testhook.py can stop a run: render rows claimed; a result recorded; the encoders (ffmpeg)
# running; a version's row committed as placing, its folder not renamed; renamed, not yet published.
POINTS = ["planned", "rendering", "assembling", "reserved", "placed"]


@pytest.mark.slow
@pytest.mark.parametrize("point", POINTS)
def test_a_driver_killed_at_any_point_is_settled_by_the_next_run(point: str, tmp_path: Path) -> None:
    farm = Farm.make(tmp_path)
    farm.kill_at(point, tmp_path)
    assert farm.wait_no_processes() == [], f"the killed run's processes outlived it (killed at {point})"
    before = state(farm)
    if point in ("reserved", "placed"):
        assert before.placing == 1  # recorded first: the row is there whether or not the folder is

    rerun = farm.run()

    assert rerun.returncode == 0, rerun.stderr[-3000:]
    after = state(farm)
    assert after.history == after.on_disk == {c: [1] for c in CODES}, (point, before, after)
    assert after.hidden == [] and after.placing == 0 and after.running_renders == 0 and after.running_batches == 0
    for key in before.finished:  # what the killed run finished is reused, not tried again
        assert after.attempts[key] == before.attempts[key], key
    assert farm.wait_no_processes() == []
    # Killed after its rename, a version is published by the next run, which then has nothing to add to
    # that shot; killed before it, the number is taken back and the next run uses it.
    assert rerun.stdout.count("(unchanged)") == (1 if point == "placed" else 0), rerun.stdout
