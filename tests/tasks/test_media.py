"""Media as studios hand it over: ProRes and DNxHR movies with timecodes, 23.976 and 29.97, variable frame
rates, truncated files and files damaged in the middle, image sequences (patterns, folders, gaps,
TIFF/TGA/JPEG/PNG), RGBA, 16-bit and grey keyframes, exposure sheets, and the limits on all of them. Every bad
input is one line naming file and field.
"""

from __future__ import annotations

import re
import struct
import subprocess
import zlib
from collections.abc import Callable
from pathlib import Path

import cv2
import imageio_ffmpeg
import numpy as np
import pytest

from tasks.detect import MediaError, detect_shot
from tasks.settings import Limits
from tasks.shotlist import ShotList
from tasks.synthetic import animate, line_test, write_vfr_video, write_video
from tests.media import damage_frame, probe_video
from tooncrafter_model.frames import Frame, pixel_hash, read_frame, read_image

WriteList = Callable[..., ShotList]
TIMING = [2, 3, 4, 2, 3]  # drawings at 0 2 5 9 11, 14 frames


def _write(path: Path, frame: Frame, **params: int) -> Path:
    """An image file in the format its suffix names, RGB in; OpenCV writes it (never the code under test)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    flags = [item for pair in params.items() for item in (getattr(cv2, pair[0]), pair[1])]
    assert cv2.imwrite(str(path), np.ascontiguousarray(frame[..., ::-1]), flags)
    return path


def _error(shot_list: ShotList, index: int = 0, store: Path | None = None) -> str:
    with pytest.raises(MediaError) as info:
        detect_shot(shot_list.shots[index], store or shot_list.root / "store")
    message = str(info.value)
    assert "\n" not in message
    return message


# ----------------------------------------------------------------------------- videos


@pytest.mark.parametrize(
    ("codec", "rate", "fps", "timecode"),
    [("prores", "24000/1001", "24000/1001", "01:00:00:00"), ("dnxhr", "30000/1001", 29.97, "00:59:59;28")],
    ids=["prores-23.976", "dnxhr-29.97"],
)
def test_editing_suite_movies_keep_their_drawings_and_timecode(
    write_shotlist: WriteList, tmp_path: Path, codec: str, rate: str, fps: float | str, timecode: str
) -> None:
    anim = animate(TIMING, width=256, height=160, seed=2)
    write_video(anim.frames, tmp_path / "rough.mov", rate, codec=codec, timecode=timecode)
    shot = write_shotlist([{"code": "sh", "source": "rough.mov", "fps": fps}]).shots[0]
    plan = detect_shot(shot, tmp_path / "store")
    assert [k.frame for k in plan.keyframes] == anim.keyframes
    assert plan.ingest.timecode == timecode and plan.ingest.warnings == ()
    assert plan.keyframes[1].origin == f"{tmp_path.resolve() / 'rough.mov'}#frame=2"


def test_a_video_at_another_rate_than_the_shot_list_says_is_flagged(write_shotlist: WriteList, tmp_path: Path) -> None:
    write_video(animate([2, 2]).frames, tmp_path / "a.mp4", "30000/1001")
    shot = write_shotlist([{"code": "sh", "source": "a.mp4", "fps": 24}]).shots[0]
    assert detect_shot(shot, tmp_path / "store").ingest.warnings == ("a.mp4 runs at 29.970 fps; the shot list says 24.000",)


def test_a_variable_frame_rate_capture_is_placed_by_its_timestamps(write_shotlist: WriteList, tmp_path: Path) -> None:
    anim = animate([1] * 6, width=128, height=80, seed=4)
    # A phone that stalled twice: frames at 0, 40, 80, 200, 240 and 360 ms.
    write_vfr_video(anim.frames, [0.0, 0.04, 0.08, 0.2, 0.24, 0.36], tmp_path / "phone.mp4")
    shot = write_shotlist([{"code": "sh", "source": "phone.mp4", "fps": 25}]).shots[0]
    plan = detect_shot(shot, tmp_path / "store")
    assert [k.frame for k in plan.keyframes] == [0, 1, 2, 5, 6, 9]  # 40 ms per frame at 25 fps
    assert plan.frame_count == 10
    assert [k.pixel_hash for k in plan.keyframes] == [pixel_hash(f) for f in anim.frames]
    assert plan.ingest.notes == ("variable frame rate: frames placed by their timestamps on the 25 fps grid",)


def test_a_truncated_video_fails_its_shot_instead_of_losing_drawings(write_shotlist: WriteList, tmp_path: Path) -> None:
    anim = line_test([2] * 12, width=256, height=160, seed=1)
    write_video(anim.frames, tmp_path / "whole.mp4", 24, crf=10)
    ffmpeg = imageio_ffmpeg.get_ffmpeg_exe()
    # The index at the front (as cameras and web exports write it), so a cut-off file still opens.
    subprocess.run([ffmpeg, "-v", "error", "-y", "-i", str(tmp_path / "whole.mp4"), "-c", "copy",
                    "-movflags", "+faststart", str(tmp_path / "front.mp4")], check=True)  # fmt: skip
    data = (tmp_path / "front.mp4").read_bytes()
    (tmp_path / "cut.mp4").write_bytes(data[: len(data) * 2 // 3])
    shots = write_shotlist([{"code": "cut", "source": "cut.mp4"}, {"code": "whole", "source": "front.mp4"}],
                           defaults={"fps": 24})  # fmt: skip
    message = _error(shots)
    listing = tmp_path / "shots.yaml"
    assert message.startswith(f"{listing}: shots[0].source: cut.mp4: decoded ")
    assert message.endswith(" of the 24 frames its container lists (truncated or damaged file)")
    assert len(detect_shot(shots.shots[1], tmp_path / "store").keyframes) == 12


@pytest.mark.parametrize(
    ("codec", "name", "frame", "said"),
    [
        ("h264", "a.mp4", 11, r"error while decoding MB \d+ \d+, bytestream -?\d+"),  # stored 13th, shown 12th
        ("prores", "a.mov", 12, r"corrupt decoded frame"),  # the frame flagged, nothing logged
        ("mpeg4", "a.mp4", 12, r"ac-tex damaged at \d+ \d+"),
        ("mjpeg", "a.mov", 12, r"overread \d+"),  # logged, the frame not flagged
    ],
    ids=["h264", "prores", "mpeg4", "mjpeg"],
)
def test_a_video_damaged_in_the_middle_fails_its_shot(
    write_shotlist: WriteList, tmp_path: Path, codec: str, name: str, frame: int, said: str
) -> None:
    """Half the data of the 13th frame stored lost: every frame still decodes, the damage concealed; the shot
    fails, naming the frame."""
    write_video(line_test([2] * 12, width=128, height=80, seed=1).frames, tmp_path / name, 24, codec=codec, crf=10)
    damage_frame(tmp_path / name, 12)
    assert probe_video(tmp_path / name).frame_count == 24
    message = _error(write_shotlist([{"code": "sh", "source": name, "fps": 24}]))
    prefix = re.escape(f"{tmp_path / 'shots.yaml'}: shots[0].source: {name}: ")
    match = re.fullmatch(prefix + r"frame (\d+) of 24 is damaged \(decoder: (.+)\); re-export the video", message)
    assert match and int(match[1]) == frame and re.fullmatch(said, match[2]), message


def test_damage_past_a_shots_end_fails_it_while_its_frames_may_be_drawn_from_there(
    write_shotlist: WriteList, tmp_path: Path
) -> None:
    """A shot's last frames may be drawn from a reference up to 16 frames after its end: damage there fails the
    shot; damage further on is not the shot's."""
    write_video(line_test([2] * 12, width=128, height=80, seed=1).frames, tmp_path / "a.mp4", 24, crf=10)
    damage_frame(tmp_path / "a.mp4", 22)  # shown 22nd: frame 21
    near, far = {"code": "near", "source": "a.mp4", "end": 8}, {"code": "far", "source": "a.mp4", "end": 2}
    shots = write_shotlist([near, far], defaults={"fps": 24})
    assert _error(shots).startswith(f"{tmp_path / 'shots.yaml'}: shots[0].source: a.mp4: frame 21 of 24 is damaged (")
    assert detect_shot(shots.shots[1], tmp_path / "store").frame_count == 3


def test_a_png_movie_damaged_in_the_middle_is_short(write_shotlist: WriteList, tmp_path: Path) -> None:
    """PNG's decoder refuses the damaged frame outright: OpenCV stops reading there, the frame count says so."""
    write_video(line_test([2] * 12, width=128, height=80, seed=1).frames, tmp_path / "a.mov", 24, codec="png")
    damage_frame(tmp_path / "a.mov", 12)
    assert _error(write_shotlist([{"code": "sh", "source": "a.mov", "fps": 24}])) == (
        f"{tmp_path / 'shots.yaml'}: shots[0].source: a.mov: decoded 12 of the 24 frames its container lists "
        "(truncated or damaged file)"
    )


def test_video_limits_are_checked_before_decoding(write_shotlist: WriteList, tmp_path: Path) -> None:
    write_video(animate([4, 4]).frames, tmp_path / "a.mp4", 24)
    listing = tmp_path / "shots.yaml"
    short = write_shotlist([{"code": "a", "source": "a.mp4", "fps": 24}], limits=Limits(max_shot_frames=5))
    assert _error(short) == (
        f"{listing}: shots[0].source: a.mp4: 8 frames, over the limit of 5 (setting limits.max_shot_frames); "
        "give the shot a start and an end"
    )
    small = write_shotlist([{"code": "a", "source": "a.mp4", "fps": 24}], limits=Limits(max_image_pixels=5000))
    assert _error(small) == (
        f"{listing}: shots[0].source: a.mp4: 128x80 frames are over the limit of 5000 pixels "
        "(setting limits.max_image_pixels)"
    )
    few = write_shotlist([{"code": "a", "source": "a.mp4", "fps": 24}], limits=Limits(max_inbetweens=2))
    assert _error(few) == (
        f"{listing}: shots[0].source: the drawings at frames 0 and 4 leave 3 in-betweens, over the limit of 2 "
        "(setting limits.max_inbetweens)"
    )


# ----------------------------------------------------------------------------- image sequences


def test_a_sequence_of_changed_drawings_from_1001_holds_across_its_gaps(write_shotlist: WriteList, tmp_path: Path) -> None:
    anim = animate(TIMING, seed=3)
    for k in anim.keyframes:  # only the changed drawings, as exported by an animation package
        _write(tmp_path / "rough" / f"sh010.{1001 + k:04d}.png", anim.frames[k])
    shot = write_shotlist([{"code": "sh010", "source": "rough/sh010.####.png", "fps": 24, "end": 1014}]).shots[0]
    plan = detect_shot(shot, tmp_path / "store")
    assert [k.frame for k in plan.keyframes] == [1001 + k for k in anim.keyframes]
    assert (plan.first_frame, plan.frame_count) == (1001, 14)
    assert plan.ingest.gaps == ((1002, 1002), (1004, 1005), (1007, 1009), (1011, 1011), (1013, 1014))
    assert [k.pixel_hash for k in plan.keyframes] == [pixel_hash(anim.frames[k]) for k in anim.keyframes]
    assert plan.keyframes[2].origin == str(tmp_path.resolve() / "rough/sh010.1006.png")


@pytest.mark.parametrize(
    ("suffix", "params"),
    [(".jpg", {"IMWRITE_JPEG_QUALITY": 90}), (".tif", {}), (".png", {})],
    ids=["jpeg", "tiff", "png"],
)
def test_every_frame_sequences_are_detected_like_video(
    write_shotlist: WriteList, tmp_path: Path, suffix: str, params: dict[str, int]
) -> None:
    anim = animate(TIMING, seed=5)
    for n, frame in enumerate(anim.frames):
        _write(tmp_path / "rough" / f"sh020.{n + 1:04d}{suffix}", frame, **params)
    shot = write_shotlist([{"code": "sh020", "source": f"rough/sh020.%04d{suffix}", "fps": 24}]).shots[0]
    plan = detect_shot(shot, tmp_path / "store")
    assert [k.frame for k in plan.keyframes] == [1 + k for k in anim.keyframes]
    assert plan.ingest.gaps == () and plan.frame_count == len(anim.frames)


def test_a_folder_of_targa_frames(write_shotlist: WriteList, tmp_path: Path) -> None:
    anim = animate(TIMING, seed=6)
    for n, frame in enumerate(anim.frames):
        _write(tmp_path / "png" / f"f{n:03d}.png", frame)
    (tmp_path / "tga").mkdir()
    subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-v", "error", "-i", str(tmp_path / "png/f%03d.png"),
                    "-start_number", "1001", str(tmp_path / "tga/sh030_%04d.tga")], check=True)  # fmt: skip
    shot = write_shotlist([{"code": "sh030", "source": "tga", "fps": 24}]).shots[0]
    plan = detect_shot(shot, tmp_path / "store")
    assert shot.source.kind == "sequence"
    assert [k.frame for k in plan.keyframes] == [1001 + k for k in anim.keyframes]
    assert [k.pixel_hash for k in plan.keyframes] == [pixel_hash(anim.frames[k]) for k in anim.keyframes]


def test_bad_sequences_are_one_line_each(write_shotlist: WriteList, tmp_path: Path) -> None:
    frame = animate([1]).frames[0]
    _write(tmp_path / "two" / "a.0001.png", frame)
    _write(tmp_path / "two" / "b.0001.png", frame)
    _write(tmp_path / "sizes" / "s.0001.png", frame)
    _write(tmp_path / "sizes" / "s.0002.png", frame[:40, :64])
    shots = write_shotlist(
        [
            {"code": "two", "source": "two"},
            {"code": "none", "source": "sizes/x.####.png"},
            {"code": "gone", "source": "nowhere/x.####.png"},
            {"code": "sizes", "source": "sizes/s.####.png"},
        ],
        defaults={"fps": 24},
    )
    listing = tmp_path / "shots.yaml"
    assert [_error(shots, i) for i in range(4)] == [
        f"{listing}: shots[0].source: two: holds 2 image sequences (a.#.png, b.#.png); "
        "name one with a pattern such as rough/sh010.####.png",
        f"{listing}: shots[1].source: sizes/x.####.png: no numbered image files found",
        f"{listing}: shots[2].source: nowhere/x.####.png: folder nowhere not found",
        f"{listing}: shots[3].source: sizes/s.0002.png: size 64x40 differs from sizes/s.0001.png's 128x80",
    ]


# ----------------------------------------------------------------------------- keyframe images as they come


def test_rgba_line_art_is_composited_over_the_shots_background(write_shotlist: WriteList, tmp_path: Path) -> None:
    ink = np.zeros((80, 128, 4), np.uint8)
    cv2.circle(ink, (64, 40), 20, (30, 30, 30, 255), 3, cv2.LINE_AA)  # anti-aliased: translucent edges
    cv2.imwrite(str(tmp_path / "a.png"), ink)
    cv2.imwrite(str(tmp_path / "b.png"), np.roll(ink, 10, axis=1))
    shot = write_shotlist([{"code": "rgba", "fps": 24, "background": "#204060",
                            "source": [{"frame": 0, "image": "a.png"}, {"frame": 4, "image": "b.png"}]}]).shots[0]  # fmt: skip
    plan = detect_shot(shot, tmp_path / "store")
    stored = read_frame(plan.keyframes[0].path)
    alpha = ink[..., 3:].astype(np.float64) / 255
    expected = np.round(ink[..., :3].astype(np.float64) * alpha + np.array([0x20, 0x40, 0x60]) * (1 - alpha))
    assert np.abs(stored.astype(np.int64) - expected).max() <= 1
    assert tuple(stored[0, 0]) == (0x20, 0x40, 0x60)  # fully transparent: the background
    assert plan.ingest.notes == ("alpha composited over #204060",)
    assert 0.5 < read_image(tmp_path / "a.png").transparent < 1.0  # mostly clear paper, some ink


def test_16_bit_and_grey_keyframes(tmp_path: Path) -> None:
    rgb = animate([1]).frames[0]
    cv2.imwrite(str(tmp_path / "deep.png"), rgb[..., ::-1].astype(np.uint16) * 257)
    cv2.imwrite(str(tmp_path / "grey.png"), rgb[..., 1])
    deep, grey = read_image(tmp_path / "deep.png"), read_image(tmp_path / "grey.png")
    assert np.array_equal(deep.frame, rgb) and deep.conversions == ["16-bit reduced to 8-bit"]
    assert np.array_equal(grey.frame, np.repeat(rgb[..., 1:2], 3, axis=2))
    assert grey.conversions == ["grey expanded to RGB"]


def _png_header(width: int, height: int) -> bytes:
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    chunk = struct.pack(">I", 13) + b"IHDR" + ihdr + struct.pack(">I", zlib.crc32(b"IHDR" + ihdr))
    body = zlib.compress(b"\0" * 4096)
    idat = struct.pack(">I", len(body)) + b"IDAT" + body + struct.pack(">I", zlib.crc32(b"IDAT" + body))
    return b"\x89PNG\r\n\x1a\n" + chunk + idat + struct.pack(">I", 0) + b"IEND" + struct.pack(">I", zlib.crc32(b"IEND"))


def test_an_image_claiming_a_huge_size_is_refused_from_its_header(write_shotlist: WriteList, tmp_path: Path) -> None:
    (tmp_path / "bomb.png").write_bytes(_png_header(100_000, 100_000))
    _write(tmp_path / "ok.png", animate([1]).frames[0])
    shots = write_shotlist(
        [{"code": "bomb", "source": [{"frame": 0, "image": "ok.png"}, {"frame": 2, "image": "bomb.png"}]},
         {"code": "ok", "source": [{"frame": 0, "image": "ok.png"}]}],
        defaults={"fps": 24},
    )  # fmt: skip
    assert _error(shots) == (
        f"{tmp_path / 'shots.yaml'}: shots[0].source.images[1].image: bomb.png: 100000x100000 is over the limit "
        "of 40000000 pixels (setting limits.max_image_pixels)"
    )
    assert len(detect_shot(shots.shots[1], tmp_path / "store").keyframes) == 1  # the other shot still plans


# ----------------------------------------------------------------------------- exposure sheets


def test_an_exposure_sheet_gives_the_timing_and_shows_where_detection_differs(
    write_shotlist: WriteList, tmp_path: Path
) -> None:
    anim = animate([2, 3, 4, 2], seed=7)  # drawings at 0 2 5 9, 11 frames
    write_video(anim.frames, tmp_path / "rough.mp4", 24, lossless=True)
    # Excel's "CSV UTF-8": a byte-order mark, CRLF, an extra column, empty cells that hold the drawing above.
    sheet = "frame,drawing,action\r\n0,A,\r\n1,,\r\n2,B,turn\r\n5,B,\r\n7,C,\r\n9,D,\r\n"
    (tmp_path / "sh.csv").write_bytes(sheet.encode("utf-8-sig"))
    shot = write_shotlist([{"code": "sh", "source": "rough.mp4", "fps": 24, "xsheet": "sh.csv"}]).shots[0]
    plan = detect_shot(shot, tmp_path / "store")
    assert [k.frame for k in plan.keyframes] == [0, 2, 7, 9]
    assert plan.keyframes[2].pixel_hash == pixel_hash(anim.frames[7])
    assert plan.ingest.disagreements == (
        "frame 5: detection sees a new drawing, the sheet holds B",
        "frame 7: the sheet starts C, detection sees a hold",
    )


@pytest.mark.parametrize(
    ("sheet", "expected"),
    [
        ("frame,dwg\n0,A\n", "line 1: needs the columns frame and drawing (got frame, dwg)"),
        ("frame,drawing\n0,A\nx,B\n", "line 3: frame 'x' is not a whole number"),
        ("frame,drawing\n4,A\n2,B\n", "line 3: frame 2 does not come after frame 4"),
        ("frame,drawing\n0,\n", "line 2: the first frame needs a drawing"),
        ("frame,drawing\n3,A\n", "its first drawing, at frame 3, comes after the shot's first frame 0"),
    ],
)
def test_bad_exposure_sheets_name_the_line(write_shotlist: WriteList, tmp_path: Path, sheet: str, expected: str) -> None:
    write_video(animate([2, 2]).frames, tmp_path / "rough.mp4", 24)
    (tmp_path / "sh.csv").write_text(sheet)
    shots = write_shotlist([{"code": "sh", "source": "rough.mp4", "fps": 24, "xsheet": "sh.csv"}])
    assert _error(shots) == f"{tmp_path / 'shots.yaml'}: shots[0].xsheet: sh.csv: {expected}"
