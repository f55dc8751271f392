"""A driver SIGKILLed at any stage of a batch: nothing it started is left running, the next run settles
what it left, exits 0, the output root and the shot DB agree, and pairs it finished are not rendered again.

One farm, killed at each point in turn: every run settles the kill before it (as a farm's next nightly
run would), and the last one finishes. Two shots of three pairs; the crossfade backend costs nothing.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from .runs import CODES, Farm, State, state

# Where tasks/testhook.py stops a run: render rows claimed; a shot's results recorded; the encoders
# (ffmpeg) running; a version's row committed as placing, its folder not renamed; renamed, not yet published.
POINTS = ["planned", "rendering", "assembling", "reserved", "placed"]


def _agrees(s: State) -> bool:
    """The shot DB's history lists exactly the version folders on disk."""
    return s.history == s.on_disk


@pytest.mark.slow
def test_a_driver_killed_at_each_point_is_settled_by_the_next_run(tmp_path: Path) -> None:
    farm = Farm.make(tmp_path)
    seen: list[State] = []
    for point in POINTS:
        farm.kill_at(point, tmp_path)
        assert farm.wait_no_processes() == [], f"the run killed at {point} left processes running"
        now = state(farm)
        assert _agrees(now) or point == "placed", (point, now)
        if point == "reserved":  # recorded first: the row is there, the folder is not (history hides it)
            assert now.placing == 1 and now.on_disk == {c: [] for c in CODES}
        if point == "placed":  # renamed: the folder is there, its row placing until the next run publishes it
            assert now.placing == 1 and sorted(map(len, now.on_disk.values())) == [0, 1]
        if point in ("rendering", "assembling"):
            assert now.running_renders or now.finished
        for before in seen:  # what an earlier run finished is reused, never tried again
            for key in before.finished:
                assert now.attempts[key] == before.attempts[key], (point, key)
        seen.append(now)

    rerun = farm.run()

    assert rerun.returncode == 0, rerun.stderr[-3000:]
    after = state(farm)
    assert _agrees(after) and after.history == {c: [1] for c in CODES}, after
    assert after.hidden == [] and after.placing == 0 and after.running_renders == 0 and after.running_batches == 0
    assert all(after.attempts[key] == seen[-1].attempts[key] for key in seen[-1].finished)
    # The version placed before the last kill is published by this run, which has nothing to add to it.
    assert rerun.stdout.count("(unchanged)") == 1 and rerun.stdout.count("(new-version)") == 1, rerun.stdout
    reused = re.search(r"reused (\d+),", rerun.stdout)
    assert reused and int(reused[1]) >= len(seen[-1].finished), rerun.stdout  # what it found finished, it reused
    assert farm.wait_no_processes() == []
