"""Whatever one shot raises (its backend cannot be identified, its workers cannot start, the shot DB
refuses its values) fails that shot with one line; the batch renders and publishes the others, reports,
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
            "bigseed": {"timing": [2] * 3, "shot": {"render": {"seed": 2**63}}},  # a shot list takes it; the DB holds signed 64 bits
            "badckpt": {"timing": [2] * 3, "shot": {"backend": "toon"}},  # workers cannot load it
        },
        backend="crossfade",
    )
    bogus.parent.mkdir(parents=True, exist_ok=True)
    bogus.write_bytes(b"not a checkpoint")
    settings = settings_for(tmp_path, actors=1)
    batch_nockpt = render_batch(str(shots.path), settings)
    settings_ckpt = settings.model_copy(update={"toon_checkpoint": bogus})  # a file that is no model
    batch = render_batch(str(shots.path), settings_ckpt)

    for b in (batch_nockpt, batch):
        assert not b.ok
        assert {o.shot_id: o.status for o in b.outcomes}["test/sq010/good"] in ("new-version", "unchanged")
        assert all("\n" not in e for e in b.errors)
    failed = dict(batch_nockpt.unplanned)
    assert set(failed) == {"test/sq010/nockpt", "test/sq010/bigseed", "test/sq010/badckpt"}
    assert "checkpoint" in failed["test/sq010/nockpt"]
    assert "seed" in failed["test/sq010/bigseed"] and "64-bit" in failed["test/sq010/bigseed"]

    status = {o.shot_id: o.status for o in batch.outcomes}
    assert status["test/sq010/badckpt"] == "failed"
    assert any(e.startswith("test/sq010/badckpt pair") and "failed to start" in e for e in batch.errors), batch.errors
    assert dict(batch.unplanned).keys() == {"test/sq010/bigseed"}
    with ShotDB.open(settings.db_url) as db, db.transaction() as s:
        assert s.scalar(select(func.count()).select_from(Render).where(Render.status == RenderStatus.running)) == 0
        assert s.scalar(select(func.count()).select_from(BatchRun).where(BatchRun.status == BatchStatus.running)) == 0
