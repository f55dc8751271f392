"""A cut rendered through the whole flow: one version per clip, as long as the clip."""

from __future__ import annotations

from pathlib import Path

import opentimelineio as otio
import pytest

from tasks.synthetic import animate, make_character, write_video
from tests.media import probe_video

from .conftest import H, W, settings_for

pytestmark = pytest.mark.usefixtures("prefect_harness", "ray_module")


def test_an_otio_cut_renders_one_version_per_clip(tmp_path: Path) -> None:
    from flows.render_batch import render_batch

    rt, tr = otio.opentime.RationalTime, otio.opentime.TimeRange
    timeline = otio.schema.Timeline(name="ep101", global_start_time=rt(86400, 24))
    track = otio.schema.Track(kind=otio.schema.TrackKind.Video)
    timeline.tracks.append(track)
    for i, (code, start, frames) in enumerate((("sh010", 2, 6), ("sh020", 0, 8))):
        anim = animate([2] * 6, width=W, height=H, character=make_character(3 + i))
        write_video(anim.frames, tmp_path / "in" / f"{code}.mkv", fps=24, lossless=True)
        media = otio.schema.ExternalReference(target_url=f"{code}.mkv")
        track.append(otio.schema.Clip(name=code, media_reference=media, source_range=tr(rt(start, 24), rt(frames, 24))))
    cut = tmp_path / "in" / "ep101.otio"
    otio.adapters.write_to_file(timeline, str(cut))
    cut.with_name("ep101.otio.yaml").write_text("defaults: {show: ep101, sequence: sq010}\n")

    batch = render_batch(str(cut), settings_for(tmp_path, shot_defaults={"backend": "crossfade"}))
    assert batch.ok, batch.errors
    assert batch.summary == "rendered 5 pairs, reused 0, failed 0"  # drawings 2, 4, 6 and 0, 2, 4, 6 in the ranges
    frames = {o.shot_id: probe_video(o.mp4).frame_count for o in batch.outcomes}  # type: ignore[arg-type]
    assert frames == {"ep101/sq010/sh010": 6, "ep101/sq010/sh020": 8}
