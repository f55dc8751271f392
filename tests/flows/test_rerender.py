"""Re-render only what changed: render keys by pixels and parameters, versions never overwritten."""

from __future__ import annotations

import contextvars
import os
import threading
from pathlib import Path

import pytest

import shot_db
from shot_db import ShotDB
from tasks.report import BatchReport

from .conftest import make_shots, redraw, settings_for, versions

pytestmark = pytest.mark.usefixtures("prefect_harness", "ray_module")




def _status(batch: BatchReport) -> dict[str, str]:
    return {o.shot_id.split("/")[-1]: f"{o.status} v{o.version}" for o in batch.outcomes}




def test_only_what_changed_is_rendered(tmp_path: Path) -> None:
    from flows.render_batch import render_batch

    shots = make_shots(tmp_path / "in", {"sh0010": {"timing": [2] * 5}, "sh0020": {"timing": [3] * 4}})
    settings = settings_for(tmp_path)
    first = render_batch(str(shots.path), settings)
    assert first.summary == "rendered 7 pairs, reused 0, failed 0"
    v1 = Path(first.outcomes[0].mp4).read_bytes()

    again = render_batch(str(shots.path), settings)
    assert again.summary == "rendered 0 pairs, reused 7, failed 0"
    assert _status(again) == {"sh0010": "unchanged v1", "sh0020": "unchanged v1"}

    for path in (shots.path.parent / "rough").iterdir():  # new mtimes, same bytes
        os.utime(path, (path.stat().st_atime + 60, path.stat().st_mtime + 60))
    assert render_batch(str(shots.path), settings).summary == "rendered 0 pairs, reused 7, failed 0"

    redraw(shots, "sh0010", 2)  # the third drawing: pairs (2->4) and (4->6) touch it
    changed = render_batch(str(shots.path), settings)
    assert changed.summary == "rendered 2 pairs, reused 5, failed 0"
    assert _status(changed) == {"sh0010": "new-version v2", "sh0020": "unchanged v1"}
    assert versions(settings, "sh0010") == [1, 2] and versions(settings, "sh0020") == [1]
    assert Path(first.outcomes[0].mp4).read_bytes() == v1  # the earlier version is still there, untouched

    shots.doc["shots"][1]["render"] = {"seed": 7}  # a parameter changes every render key of its shot
    shots.write()
    reseeded = render_batch(str(shots.path), settings)
    assert reseeded.summary == "rendered 3 pairs, reused 4, failed 0"
    assert _status(reseeded) == {"sh0010": "unchanged v2", "sh0020": "new-version v2"}


def test_racing_batches_make_one_version(tmp_path: Path) -> None:
    from flows.render_batch import render_batch

    shots = make_shots(tmp_path / "in", {"sh0010": {"timing": [2] * 4}})
    settings = settings_for(tmp_path, actors=1, actor_cpus=0.5)
    render_batch(str(shots.path), settings)
    redraw(shots, "sh0010", 1)
    results: list[BatchReport] = []
    barrier = threading.Barrier(2)

    def run() -> None:
        barrier.wait()
        results.append(render_batch(str(shots.path), settings))

    # each thread carries the test's context, so both batches talk to the session's Prefect server
    threads = [threading.Thread(target=contextvars.copy_context().run, args=(run,)) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert all(r.ok for r in results), [r.errors for r in results]
    assert sorted(_status(r)["sh0010"] for r in results) == ["new-version v2", "unchanged v2"]
    assert versions(settings, "sh0010") == [1, 2]
    folder = settings.output_root / "test" / "sq010" / "sh0010"
    assert sorted(p.name for p in folder.iterdir()) == ["v001", "v002"]  # no staging left behind
    db = ShotDB.open(settings.db_url)
    with db.transaction() as s:
        (_, v2) = shot_db.shot_history(session=s, show="test", sequence="sq010", code="sh0010")
    db.close()
    for render in v2.renders:
        assert sum(a.ok for a in render.attempts) == 1
    assert len(v2.renders) == 3
