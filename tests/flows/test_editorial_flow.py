"""A cut rendered through the whole flow, then exported back: one version per clip, as long as the clip, and
a timeline of the renders with the cut's clips, order and record timing, read back as OTIO and as an EDL."""

from __future__ import annotations

import subprocess
from pathlib import Path
from urllib.parse import unquote, urlparse

import opentimelineio as otio
import pytest
from typer.testing import CliRunner

from flows.cli import app
from tasks.synthetic import animate, make_character, write_video
from tests.media import probe_video

from .conftest import H, W, make_shots, settings_for

pytestmark = pytest.mark.usefixtures("prefect_harness", "ray_module")

RT, TR = otio.opentime.RationalTime, otio.opentime.TimeRange


def _file(url: str) -> Path:
    return Path(unquote(urlparse(url).path))


def _timecode(path: Path) -> str | None:
    import imageio_ffmpeg

    run = subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-hide_banner", "-i", str(path)], capture_output=True, text=True)
    found = [line.split(":", 1)[1].strip() for line in run.stderr.splitlines() if line.strip().startswith("timecode")]
    return found[0] if found else None


def test_an_otio_cut_renders_one_version_per_clip_and_exports_back(tmp_path: Path) -> None:
    from flows.render_batch import render_batch

    timeline = otio.schema.Timeline(name="ep101", global_start_time=RT(86400, 24))  # 01:00:00:00
    track = otio.schema.Track(kind=otio.schema.TrackKind.Video)
    timeline.tracks.append(track)
    track.append(otio.schema.Gap(source_range=TR(duration=RT(12, 24))))  # a slate's worth of black first
    for i, (code, start, frames) in enumerate((("sh010", 2, 6), ("sh020", 0, 8))):
        anim = animate([2] * 6, width=W, height=H, character=make_character(3 + i))
        write_video(anim.frames, tmp_path / "in" / f"{code}.mkv", fps=24, lossless=True)
        media = otio.schema.ExternalReference(target_url=f"{code}.mkv")
        clip = otio.schema.Clip(name=code, media_reference=media, source_range=TR(RT(start, 24), RT(frames, 24)))
        if code == "sh010":
            clip.metadata["toonfarm"] = {"deliver": ["png", "h264", "prores4444"]}  # editorial wants ProRes here
        track.append(clip)
        track.append(otio.schema.Gap(source_range=TR(duration=RT(4, 24))))
    missing = otio.schema.ExternalReference(target_url="sh030.mkv")  # never handed over: no version to show
    track.append(otio.schema.Clip(name="sh030", media_reference=missing, source_range=TR(RT(0, 24), RT(5, 24))))
    cut = tmp_path / "in" / "ep101.otio"
    otio.adapters.write_to_file(timeline, str(cut))
    cut.with_name("ep101.otio.yaml").write_text("defaults: {show: ep101, sequence: sq010}\n")

    settings = settings_for(tmp_path, shot_defaults={"backend": "crossfade"})
    batch = render_batch(str(cut), settings)
    assert batch.summary == "rendered 5 pairs, reused 0, failed 0"  # drawings 2, 4, 6 and 0, 2, 4, 6 in the ranges
    assert [shot for shot, _ in batch.unplanned] == ["ep101/sq010/sh030"]
    frames = {o.shot_id: probe_video(o.mp4).frame_count for o in batch.outcomes}  # type: ignore[arg-type]
    assert frames == {"ep101/sq010/sh010": 6, "ep101/sq010/sh020": 8}
    outputs = {o.shot_id: {f.kind: Path(f.path) for f in o.outputs} for o in batch.outcomes}
    prores = outputs["ep101/sq010/sh010"]["prores4444"]
    assert prores.name == "sh010_v001.mov" and _timecode(prores) == "00:00:00:02"  # the clip's source in point
    assert "prores4444" not in outputs["ep101/sq010/sh020"]

    runner = CliRunner()
    for out in (tmp_path / "conform.otio", tmp_path / "conform.edl"):
        result = runner.invoke(app, ["export", str(cut), str(out), "-o", str(settings.output_root)])
        assert result.exit_code == 0, result.output
        assert result.stdout.strip() == f"wrote {out}: 1 h264, 1 prores4444, 1 gap"
        assert result.stderr.strip() == "toonfarm: warning: ep101/sq010/sh030: no version yet"

    back = otio.adapters.read_from_file(str(tmp_path / "conform.otio"))
    assert (back.name, back.global_start_time) == ("ep101", RT(86400, 24))
    (video,) = back.video_tracks()
    placed = [(type(item).__name__, item.name, item.range_in_parent()) for item in video]
    assert [(kind, name, r.start_time.value, r.duration.value) for kind, name, r in placed] == [
        ("Gap", "", 0, 12), ("Clip", "sh010", 12, 6), ("Gap", "", 18, 4), ("Clip", "sh020", 22, 8),
        ("Gap", "", 30, 4), ("Gap", "sh030", 34, 5),
    ]  # same record timing as the cut: the renders sit exactly where their clips did
    sh010, sh020 = (item for item in video if isinstance(item, otio.schema.Clip))
    assert _file(sh010.media_reference.target_url) == prores
    assert sh010.source_range == TR(RT(2, 24), RT(6, 24))  # the ProRes starts at its timecode 00:00:00:02
    assert sh010.media_reference.available_range == TR(RT(2, 24), RT(6, 24))
    assert _file(sh020.media_reference.target_url) == outputs["ep101/sq010/sh020"]["h264"]
    assert sh020.source_range == TR(RT(0, 24), RT(8, 24))
    about = dict(sh010.metadata["toonfarm_version"])
    assert (about["shot"], about["version"], about["format"]) == ("ep101/sq010/sh010", 1, "prores4444")

    edl = (tmp_path / "conform.edl").read_text()
    events = [line.split() for line in edl.splitlines() if line[:3].isdigit()]
    assert [e[-4:] for e in events] == [
        ["00:00:00:02", "00:00:00:08", "01:00:00:12", "01:00:00:18"],
        ["00:00:00:00", "00:00:00:08", "01:00:00:22", "01:00:01:06"],
    ]
    from_edl = otio.adapters.read_from_string(edl, "cmx_3600", rate=24)
    clips = [c for c in from_edl.video_tracks()[0] if isinstance(c, otio.schema.Clip)]
    assert [(c.name, _file(c.media_reference.target_url)) for c in clips] == [
        ("sh010", prores), ("sh020", outputs["ep101/sq010/sh020"]["h264"])
    ]


def test_a_yaml_list_exports_back_to_back_in_list_order(tmp_path: Path) -> None:
    from flows.render_batch import render_batch

    shots = make_shots(tmp_path / "in", {"sh0020": {"timing": [2, 2]}, "sh0010": {"timing": [3, 3]}}, backend="crossfade")
    settings = settings_for(tmp_path)
    assert render_batch(str(shots.path), settings).ok
    out = tmp_path / "dailies.edl"
    result = CliRunner().invoke(app, ["export", str(shots.path), str(out), "-o", str(settings.output_root)])
    assert result.exit_code == 0 and result.stdout.strip() == f"wrote {out}: 2 h264", result.output
    back = otio.adapters.read_from_file(str(out), rate=24)
    (video,) = back.video_tracks()
    record = [(c.name, c.range_in_parent().duration.value) for c in video if isinstance(c, otio.schema.Clip)]
    assert record == [("sh0020", 4), ("sh0010", 6)]  # list order, not render order; back to back
    events = [line.split() for line in out.read_text().splitlines() if line[:3].isdigit()]
    assert [e[-2:] for e in events] == [["01:00:00:00", "01:00:00:04"], ["01:00:00:04", "01:00:00:10"]]

    result = CliRunner().invoke(app, ["export", str(shots.path), str(tmp_path / "dailies.mov"), "-o",
                                      str(settings.output_root)])  # fmt: skip
    assert result.exit_code == 2
    assert result.stderr.strip() == f"toonfarm: {tmp_path / 'dailies.mov'}: export writes a cut: give a .otio or .edl file"
