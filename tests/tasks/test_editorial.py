"""Cuts as shot lists: OTIO timelines and CMX 3600 EDLs the tests write, pointing at videos the tests make."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import imageio_ffmpeg
import opentimelineio as otio
import pytest
import yaml
from typer.testing import CliRunner

from flows.cli import app
from tasks.editorial import media_timecode
from tasks.shotlist import ShotListError, load_shotlist
from tasks.synthetic import animate, write_video

RT = otio.opentime.RationalTime
TR = otio.opentime.TimeRange


def _rough(path: Path, frames: int = 24, *, timecode: str | None = None) -> Path:
    """A small rough animation on 2s (a lossless video), optionally carrying a start timecode."""
    anim = animate([2] * (frames // 2), width=64, height=48)
    write_video(anim.frames, path, fps=24, lossless=True)
    if timecode is not None:  # stamp it: copy the stream, add the timecode track
        stamped = path.with_name("tc_" + path.name)
        subprocess.run(
            [imageio_ffmpeg.get_ffmpeg_exe(), "-loglevel", "error", "-i", str(path), "-c", "copy",
             "-timecode", timecode, "-y", str(stamped)], check=True,
        )
        stamped.replace(path)
    return path


def _clip(name: str, url: str | None, start: int, frames: int, media: tuple[int, int] | None = None) -> otio.schema.Clip:
    ref: otio.core.MediaReference = otio.schema.MissingReference()
    if url is not None:
        available = TR(RT(media[0], 24), RT(media[1], 24)) if media else None
        ref = otio.schema.ExternalReference(target_url=url, available_range=available)
    return otio.schema.Clip(name=name, media_reference=ref, source_range=TR(RT(start, 24), RT(frames, 24)))


def _cut(folder: Path, clips: list[otio.core.Item], *, name: str = "ep101_cut") -> Path:
    timeline = otio.schema.Timeline(name=name, global_start_time=RT(86400, 24))  # 01:00:00:00
    track = otio.schema.Track(kind=otio.schema.TrackKind.Video)
    for item in clips:
        track.append(item)
    timeline.tracks.append(track)
    path = folder / "cut.otio"
    otio.adapters.write_to_file(timeline, str(path))
    return path


def _sidecar(cut: Path, defaults: dict[str, object]) -> None:
    cut.with_name(cut.name + ".yaml").write_text(yaml.safe_dump({"defaults": defaults}))


# ------------------------------------------------------------------------------------------------ OTIO


def test_otio_clips_become_shots_with_their_range_and_place_in_the_cut(tmp_path: Path) -> None:
    a = _rough(tmp_path / "rough" / "sh010.mkv")
    b = _rough(tmp_path / "rough" / "sh 020.mkv")
    prompted = _clip("sh020", (tmp_path / "rough" / "sh 020.mkv").as_uri(), 86404, 12, media=(86400, 24))
    prompted.metadata["toonfarm"] = {"backend": "crossfade", "render": {"seed": 7}}
    cut = _cut(tmp_path, [
        _clip("sh010", "rough/sh010.mkv", 2, 10),  # relative path, no media range: frames count from 0
        otio.schema.Gap(source_range=TR(duration=RT(6, 24))),
        prompted,  # a file:// URL (space quoted) whose media starts at 01:00:00:00
        otio.schema.Clip(name="slate", media_reference=otio.schema.GeneratorReference(generator_kind="black"),
                         source_range=TR(duration=RT(24, 24))),
    ])
    _sidecar(cut, {"show": "ep101", "sequence": "sq010", "prompt": "a cat"})

    first, second = load_shotlist(cut).shots
    assert (first.id, first.source.video, first.start, first.end, first.fps) == ("ep101/sq010/sh010", a, 2, 11, 24.0)
    assert (second.id, second.source.video, second.start, second.end) == ("ep101/sq010/sh020", b, 4, 15)
    assert (first.backend, second.backend, second.render.seed, second.prompt) == ("rife", "crossfade", 7, "a cat")
    assert first.edit is not None and second.edit is not None
    assert (first.edit.cut, first.edit.clip, first.edit.record_in, first.edit.duration) == ("ep101_cut", 0, 86400, 10)
    assert first.edit.start == second.edit.start == 86400  # the cut starts at 01:00:00:00
    assert (first.edit.record_timecode, second.edit.record_timecode) == ("01:00:00:00", "01:00:00:16")
    assert (second.edit.source_in, second.edit.source_timecode, second.edit.rate) == (86404, "01:00:00:04", "24/1")
    assert first.where("source") == f"{cut}: clip 1 'sh010': source"


def test_plan_reads_an_otio_cut_within_each_clips_range(tmp_path: Path) -> None:
    _rough(tmp_path / "rough" / "sh010.mkv")
    _rough(tmp_path / "rough" / "sh020.mkv")
    cut = _cut(tmp_path, [_clip("sh010", "rough/sh010.mkv", 2, 10), _clip("sh020", "rough/sh020.mkv", 0, 24)])
    result = CliRunner().invoke(app, ["plan", str(cut), "--json"])
    assert result.exit_code == 0, result.output
    plans = {p["code"]: p for p in json.loads(result.output)["shots"]}
    assert plans["sh010"]["keyframes"] == [2, 4, 6, 8, 10]  # source frames 2-11 on 2s: five drawings
    assert plans["sh020"]["keyframes"] == list(range(0, 24, 2))


def test_cut_mistakes_are_one_line_naming_the_clip(tmp_path: Path) -> None:
    _rough(tmp_path / "sh010.mkv")
    nested = otio.schema.Stack(name="compound")
    retimed = _clip("sh050", "sh010.mkv", 0, 4)
    retimed.effects.append(otio.schema.LinearTimeWarp(time_scalar=2.0))
    cut = _cut(tmp_path, [
        _clip("sh010", "sh010.mkv", 0, 4),
        _clip("sh020", None, 0, 4),
        _clip("sh 030", "sh010.mkv", 0, 4),
        _clip("sh010", "sh010.mkv", 4, 4),
        retimed,
        _clip("sh060", "https://example.invalid/sh060.mov", 0, 4),
        _clip("sh070", "sh010.mkv", 86390, 4, media=(86400, 24)),
    ])
    with pytest.raises(ShotListError) as info:
        load_shotlist(cut)
    assert str(info.value) == f"{cut}: clip 2 'sh020': media: the clip names no media file (in an EDL: a '* FROM CLIP:' comment)"
    cut = _cut(tmp_path, [_clip("sh010", "sh010.mkv", 0, 4), _clip("sh 030", "sh010.mkv", 0, 4), _clip("sh010", "sh010.mkv", 4, 4)])
    lines = str(pytest.raises(ShotListError, load_shotlist, cut).value).splitlines()
    assert lines[0].startswith(f"{cut}: clip 2 'sh 030': code: must be a folder-safe name")
    assert lines[1] == f"{cut}: clip 3 'sh010': code: duplicate shot 'untitled/main/sh010' (first at clip 1 'sh010')"
    for clips, message in (
        ([retimed], "clip 1 'sh050': effects: LinearTimeWarp; a retimed or frozen clip cannot be in-betweened as cut"),
        ([_clip("sh060", "https://example.invalid/sh060.mov", 0, 4)], "clip 1 'sh060': media: 'https://example.invalid/sh060.mov' is not a local file"),
        ([_clip("sh070", "sh010.mkv", 86390, 4, media=(86400, 24))],
         "clip 1 'sh070': source range: starts at 00:59:59:14, before the media's first frame at 01:00:00:00"),
        ([nested], "clip 1 'compound': a nested Stack; flatten the cut to one video track of clips"),
        ([otio.schema.Gap(source_range=TR(duration=RT(6, 24)))], "no clips on the first video track"),
    ):
        cut = _cut(tmp_path, clips)
        assert str(pytest.raises(ShotListError, load_shotlist, cut).value) == f"{cut}: {message}"


def test_sidecar_and_file_mistakes_name_their_file(tmp_path: Path) -> None:
    _rough(tmp_path / "sh010.mkv")
    cut = _cut(tmp_path, [_clip("sh010", "sh010.mkv", 0, 4)])
    sidecar = cut.with_name("cut.otio.yaml")
    for text, message in (
        ("defaults: {fps: abc}\n", f"{sidecar}: defaults.fps: must be a positive number (got 'abc')"),
        ("defaults: {show: x}\nshots: []\n", f"{sidecar}: shots: unknown field"),
        ("defaults: [1\n", f"{sidecar}: line 2, column 1: YAML syntax error:"),
        ("", f"{sidecar}: must be a mapping with a 'defaults' block (got an empty file)"),
    ):
        sidecar.write_text(text)
        assert str(pytest.raises(ShotListError, load_shotlist, cut).value).startswith(message)
    sidecar.unlink()
    cut.write_text("{not json")
    assert str(pytest.raises(ShotListError, load_shotlist, cut).value).startswith(f"{cut}: not a readable OTIO cut (")


# ------------------------------------------------------------------------------------------------- EDL

_EDL = """TITLE: ep101 cut
FCM: NON-DROP FRAME

001  AX       V     C        00:00:00:02 00:00:00:12 01:00:00:00 01:00:00:10
* FROM CLIP NAME: sh010
* FROM CLIP: rough/sh010.mkv

002  BL       V     C        00:00:00:00 00:00:01:00 01:00:00:10 01:00:01:10

003  AX       V     C        01:00:00:05 01:00:00:17 01:00:01:10 01:00:01:22
* FROM CLIP NAME: sh020
* FROM FILE: {stamped}
"""


def test_edl_events_become_shots_at_the_sidecars_rate(tmp_path: Path) -> None:
    _rough(tmp_path / "rough" / "sh010.mkv")
    stamped = _rough(tmp_path / "rough" / "sh020.mkv", timecode="01:00:00:00")
    assert media_timecode(stamped, 24) == 86400 and media_timecode(tmp_path / "rough" / "sh010.mkv", 24) is None
    cut = tmp_path / "cut.edl"
    cut.write_text(_EDL.format(stamped=stamped))
    with pytest.raises(ShotListError, match=r"cut\.edl: fps: an EDL holds no frame rate; set defaults\.fps in cut\.edl\.yaml"):
        load_shotlist(cut)
    _sidecar(cut, {"fps": 24, "show": "ep101"})

    first, second = load_shotlist(cut).shots  # the black event between them is filler, not a shot
    assert (first.code, first.source.video, first.start, first.end, first.fps) == ("sh010", tmp_path / "rough" / "sh010.mkv", 2, 11, 24.0)
    assert (second.code, second.start, second.end) == ("sh020", 5, 16)  # 01:00:00:05 on a file starting at 01:00:00:00
    assert first.edit is not None and second.edit is not None
    assert (first.edit.record_timecode, second.edit.record_timecode, second.edit.source_timecode) == (
        "01:00:00:00", "01:00:01:10", "01:00:00:05")
    assert (second.edit.clip, second.edit.duration, second.edit.cut) == (1, 12, "ep101 cut")


def test_malformed_edl_is_one_line(tmp_path: Path) -> None:
    cut = tmp_path / "cut.edl"
    cut.write_text("001  AX  V  C  00:00:00:00 00:00\n")
    _sidecar(cut, {"fps": 24})
    message = str(pytest.raises(ShotListError, load_shotlist, cut).value)
    assert message.startswith(f"{cut}: not a readable EDL cut (") and "\n" not in message


def test_command_line_defaults_fill_what_the_sidecar_leaves(tmp_path: Path) -> None:
    _rough(tmp_path / "rough" / "sh010.mkv")
    stamped = _rough(tmp_path / "rough" / "sh020.mkv", timecode="01:00:00:00")
    cut = tmp_path / "cut.edl"
    cut.write_text(_EDL.format(stamped=stamped))
    run = CliRunner().invoke(app, ["plan", str(cut), "--json", "-D", "fps=24", "--default", "render.seed=3"])
    assert run.exit_code == 0, run.output
    assert [p["code"] for p in json.loads(run.output)["shots"]] == ["sh010", "sh020"]
    first = load_shotlist(cut, defaults={"fps": 24, "show": "cli", "render": {"seed": 3}}).shots[0]
    assert (first.show, first.render.seed) == ("cli", 3)
    _sidecar(cut, {"fps": 24, "show": "ep101"})  # the list's own defaults win
    assert load_shotlist(cut, defaults={"show": "cli"}).shots[0].show == "ep101"
    for args, message in (
        (["-D", "fps=abc"], f"toonfarm: {cut}: --default fps: must be a positive number (got 'abc')"),
        (["-D", "fps"], "toonfarm: --default expects KEY=VALUE, got 'fps'"),
        (["-D", "backend=toon", "-D", "gamma=2"], f"toonfarm: {cut}: --default gamma: unknown field"),
    ):
        run = CliRunner().invoke(app, ["plan", str(cut), *args])
        assert run.exit_code == 2 and run.output.strip() == message, run.output
