"""ToonCrafter through the whole flow (seeded random weights at the reduced size: the pixels are noise,
the plumbing is real): per-shot parameters, sketch guidance, and render keys that follow the sketches."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import shot_db
from shot_db import ShotDB
from tooncrafter_model.frames import write_frame

from .conftest import make_shots, settings_for

pytestmark = pytest.mark.usefixtures("prefect_harness", "ray_module")
TINY_TOON = {"toon": {"config": "parity_tiny", "random_weights_seed": 0}}


def _sketch(path: Path, x: int) -> None:
    img = np.full((64, 128, 3), 255, np.uint8)
    img[10:54, x : x + 3] = 0  # one ink stroke: where the character's arm should be
    write_frame(path, img)


def test_toon_shot_with_sketch_guidance(tmp_path: Path) -> None:
    from flows.render_batch import render_batch

    _sketch(tmp_path / "in" / "sk4.png", 40)
    shots = make_shots(tmp_path / "in", {"sh0010": {"timing": [3, 3, 3]}}, backend="toon")
    shots.doc["shots"][0].update(render={"params": {"steps": 2}}, sketches=[{"frame": 4, "image": "sk4.png"}])
    shots.write()
    settings = settings_for(tmp_path, actors=1, backend_options=TINY_TOON)
    first = render_batch(str(shots.path), settings)
    assert first.ok and first.summary == "rendered 2 pairs, reused 0, failed 0", first.errors

    db = ShotDB.open(settings.db_url)
    with db.transaction() as s:
        (v1,) = shot_db.shot_history(session=s, show="test", sequence="sq010", code="sh0010")
    renders = {(r.frame_a, r.frame_b): r for r in v1.renders}
    assert renders[(0, 3)].sketch_hashes == ()
    ((t, _),) = renders[(3, 6)].sketch_hashes
    assert t == pytest.approx(1 / 3)
    assert renders[(3, 6)].backend == "toon" and renders[(3, 6)].params["steps"] == 2
    assert renders[(3, 6)].meta["fit"] == "pad"  # 128x64 keyframes letterboxed, not cropped

    _sketch(tmp_path / "in" / "sk4.png", 80)  # a redrawn sketch re-renders only the pair it guides
    second = render_batch(str(shots.path), settings)
    assert second.summary == "rendered 1 pairs, reused 1, failed 0"
    assert [o.version for o in second.outcomes] == [2]
    db.close()
