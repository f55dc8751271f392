"""A new output format is one module plus one registry entry: a toy JPEG sequence is chosen per shot in the
shot list, checked when the list loads, written and read back, recorded as the version's output row, found
by lineage, listed in the sidecar, and its settings are part of the assembly key."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

import shot_db
from flows.cli import app
from shot_db import ShotDB
from tasks.deliver import DELIVERABLES
from tests.media import probe_video
from tooncrafter_model.frames import read_frame

from .conftest import make_shots, settings_for

pytestmark = pytest.mark.usefixtures("prefect_harness", "ray_module")


@pytest.fixture
def jpeg_registered(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(DELIVERABLES, "jpeg", "tests.flows.toy_deliverable:JpegSequence")


@pytest.mark.usefixtures("jpeg_registered")
def test_a_toy_format_is_delivered_recorded_and_keyed(tmp_path: Path) -> None:
    from flows.render_batch import render_batch

    shots = make_shots(tmp_path / "in", {"sh0010": {"timing": [3, 3]}}, backend="crossfade")
    shots.doc["shots"][0]["deliver"] = ["h264", {"jpeg": {"quality": 80}}]
    shots.write()
    settings = settings_for(tmp_path, actors=1)
    batch = render_batch(str(shots.path), settings)
    assert batch.ok, batch.errors
    (outcome,) = batch.outcomes
    version_dir = Path(str(outcome.mp4)).parent
    assert [o.kind for o in outcome.outputs] == ["h264", "jpeg"] and outcome.mp4 == str(version_dir / "sh0010_v001.mp4")
    jpegs = sorted((version_dir / "jpeg").iterdir())
    assert [p.name for p in jpegs] == [f"sh0010.{i:04d}.jpg" for i in range(1, 7)]
    assert read_frame(jpegs[0]).shape == (64, 128, 3) and probe_video(outcome.mp4).frame_count == 6
    assert not (version_dir / "png").exists()  # only what the shot asked for

    with ShotDB.open(settings.db_url) as db, db.transaction() as s:
        (version,) = shot_db.shot_history(session=s, show="test", sequence="sq010", code="sh0010")
        (found,) = shot_db.lineage(session=s, target=str(version_dir / "jpeg"))
    jpeg = version.output("jpeg")
    assert jpeg is not None and (jpeg.path, jpeg.frame_count, jpeg.details["quality"]) == (str(version_dir / "jpeg"), 6, 80)
    assert found.output == jpeg and found.version.number == 1
    assert version.settings["deliver"][1] == {"kind": "jpeg", "version": 1, "quality": 80}
    sidecar = json.loads((version_dir / "provenance.json").read_text())
    assert [(o["kind"], o["path"], o["sha256"]) for o in sidecar["outputs"]] == [
        ("h264", "sh0010_v001.mp4", version.outputs[0].sha256), ("jpeg", "jpeg", jpeg.sha256)
    ]

    again = render_batch(str(shots.path), settings)
    assert [o.status for o in again.outcomes] == ["unchanged"]
    shots.doc["shots"][0]["deliver"] = ["h264", {"jpeg": {"quality": 40}}]
    shots.write()
    third = render_batch(str(shots.path), settings)  # another setting: a new version, nothing re-rendered
    assert [(o.status, o.version) for o in third.outcomes] == [("new-version", 2)]
    assert third.summary == "rendered 0 pairs, reused 1, failed 0"


@pytest.mark.usefixtures("jpeg_registered")
def test_a_toy_setting_out_of_range_stops_the_shot_list(tmp_path: Path) -> None:
    shots = make_shots(tmp_path / "in", {"sh0010": {"timing": [3, 3]}})
    shots.doc["shots"][0]["deliver"] = [{"jpeg": {"quality": 0}}]
    shots.write()
    result = CliRunner().invoke(app, ["render", str(shots.path), "-o", str(tmp_path / "out")])
    assert result.exit_code == 2
    assert result.stderr.strip() == (
        f"toonfarm: {shots.path}: shots[0].deliver: jpeg.quality: input should be greater than or equal to 1 (got 0)"
    )
