"""A new backend is one module plus one registry entry: a toy one renders through the whole farm (shot
list checks, render keys, Ray workers, shot DB, versions), with its per-shot parameter typed and ranged."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

import shot_db
from flows.cli import app
from shot_db import ShotDB
from tooncrafter_model.backend import BACKENDS, BackendSpec, Param
from tooncrafter_model.frames import read_frame

from .conftest import make_shots, settings_for
from .toy_backend import dither

pytestmark = pytest.mark.usefixtures("prefect_harness", "ray_module")


@pytest.fixture
def toy_registered(monkeypatch: pytest.MonkeyPatch) -> None:
    """The one registry entry. Workers are other processes: they are built from the entry the driver
    planned with, so the driver's registry is the only one to add it to."""
    entry = BackendSpec("tests.flows.toy_backend:ToyBackend", params={"grain": Param(int, 1, 64)})
    monkeypatch.setitem(BACKENDS, "toy", entry)


@pytest.mark.usefixtures("toy_registered")
def test_a_toy_backend_renders_through_the_farm(tmp_path: Path) -> None:
    from flows.render_batch import render_batch

    shots = make_shots(tmp_path / "in", {"sh0010": {"timing": [3, 3]}}, backend="toy")
    shots.doc["shots"][0]["render"] = {"seed": 5, "params": {"grain": 8}}
    shots.write()
    settings = settings_for(tmp_path, actors=1)
    batch = render_batch(str(shots.path), settings)
    assert batch.ok and batch.summary == "rendered 1 pairs, reused 0, failed 0", batch.errors

    with ShotDB.open(settings.db_url) as db, db.transaction() as s:
        (version,) = shot_db.shot_history(session=s, show="test", sequence="sq010", code="sh0010")
    (render,) = version.renders
    assert (render.backend, render.params, render.seed) == ("toy", {"prompt": "", "grain": 8}, 5)
    assert render.meta["grain"] == 8  # the parameter reached the backend on the worker
    a, b = read_frame(render.keyframe_a.path), read_frame(render.keyframe_b.path)
    made = [read_frame(Path(render.output_dir) / f"{i:04d}.png") for i in (1, 2)]
    want = [dither(a, b, t, 5, 8) for t in render.times]
    assert all(np.array_equal(m, w) for m, w in zip(made, want, strict=True))
    assert not np.array_equal(made[0], made[1])  # t=1/3 and t=2/3 take B in different blocks

    again = render_batch(str(shots.path), settings)
    assert again.summary == "rendered 0 pairs, reused 1, failed 0"


@pytest.mark.usefixtures("toy_registered")
def test_a_toy_parameter_out_of_range_stops_the_shot_list(tmp_path: Path) -> None:
    shots = make_shots(tmp_path / "in", {"sh0010": {"timing": [3, 3]}}, backend="toy")
    shots.doc["shots"][0]["render"] = {"params": {"grain": 0}}
    shots.write()
    result = CliRunner().invoke(app, ["render", str(shots.path), "-o", str(tmp_path / "out")])
    assert result.exit_code == 2
    assert result.stderr.strip() == (
        f"toonfarm: {shots.path}: shots[0].render: toy: grain must be an integer in [1, 64], got 0"
    )
