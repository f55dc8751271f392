"""Palette lock and a show's OCIO look through the whole flow: new versions from the same renders."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from tasks.colour import OcioLook, OcioTransform, warm_look_table, write_example_ocio
from tasks.palette import delta_e, tone_drift
from tooncrafter_model.frames import read_frame, write_frame

from .conftest import make_shots, settings_for

pytestmark = pytest.mark.usefixtures("prefect_harness", "ray_module")


def _frames(mp4: str) -> list[np.ndarray]:
    return [read_frame(p) for p in sorted((Path(mp4).parent / "png").glob("*.png"))]


def test_palette_lock_and_ocio_make_new_versions_without_rendering_again(tmp_path: Path) -> None:
    from flows.render_batch import render_batch

    shots = make_shots(tmp_path / "in", {"sh0010": {"timing": [3] * 4}})  # on 3s: 3 pairs, 2 in-betweens each
    keys = shots.animations["sh0010"].keyframes
    settings = settings_for(tmp_path)
    (v1,) = render_batch(str(shots.path), settings).outcomes
    clean = _frames(v1.mp4)  # type: ignore[arg-type]

    # The backend drifted: its stored in-betweens come out lighter and hue-shifted, as a drifting model's would.
    for pair in json.loads(Path(v1.sidecar).read_text())["pairs"]:  # type: ignore[arg-type]
        for frame in pair["frames"]:
            write_frame(frame, tone_drift(read_frame(frame), 10.0, 0.05))
    shots.doc["shots"][0]["colour"] = {"palette_lock": True}
    shots.write()
    locked = render_batch(str(shots.path), settings)
    assert locked.summary == "rendered 0 pairs, reused 3, failed 0"
    (v2,) = locked.outcomes
    assert (v2.status, v2.version) == ("new-version", 2)
    out = _frames(v2.mp4)  # type: ignore[arg-type]
    for i, (got, was) in enumerate(zip(out, clean, strict=True)):
        if i in keys:
            np.testing.assert_array_equal(got, was)  # keyframes are the palette: untouched
        else:
            assert delta_e(tone_drift(was, 10.0, 0.05), was).mean() > 5.0
            assert delta_e(got, was).mean() < 0.5, i  # the drift is gone
    sidecar = json.loads(Path(v2.sidecar).read_text())  # type: ignore[arg-type]
    assert sidecar["colour"]["palette_lock"]["space"] == "oklab"

    config = write_example_ocio(tmp_path / "in" / "ocio")
    shots.doc["shots"][0]["colour"]["ocio"] = {"config": "ocio/show.ocio", "display": "sRGB", "view": "Show"}
    shots.write()
    (v3,) = render_batch(str(shots.path), settings).outcomes
    assert (v3.status, v3.version) == ("new-version", 3)
    look = OcioLook(OcioTransform(config=config, display="sRGB", view="Show"))
    for got, was in zip(_frames(v3.mp4), out, strict=True):  # type: ignore[arg-type]
        np.testing.assert_array_equal(got, look(was))  # the same look on keyframes and in-betweens
    sidecar = json.loads(Path(v3.sidecar).read_text())  # type: ignore[arg-type]
    assert sidecar["colour"]["ocio"]["config"] == str(config) and sidecar["colour"]["ocio"]["view"] == "Show"

    again = render_batch(str(shots.path), settings)
    assert [(o.status, o.version) for o in again.outcomes] == [("unchanged", 3)]
    write_example_ocio(tmp_path / "in" / "ocio", warm_look_table(9) * 0.95)  # the look's LUT edited, config not
    (v4,) = render_batch(str(shots.path), settings).outcomes
    assert (v4.status, v4.version) == ("new-version", 4)
