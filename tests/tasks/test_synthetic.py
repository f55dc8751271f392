"""The synthetic cartoon: deterministic, poses linear in s, shots with known drawings and cuts, exact files."""

from __future__ import annotations

from dataclasses import replace
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from tasks.synthetic import Pose, animate, draw_frame, make_character, write_keyframe_images, write_video
from tooncrafter_model.frames import Frame, pixel_hash, read_frame

Decode = Callable[[Path], list[Frame]]


def test_same_seed_same_pixels_and_another_seed_another_character() -> None:
    a = draw_frame(0.4, width=128, height=80, seed=3)
    b = draw_frame(0.4, width=128, height=80, seed=3)
    assert a.shape == (80, 128, 3) and a.dtype == np.uint8
    assert pixel_hash(a) == pixel_hash(b)
    assert make_character(3) == make_character(3)
    assert make_character(3) != make_character(4)
    assert not np.array_equal(a, draw_frame(0.4, width=128, height=80, seed=4))


def test_pose_is_linear_in_s_and_the_drawing_depends_on_the_pose_only() -> None:
    ch = make_character(1)
    assert ch.pose(0.0) == ch.start and ch.pose(1.0) == ch.end
    mid = ch.pose(0.25)
    for got, a, b in zip(mid.astuple(), ch.start.astuple(), ch.end.astuple(), strict=True):
        assert got == pytest.approx(a + 0.25 * (b - a))
    # The in-between at s is exactly the drawing of a character whose motion starts at pose(s).
    at_s = draw_frame(0.25, character=ch)
    assert np.array_equal(at_s, draw_frame(0.0, character=replace(ch, start=mid)))
    # ...and every pose parameter shows in the picture.
    for field in ("x", "y", "tilt", "arm", "scale"):
        nudged = replace(mid, **{field: getattr(mid, field) + (0.05 if field in ("x", "y", "scale") else 10.0)})
        assert not np.array_equal(at_s, draw_frame(0.0, character=replace(ch, start=nudged))), field


def test_hard_edges_use_only_the_palette() -> None:
    ch = make_character(2)
    frame = draw_frame(0.5, width=160, height=96, character=ch, antialias=False)
    colours = {tuple(int(v) for v in c) for c in frame.reshape(-1, 3)}
    assert colours <= {ch.body, ch.head, ch.arm, ch.ink, ch.sky, ch.ground}
    smooth = draw_frame(0.5, width=160, height=96, character=ch)
    assert len({tuple(int(v) for v in c) for c in smooth.reshape(-1, 3)}) > len(colours)


def test_animate_holds_drawings_and_knows_its_ground_truth() -> None:
    anim = animate([2, 3, 4, 2, 3], cut_at=9, seed=5)
    assert len(anim.frames) == 14
    assert anim.keyframes == [0, 2, 5, 9, 11]
    assert anim.cuts == [9]
    for start, end in zip(anim.keyframes, anim.keyframes[1:] + [14], strict=True):
        for f in range(start + 1, end):
            assert np.array_equal(anim.frames[f], anim.frames[start])  # held
    for a, b in zip(anim.keyframes, anim.keyframes[1:], strict=False):
        assert not np.array_equal(anim.frames[a], anim.frames[b])  # a new drawing
    # s is linear in time inside each scene and restarts after the cut.
    assert anim.smooth[:9] == pytest.approx([f / 8 for f in range(9)])
    assert anim.smooth[9:] == pytest.approx([f / 4 for f in range(5)])
    assert anim.poses[6] == anim.smooth[5]
    # The cut shows another scene: another sky.
    assert not np.array_equal(anim.frames[0][0, 0], anim.frames[9][0, 0])
    # The truth at a keyframe is the drawing; inside a hold it is the pose at that frame's own time.
    assert np.array_equal(anim.truth(5), anim.frames[5])
    assert np.array_equal(anim.truth(6), draw_frame(6 / 8, character=anim.characters[6]))
    assert not np.array_equal(anim.truth(6), anim.frames[6])


@pytest.mark.parametrize("bad", [{"timing": []}, {"timing": [2, 0]}, {"timing": [2, 2], "cut_at": 3}])
def test_animate_refuses_impossible_timings(bad: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        animate(**bad)  # type: ignore[arg-type]


def test_lossless_video_decodes_to_the_exact_frames(tmp_path: Path, decode_all: Decode) -> None:
    anim = animate([2, 3, 1], width=96, height=64)
    path = write_video(anim.frames, tmp_path / "lossless.mp4", 24, lossless=True)
    decoded = decode_all(path)
    assert len(decoded) == len(anim.frames)
    assert all(np.array_equal(d, f) for d, f in zip(decoded, anim.frames, strict=True))


def test_h264_video_is_close_but_not_exact(tmp_path: Path, decode_all: Decode) -> None:
    anim = animate([2, 2], width=96, height=64)
    path = write_video(anim.frames, tmp_path / "rough.mp4", 12)
    decoded = decode_all(path)
    assert len(decoded) == 4 and decoded[0].shape == (64, 96, 3)
    error = np.abs(decoded[0].astype(int) - anim.frames[0].astype(int)).mean()
    assert 0 < error < 4


def test_write_video_refuses_bad_input(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="even width and height"):
        write_video([np.zeros((63, 96, 3), np.uint8)], tmp_path / "odd.mp4")
    with pytest.raises(ValueError, match="no frames"):
        write_video([], tmp_path / "empty.mp4")
    with pytest.raises(ValueError, match="64x96x3 uint8"):
        write_video([np.zeros((64, 96, 3), np.uint8), np.zeros((64, 98, 3), np.uint8)], tmp_path / "mixed.mp4")


def test_keyframe_images_are_the_drawings(tmp_path: Path) -> None:
    anim = animate([3, 2, 4])
    written = write_keyframe_images(anim.frames, anim.keyframes, tmp_path / "keys")
    assert [k for k, _ in written] == [0, 3, 5]
    assert [p.name for _, p in written] == ["key_0000.png", "key_0003.png", "key_0005.png"]
    for k, path in written:
        assert np.array_equal(read_frame(path), anim.frames[k])


def test_pose_lerp_extrapolates_linearly() -> None:
    a, b = Pose(0.0, 0.0, 0.0, 0.0, 1.0), Pose(1.0, 2.0, 10.0, 20.0, 2.0)
    assert a.lerp(b, 1.5) == Pose(1.5, 3.0, 15.0, 30.0, 2.5)
