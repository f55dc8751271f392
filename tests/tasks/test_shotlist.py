"""The shot list: schema, defaults, paths kept inside its folder, CSV, and one-line errors naming file and field."""

from __future__ import annotations

import pickle
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tasks.settings import Limits
from tasks.shotlist import QA, RenderParams, Shot, ShotList, ShotListError, Source, load_shotlist

WriteList = Callable[..., ShotList]


def _error(path: Path, text: str, **kwargs: Any) -> str:
    path.write_text(text)
    with pytest.raises(ShotListError) as info:
        load_shotlist(path, **kwargs)
    return str(info.value)


def test_the_smallest_shot_list_gets_every_default(tmp_path: Path) -> None:
    path = tmp_path / "shots.yaml"
    path.write_text("shots: [{code: sq010_sh0010, source: rough/sq010_sh0010.mp4, fps: 24}]\n")
    shots = load_shotlist(path)
    assert shots.path == path.resolve() and shots.root == tmp_path.resolve()
    (shot,) = shots.shots
    assert shot.id == "untitled/main/sq010_sh0010"
    assert shot.source == Source(video=tmp_path.resolve() / "rough/sq010_sh0010.mp4")
    assert shot.source.kind == "video"
    assert shot.fps == 24.0
    assert (shot.start, shot.end, shot.prompt, shot.backend, shot.lut, shot.output, shot.priority) == (
        None, None, "", "rife", None, None, 0
    )  # fmt: skip
    assert shot.render == RenderParams(seed=0, inbetweens=None, params={})


def test_shots_inherit_defaults_and_override_them_key_by_key(write_shotlist: WriteList, tmp_path: Path) -> None:
    shots = write_shotlist(
        [
            {"code": "sh0010", "source": "a.mp4"},
            {"code": "sh0020", "source": "b.mp4", "fps": 12, "backend": "toon",
             "render": {"inbetweens": 2, "params": {"cfg": 5.0}}, "priority": 3},
        ],  # fmt: skip
        defaults={"show": "demo", "sequence": "sq010", "fps": 24, "backend": "toon", "prompt": "a cat",
                  "render": {"seed": 7, "params": {"steps": 10, "cfg": 7.5}}, "lut": "luts/show.cube",
                  "output": "out"},  # fmt: skip
    )
    first, second = shots.shots
    assert first.id == "demo/sq010/sh0010" and second.id == "demo/sq010/sh0020"
    assert (first.fps, first.backend, first.prompt) == (24.0, "toon", "a cat")
    assert first.render == RenderParams(seed=7, inbetweens=None, params={"steps": 10, "cfg": 7.5})
    assert first.lut == tmp_path.resolve() / "luts/show.cube" and first.output == tmp_path.resolve() / "out"
    assert (second.fps, second.backend, second.priority) == (12.0, "toon", 3)
    assert second.render == RenderParams(seed=7, inbetweens=2, params={"steps": 10, "cfg": 5.0})


def test_image_sources_long_form_and_shorthand(write_shotlist: WriteList, tmp_path: Path) -> None:
    images = [{"frame": 0, "image": "k/a.png"}, {"frame": 6, "image": "k/b.png"}]
    shots = write_shotlist(
        [
            {"code": "long", "source": {"images": images, "cuts": [6]}, "fps": 24, "end": 11},
            {"code": "short", "source": images, "fps": 24},
        ]
    )
    long, short = shots.shots
    assert long.source.kind == "images" and long.source.video is None
    assert [(k.frame, k.image) for k in long.source.images or ()] == [
        (0, tmp_path.resolve() / "k/a.png"),
        (6, tmp_path.resolve() / "k/b.png"),
    ]
    assert long.source.cuts == (6,) and long.end == 11
    assert short.source.images == long.source.images and short.source.cuts == ()


def test_fps_accepts_numbers_and_ratios(write_shotlist: WriteList) -> None:
    shots = write_shotlist(
        [{"code": "a", "source": "a.mp4", "fps": "24000/1001"}, {"code": "b", "source": "b.mp4", "fps": 12.5}]
    )
    assert shots.shots[0].fps == pytest.approx(23.976, abs=1e-3) and shots.shots[1].fps == 12.5


def test_priority_orders_rush_shots_first_then_file_order(write_shotlist: WriteList) -> None:
    shots = write_shotlist(
        [{"code": c, "source": f"{c}.mp4", "priority": p} for c, p in (("a", 0), ("b", 5), ("c", 0), ("d", 5))],
        defaults={"fps": 24},
    )
    assert [s.code for s in shots.ordered()] == ["b", "d", "a", "c"]
    assert shots.get("untitled/main/c").code == "c"
    with pytest.raises(KeyError):
        shots.get("untitled/main/zz")


def test_a_loaded_shot_names_its_fields_and_shows_paths_as_written(write_shotlist: WriteList, tmp_path: Path) -> None:
    shots = write_shotlist(
        [{"code": "a", "source": "a.mp4"}, {"code": "b", "source": "rough/b.mp4"}], defaults={"fps": 24}
    )
    shot = shots.shots[1]
    assert shot.where("source") == f"{tmp_path / 'shots.yaml'}: shots[1].source"
    assert shot.shown(shot.source.video or Path()) == "rough/b.mp4"
    again = pickle.loads(pickle.dumps(shot))  # shots travel to workers
    assert again == shot and again.where("fps") == f"{tmp_path / 'shots.yaml'}: shots[1].fps"
    direct = Shot(code="x", source=Source(video=Path("/abs/x.mp4")), fps=24)
    assert direct.where("source") == "shot untitled/main/x: source" and direct.shown(Path("/abs/x.mp4")) == "/abs/x.mp4"


# ----------------------------------------------------------------------------- paths


def test_a_path_leaving_the_folder_is_refused_unless_allowed(tmp_path: Path) -> None:
    lists = tmp_path / "lists"
    lists.mkdir()
    path = lists / "shots.yaml"
    text = "shots:\n  - {code: a, source: ../elsewhere/a.mp4, fps: 24}\n"
    message = _error(path, text)
    assert message == (
        f"{path}: shots[0].source: leaves the shot list's folder {lists.resolve()}; "
        "allow_outside_root=True (--allow-outside-root) permits it (got '../elsewhere/a.mp4')"
    )
    shot = load_shotlist(path, allow_outside_root=True).shots[0]
    assert shot.source.video == tmp_path.resolve() / "elsewhere/a.mp4"
    assert shot.shown(shot.source.video) == str(tmp_path.resolve() / "elsewhere/a.mp4")


def test_symlinks_and_absolute_paths_are_judged_where_they_lead(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    root = tmp_path / "root"
    (root / "rough").mkdir(parents=True)
    (root / "escape").symlink_to(outside, target_is_directory=True)
    path = root / "shots.yaml"
    message = _error(path, "shots:\n  - {code: a, source: escape/a.mp4, fps: 24}\n")
    assert message.startswith(f"{path}: shots[0].source: leaves the shot list's folder")
    inside = root.resolve() / "rough/a.mp4"
    path.write_text(f"shots:\n  - {{code: a, source: '{inside}', fps: 24, lut: rough/../show.cube}}\n")
    shot = load_shotlist(path).shots[0]
    assert shot.source.video == inside and shot.lut == root.resolve() / "show.cube"
    message = _error(path, "defaults: {lut: ../show.cube}\nshots:\n  - {code: a, source: a.mp4, fps: 24}\n")
    assert message.startswith(f"{path}: defaults.lut: leaves the shot list's folder")


# ----------------------------------------------------------------------------- errors

BASE = "  - {code: a, source: a.mp4, fps: 24}\n  - {code: b, source: b.mp4, fps: 24}\n"
NAME_RULE = "must be a folder-safe name: letters, digits, '.', '_' or '-', not starting with '.'"


@pytest.mark.parametrize(
    ("shot", "expected"),
    [
        ("{code: c, source: c.mp4, fps: abc}", "shots[2].fps: must be a positive number (got 'abc')"),
        ("{code: c, source: c.mp4, fps: -5}", "shots[2].fps: must be a positive number (got -5)"),
        ("{code: c, source: c.mp4, fps: true}", "shots[2].fps: must be a positive number (got True)"),
        ("{code: c, source: c.mp4}", "shots[2].fps: required"),
        ("{source: c.mp4, fps: 24}", "shots[2].code: required"),
        ("{code: c, fps: 24}", "shots[2].source: required"),
        ("{code: c, source: c.mp4, fps: 24, fsp: 24}", "shots[2].fsp: unknown field"),
        ("{code: c/d, source: c.mp4, fps: 24}", f"shots[2].code: {NAME_RULE} (got 'c/d')"),
        ("{code: c, show: .., source: c.mp4, fps: 24}", f"shots[2].show: {NAME_RULE} (got '..')"),
        ("{code: c, source: c.mp4, fps: 24, backend: tooon}",
         "shots[2].backend: unknown backend; choose one of crossfade, rife, simulated-gpu, toon (got 'tooon')"),
        ("{code: c, source: c.mp4, fps: 24, lut: show.png}", "shots[2].lut: must be a .cube LUT file (got 'show.png')"),
        ("{code: c, source: c.mp4, fps: 24, start: 10, end: 4}",
         "shots[2].end: must not come before start (10) (got 4)"),
        ("{code: c, source: c.mp4, fps: 24, start: -1}",
         "shots[2].start: input should be greater than or equal to 0 (got -1)"),
        ("{code: c, source: c.mp4, fps: 24, priority: high}",
         "shots[2].priority: input should be a valid integer, unable to parse string as an integer (got 'high')"),
        ("{code: c, source: c.mp4, fps: 24, render: {inbetweens: -1}}",
         "shots[2].render.inbetweens: input should be greater than or equal to 0 (got -1)"),
        ("{code: c, source: c.mp4, fps: 24, render: {inbetween: 3}}", "shots[2].render.inbetween: unknown field"),
        ("{code: c, source: 12, fps: 24}",
         "shots[2].source: must be a video path, an image sequence, a list of (frame, image) keyframe images, or (images, cuts) (got 12)"),
        ("{code: c, source: {video: c.mp4, images: [{frame: 0, image: a.png}]}, fps: 24}",
         "shots[2].source: give either a video, an image sequence or keyframe images"),
        ("{code: c, source: {video: c.mp4, cuts: [3]}, fps: 24}",
         "shots[2].source.cuts: explicit cuts are only for image sources (a video's cuts are detected)"),
        ("{code: c, source: {images: [{frame: 0, image: a.png}, {frame: 4, image: b.png}], cuts: [3]}, fps: 24}",
         "shots[2].source.cuts: a cut must start on a keyframe image; no image at frame(s) [3]"),
        ("{code: c, source: [{frame: 4, image: a.png}, {frame: 4, image: b.png}], fps: 24}",
         "shots[2].source: frame numbers must increase strictly, got [4, 4]"),
        ("{code: c, source: [], fps: 24}", "shots[2].source: must list at least one keyframe image"),
        ("{code: c, source: [{frame: 0}], fps: 24}", "shots[2].source[0].image: required"),
        ("{code: a, source: c.mp4, fps: 24}", "shots[2].code: duplicate shot 'untitled/main/a' (first at shots[0])"),
        ("just-a-string", "shots[2]: must be a mapping of shot fields (got str)"),
    ],
)
def test_each_problem_is_one_line_naming_file_and_field(tmp_path: Path, shot: str, expected: str) -> None:
    path = tmp_path / "shots.yaml"
    assert _error(path, f"shots:\n{BASE}  - {shot}\n") == f"{path}: {expected}"


def test_several_problems_give_one_complete_line_each(tmp_path: Path) -> None:
    path = tmp_path / "shots.yaml"
    text = "shots:\n  - {code: a, source: a.mp4, fps: abc}\n  - {code: b, source: b.mp4, fps: 24, backend: x}\n"
    lines = _error(path, text).splitlines()
    assert lines == [
        f"{path}: shots[0].fps: must be a positive number (got 'abc')",
        f"{path}: shots[1].backend: unknown backend; choose one of crossfade, rife, simulated-gpu, toon (got 'x')",
    ]


def test_a_duplicate_shot_in_another_sequence_is_a_different_shot(write_shotlist: WriteList) -> None:
    shots = write_shotlist(
        [{"code": "a", "source": "a.mp4"}, {"code": "a", "sequence": "sq2", "source": "a.mp4"}], defaults={"fps": 24}
    )
    assert [s.id for s in shots.shots] == ["untitled/main/a", "untitled/sq2/a"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("shots: [{code: a, source: a.mp4, fps: 24}\n",
         "line 2, column 1: YAML syntax error: expected ',' or ']', but got '<stream end>'"),
        ("shots:\n  - code: a\n    code: b\n",
         "line 3, column 5: YAML syntax error: key 'code' appears twice in one mapping"),
        ("", "must be a mapping with a 'shots' list (got an empty file)"),
        ("- {code: a}\n", "must be a mapping with a 'shots' list (got list)"),
        ("shots: []\n", "shots: must list at least one shot"),
        ("shots: {code: a}\n", "shots: input should be a valid list"),
        ("defaults: {fps: 24}\n", "shots: required"),
        ("shots: [{code: a, source: a.mp4, fps: 24}]\nshow: x\n", "show: unknown field"),
        ("defaults: {fps: 0}\nshots: [{code: a, source: a.mp4}]\n", "defaults.fps: must be a positive number (got 0)"),
        ("defaults: {code: a}\nshots: [{code: a, source: a.mp4, fps: 1}]\n", "defaults.code: unknown field"),
        ("defaults: {render: {seeds: 1}}\nshots: [{code: a, source: a.mp4, fps: 1}]\n",
         "defaults.render.seeds: unknown field"),
    ],
)
def test_whole_file_problems_name_the_line_or_the_block(tmp_path: Path, text: str, expected: str) -> None:
    path = tmp_path / "shots.yaml"
    assert _error(path, text) == f"{path}: {expected}"


def test_unreadable_files_and_unknown_formats(tmp_path: Path) -> None:
    missing = tmp_path / "nope.yaml"
    with pytest.raises(ShotListError, match=r"nope.yaml: cannot read shot list: No such file or directory$"):
        load_shotlist(missing)
    with pytest.raises(ShotListError, match=r"shots.json: a shot list must be a .yaml, .yml, .csv, .otio or .edl file$"):
        load_shotlist(tmp_path / "shots.json")
    binary = tmp_path / "shots.yml"
    binary.write_bytes(b"\xff\xfe\x00bad")
    with pytest.raises(ShotListError, match=r"shots.yml: cannot read shot list: 'utf-8' codec can't decode"):
        load_shotlist(binary)


# ----------------------------------------------------------------------------- CSV


def test_csv_rows_are_shots(tmp_path: Path) -> None:
    path = tmp_path / "shots.csv"
    path.write_text(
        "code,source,fps,show,sequence,prompt,backend,seed,inbetweens,lut,priority,start,end\n"
        "sh0010,rough/a.mp4,24,demo,sq010,\"a cat, walking\",toon,7,3,show.cube,2,4,40\n"
        "sh0020, rough/b.mp4, 12,,,,,,,,,,\n"
    )
    first, second = load_shotlist(path).shots
    assert first.id == "demo/sq010/sh0010" and first.prompt == "a cat, walking" and first.backend == "toon"
    assert first.render == RenderParams(seed=7, inbetweens=3) and first.lut == tmp_path.resolve() / "show.cube"
    assert (first.priority, first.start, first.end) == (2, 4, 40)
    assert second.id == "untitled/main/sh0020" and second.fps == 12.0 and second.render == RenderParams()
    assert second.source.video == tmp_path.resolve() / "rough/b.mp4"
    assert second.where("source") == f"{path}: line 3: source"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("code,source,fps\na,a.mp4,24\nb,b.mp4,abc\n", "line 3: fps: must be a positive number (got 'abc')"),
        ("code,source,fps,seed\na,a.mp4,24,x\n",
         "line 2: seed: input should be a valid integer, unable to parse string as an integer (got 'x')"),
        ("code,source,fps,inbetweens\na,a.mp4,24,-2\n",
         "line 2: inbetweens: input should be greater than or equal to 0 (got '-2')"),
        ("code,source,fps\na,a.mp4,24\na,b.mp4,24\n",
         "line 3: code: duplicate shot 'untitled/main/a' (first at line 2)"),
        ("code,source,fps\na,../a.mp4,24\n", "line 2: source: leaves the shot list's folder"),
        ("code,source,fps,colour\na,a.mp4,24,red\n",
         "line 1: unknown column 'colour' (columns: code, source, fps, show,"),
        ("code,source\na,a.mp4\n", "line 1: missing column 'fps'"),
        ("code,source,fps\na,a.mp4,24,extra\n", "line 2: expected 3 cells"),
        ("code,source,fps\na,a.mp4\n", "line 2: expected 3 cells"),
        ("code,source,fps\n", "shots: must list at least one shot"),
        ("code,source,fps\n\"a,a.mp4,24\n", "line 2: CSV syntax error: unexpected end of data"),
    ],
)
def test_csv_errors_name_the_line_and_the_column(tmp_path: Path, text: str, expected: str) -> None:
    path = tmp_path / "shots.csv"
    assert _error(path, text).startswith(f"{path}: {expected}")


def test_render_params_must_be_the_backends_own(write_shotlist: WriteList) -> None:
    with pytest.raises(ShotListError, match=r"shots\[0\]\.render: the rife backend takes no parameter steps \(it takes: none\)"):
        write_shotlist([{"code": "sh0010", "source": "a.mp4", "render": {"params": {"steps": 10}}}], defaults={"fps": 24})


def test_a_qa_policy_per_shot_inherits_key_by_key(write_shotlist: WriteList) -> None:
    shots = write_shotlist(
        [
            {"code": "sh0010", "source": "a.mp4"},
            {"code": "sh0020", "source": "b.mp4",
             "qa": {"on_fail": "fallback", "fallback": "crossfade", "thresholds": {"tone": 2}}},
            {"code": "sh0030", "source": "c.mp4", "backend": "crossfade", "qa": {"retries": 3}},
        ],
        defaults={"fps": 24, "qa": {"on_fail": "retry", "thresholds": {"ghost": 0.15}}},
    )
    first, second, third = shots.shots
    assert first.qa == QA(on_fail="retry", retries=2, fallback="rife", thresholds={"ghost": 0.15})
    assert (second.qa.on_fail, second.qa.fallback) == ("fallback", "crossfade")
    assert second.qa.thresholds == {"ghost": 0.15, "tone": 2.0}
    assert third.qa.on_fail == "retry" and third.qa.retries == 3
    assert Shot.model_fields["qa"].default_factory is not None and QA().on_fail == "flag"  # by default: flag


@pytest.mark.parametrize(
    ("qa", "expected"),
    [
        ("{on_fail: melt}", "shots[0].qa.on_fail: input should be 'flag', 'retry' or 'fallback' (got 'melt')"),
        ("{retries: 0}", "shots[0].qa.retries: input should be greater than or equal to 1 (got 0)"),
        ("{retries: 11}", "shots[0].qa.retries: input should be less than or equal to 10 (got 11)"),
        ("{fallback: nope}",
         "shots[0].qa.fallback: unknown backend; choose one of crossfade, rife, simulated-gpu, toon (got 'nope')"),
        ("{on_fail: fallback}", "shots[0].qa: fallback rife is the shot's own backend; fall back to another one"),
        ("{thresholds: {blur: 1}}",
         "shots[0].qa.thresholds: unknown score blur; the scores are tone, flicker, ghost, lines, vanish"),
        ("{thresholds: {ghost: -1}}", "shots[0].qa.thresholds: ghost: must be a number > 0, got -1.0"),
        ("{when: always}", "shots[0].qa.when: unknown field"),
    ],
)
def test_a_bad_qa_policy_is_one_line_naming_the_field(tmp_path: Path, qa: str, expected: str) -> None:
    path = tmp_path / "shots.yaml"
    assert _error(path, f"shots:\n  - {{code: a, source: a.mp4, fps: 24, qa: {qa}}}\n") == f"{path}: {expected}"


# ----------------------------------------------------------------------------- limits (RELIABILITY.md)

LIMITED = Limits(max_frame=1000, max_shot_frames=100, max_inbetweens=12, max_name_length=8, min_fps=6, max_fps=60)


@pytest.mark.parametrize(
    ("shot", "expected"),
    [
        ('{code: "c\\n", source: c.mp4, fps: 24}', f"shots[2].code: {NAME_RULE} (got 'c\\n')"),
        ('{code: c, sequence: "sq010\\n", source: c.mp4, fps: 24}', f"shots[2].sequence: {NAME_RULE} (got 'sq010\\n')"),
        ("{code: sh0010long, source: c.mp4, fps: 24}",
         "shots[2].code: must be at most 8 characters (setting limits.max_name_length) (got 'sh0010long')"),
        ("{code: c, source: c.mp4, fps: 5000}",
         "shots[2].fps: must be between 6 and 60 fps (settings limits.min_fps, limits.max_fps) (got 5000)"),
        ("{code: c, source: c.mp4, fps: 2}",
         "shots[2].fps: must be between 6 and 60 fps (settings limits.min_fps, limits.max_fps) (got 2)"),
        ("{code: c, source: c.mp4, fps: 24, end: 10000000}",
         "shots[2].end: must be at most 1000 (setting limits.max_frame) (got 10000000)"),
        ("{code: c, source: [{frame: 0, image: a.png}, {frame: 10000000, image: b.png}], fps: 24}",
         "shots[2].source[1].frame: must be at most 1000 (setting limits.max_frame) (got 10000000)"),
        ("{code: c, source: [{frame: 0, image: a.png}], fps: 24, end: 999}",
         "shots[2].end: the range 0-999 is over 100 frames (setting limits.max_shot_frames) (got 999)"),
        ("{code: c, source: c.mp4, fps: 24, start: 10, end: 200}",
         "shots[2].end: the range 10-200 is over 100 frames (setting limits.max_shot_frames) (got 200)"),
        ("{code: c, source: c.mp4, fps: 24, render: {inbetweens: 10000}}",
         "shots[2].render.inbetweens: must be at most 12 (setting limits.max_inbetweens) (got 10000)"),
        ("{code: c, source: c.mp4, fps: 24, render: {seed: 36893488147419103232}}",
         "shots[2].render.seed: input should be less than or equal to 9223372036854775807 (got 36893488147419103232)"),
        ("{code: c, source: c.mp4, fps: 24, render: {seed: 9223372036854775808}}",  # a BIGINT column's end
         "shots[2].render.seed: input should be less than or equal to 9223372036854775807 (got 9223372036854775808)"),
        ("{code: c, source: c.mp4, fps: 24, render: {seed: -1}}",
         "shots[2].render.seed: input should be greater than or equal to 0 (got -1)"),
        ("{code: c, source: c.mp4, fps: 24, background: red}",
         "shots[2].background: must be a colour: \"#rrggbb\" or [r, g, b] with values 0-255 (got 'red')"),
        ("{code: c, source: c.mp4, fps: 24, xsheet: timing.xls}",
         "shots[2].xsheet: must be a .csv exposure sheet (columns frame, drawing) (got 'timing.xls')"),
        ("{code: c, source: [{frame: 0, image: a.png}], fps: 24, xsheet: x.csv}",
         "shots[2].xsheet: an exposure sheet times a video or an image sequence, not keyframe images (got 'x.csv')"),
        ("{code: c, source: rough/c.####.%04d.png, fps: 24}",
         "shots[2].source: a sequence pattern holds one frame number (#### or %04d) (got 'rough/c.####.%04d.png')"),
    ],
)
def test_limits_are_checked_at_load_naming_the_setting(tmp_path: Path, shot: str, expected: str) -> None:
    path = tmp_path / "shots.yaml"
    assert _error(path, f"shots:\n{BASE}  - {shot}\n", limits=LIMITED) == f"{path}: {expected}"


def test_default_limits_are_sane() -> None:
    limits = Limits()
    assert (limits.max_frame, limits.max_shot_frames, limits.max_inbetweens) == (1_000_000, 100_000, 250)
    assert (limits.min_fps, limits.max_fps, limits.max_name_length) == (1.0, 240.0, 64)
    assert limits.max_image_pixels >= 7680 * 4320  # 8K keyframes still load


def test_a_yaml_alias_bomb_is_refused_before_it_expands(tmp_path: Path) -> None:
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{i}: &a{i} [*a{i - 1}, *a{i - 1}, *a{i - 1}, *a{i - 1}, *a{i - 1}, *a{i - 1}, *a{i - 1}, *a{i - 1}, "
              f"*a{i - 1}, *a{i - 1}]" for i in range(1, 9)]  # fmt: skip
    text = "defaults:\n  prompt: ok\nshots: [{code: a, source: a.mp4, fps: 24, render: {params: {bomb: *a8}}}]\n"
    path = tmp_path / "shots.yaml"
    bomb = "\n".join(lines) + "\n" + text
    assert len(bomb) < 2000
    message = _error(path, bomb)
    assert message == f"{path}: over 1000000 YAML nodes once aliases are expanded (setting limits.max_yaml_nodes)"
    path.write_text("shots: [{code: a, source: a.mp4, fps: &f 24}, {code: b, source: b.mp4, fps: *f}]\n")
    assert [s.fps for s in load_shotlist(path).shots] == [24.0, 24.0]  # a few aliases are fine


def test_a_shot_list_over_the_size_limit_is_not_read(tmp_path: Path) -> None:
    path = tmp_path / "shots.yaml"
    path.write_text("shots: [{code: a, source: a.mp4, fps: 24}]\n" + "#" * 2000 + "\n")
    message = _error(path, path.read_text(), limits=Limits(max_shotlist_bytes=1024))
    assert message == f"{path}: 2044 bytes, over the limit of 1024 (setting limits.max_shotlist_bytes)"


def test_an_excel_csv_with_a_byte_order_mark_loads(tmp_path: Path) -> None:
    path = tmp_path / "shots.csv"
    path.write_bytes("code,source,fps\r\nsh0010,rough/a.mp4,24\r\n".encode("utf-8-sig"))
    (shot,) = load_shotlist(path).shots
    assert shot.code == "sh0010" and shot.source.video == tmp_path.resolve() / "rough/a.mp4"


def test_limits_travel_with_the_shots(write_shotlist: WriteList) -> None:
    (shot,) = write_shotlist([{"code": "a", "source": "a.mp4", "fps": 24}], limits=LIMITED).shots
    assert shot.limits == LIMITED
    assert pickle.loads(pickle.dumps(shot)).limits == LIMITED


# ----------------------------------------------------------------------------- sequences, sheets, backgrounds


def test_image_sequences_by_pattern_or_folder(write_shotlist: WriteList, tmp_path: Path) -> None:
    (tmp_path / "rough" / "sh030").mkdir(parents=True)
    shots = write_shotlist(
        [
            {"code": "hashes", "source": "rough/sh010.####.png"},
            {"code": "printf", "source": "rough/sh020.%04d.tif", "xsheet": "sheets/sh020.csv"},
            {"code": "folder", "source": "rough/sh030"},
            {"code": "long", "source": {"sequence": "rough/sh040.#.tga"}, "background": "#336699"},
            {"code": "video", "source": "rough/sh050.mov", "background": [10, 20, 30]},
        ],
        defaults={"fps": 24},
    ).shots
    root = tmp_path.resolve()
    assert [s.source.kind for s in shots] == ["sequence", "sequence", "sequence", "sequence", "video"]
    assert shots[0].source.sequence == root / "rough/sh010.####.png"
    assert shots[1].xsheet == root / "sheets/sh020.csv"
    assert shots[2].source.sequence == root / "rough/sh030"
    assert shots[3].background == (0x33, 0x66, 0x99) and shots[4].background == (10, 20, 30)
    assert shots[0].background == (255, 255, 255)
