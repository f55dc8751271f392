"""A live run that other runs settled as dead (cut off from the shot DB, silent past their `dead_after_s`)
writes nothing more when it comes back: it stops with the batch's summary and one line (exit 75), and the
next run completes with disk and shot DB in agreement."""

from __future__ import annotations

import re
import time
from pathlib import Path

from shot_db import ShotDB
from tasks.record import settle_dead_runs

from .runs import CODES, Farm, state


def test_a_run_settled_as_dead_while_alive_stops_in_one_line(tmp_path: Path) -> None:
    farm = Farm.make(tmp_path)
    marker = tmp_path / "paused"
    proc = farm.start_paused("rendering", marker)  # paused after recording its first results
    deadline = time.monotonic() + 240
    while not marker.exists():
        assert proc.poll() is None and time.monotonic() < deadline, marker.with_suffix(".log").read_text()[-3000:]
        time.sleep(0.1)
    time.sleep(1.0)  # its last beat at least a second old by the shot DB's clock

    # What a run on another host does once the paused one has been silent past its dead_after_s (0 here).
    with ShotDB.open(farm.url, migrate=True) as db:
        settled, _ = settle_dead_runs(db, 0.0)
    assert settled.batches == 1 and settled.renders > 0, settled

    marker.unlink()
    code = proc.wait(timeout=300)
    log = marker.with_suffix(".log").read_text()
    assert code == 75, log[-3000:]
    assert "Traceback" not in log
    (line,) = [x for x in log.splitlines() if x.startswith("toonfarm: ")]
    assert "settled as dead by another run" in line and "the batch stopped" in line, line
    assert re.search(r"^0 shots new, 0 unchanged, 2 failed; rendered \d+ pairs", log, re.M), log[-3000:]
    assert farm.wait_no_processes() == []
    after = state(farm)
    assert after.history == after.on_disk == {c: [] for c in CODES}  # it placed nothing once taken for dead

    rerun = farm.run()
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    final = state(farm)
    assert final.history == final.on_disk == {c: [1] for c in CODES}
    assert final.placing == final.running_renders == final.running_batches == 0
