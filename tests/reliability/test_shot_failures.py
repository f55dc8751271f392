"""Whatever one shot raises (its backend cannot be identified, its workers cannot start, the shot DB
refuses a value its columns cannot hold) fails that shot with one line; the batch renders and publishes the others, reports,
and leaves no row running."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import func, select

from shot_db import ShotDB
from shot_db.models import BatchRun, BatchStatus, Render, RenderStatus

from tests.flows.conftest import make_shots, settings_for


pytestmark = pytest.mark.usefixtures("prefect_harness")
LONG = "sh" + "0" * 128


@pytest.fixture(scope="module", autouse=True)
def _ray() -> Iterator[None]:
    import shutil
    import tempfile

    from cluster import connect

    temp_dir = tempfile.mkdtemp(prefix="tfr-", dir="/tmp")
    try:
        with connect(num_cpus=2, temp_dir=temp_dir):
            yield
    finally:
        shutil.rmtree(temp_dir, ignore_errors=True)


def test_each_shot_that_raises_fails_alone_with_one_line(tmp_path: Path) -> None:
    from flows.render_batch import render_batch

    bogus = tmp_path / "in" / "model.ckpt"
    shots = make_shots(
        tmp_path / "in",
        {
            "good": {"timing": [2] * 3},
            "nockpt": {"timing": [2] * 3, "shot": {"backend": "toon"}},  # no checkpoint: cannot be identified
            LONG: {"timing": [2] * 3},  # the shot list's limit allows it here; the shot DB's column does not
            "badckpt": {"timing": [2] * 3, "shot": {"backend": "toon"}},  # workers cannot load it
        },
        backend="crossfade",
    )
    bogus.parent.mkdir(parents=True, exist_ok=True)
    bogus.write_bytes(b"not a checkpoint")
    settings = settings_for(tmp_path, actors=1, limits={"max_name_length": 200})
    batch_nockpt = render_batch(str(shots.path), settings)
    settings_ckpt = settings.model_copy(update={"toon_checkpoint": bogus})  # a file that is no model
    batch = render_batch(str(shots.path), settings_ckpt)

    for b in (batch_nockpt, batch):
        assert not b.ok
        assert {o.shot_id: o.status for o in b.outcomes}["test/sq010/good"] in ("new-version", "unchanged")
        assert all("\n" not in e for e in b.errors)
    failed = dict(batch_nockpt.unplanned)
    assert set(failed) == {"test/sq010/nockpt", f"test/sq010/{LONG}", "test/sq010/badckpt"}
    assert "checkpoint" in failed["test/sq010/nockpt"]
    assert "code" in failed[f"test/sq010/{LONG}"] and "at most 128 characters" in failed[f"test/sq010/{LONG}"]

    status = {o.shot_id: o.status for o in batch.outcomes}
    assert status["test/sq010/badckpt"] == "failed"
    assert any(e.startswith("test/sq010/badckpt pair") and "failed to start" in e for e in batch.errors), batch.errors
    assert dict(batch.unplanned).keys() == {f"test/sq010/{LONG}"}
    with ShotDB.open(settings.db_url) as db, db.transaction() as s:
        assert s.scalar(select(func.count()).select_from(Render).where(Render.status == RenderStatus.running)) == 0
        assert s.scalar(select(func.count()).select_from(BatchRun).where(BatchRun.status == BatchStatus.running)) == 0
