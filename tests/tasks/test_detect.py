"""Detect: cuts, held drawings, pairs and stored keyframes, on videos and keyframe images the tests write."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest

from tasks.detect import (
    DetectConfig,
    HoldSlot,
    InbetweenSlot,
    Keyframe,
    KeySlot,
    MediaError,
    Pair,
    detect_shot,
    frame_layout,
)
from tasks.shotlist import Shot, ShotList, Source
from tasks.synthetic import animate, write_keyframe_images, write_video
from tooncrafter_model.frames import Frame, pixel_hash, read_frame

WriteList = Callable[..., ShotList]
Decode = Callable[[Path], list[Frame]]
SHARED = Path("/work/shared/data/pyscenedetect")


def _pairs(keyframes: list[int], cuts: list[int]) -> list[Pair]:
    """The pairs a correct plan has: consecutive drawings of one scene, b - a - 1 in-betweens each."""
    return [Pair(a, b, b - a - 1) for a, b in zip(keyframes, keyframes[1:], strict=False) if b not in cuts]


def _video_shot(
    write_shotlist: WriteList, tmp_path: Path, frames: list[Frame], *, lossless: bool, **fields: Any
) -> Shot:
    name = "rough/lossless.mp4" if lossless else "rough/h264.mp4"
    write_video(frames, tmp_path / name, 24, lossless=lossless)
    return write_shotlist([{"code": "sh0010", "source": name, "fps": 24, **fields}]).shots[0]


@pytest.mark.parametrize("lossless", [True, False], ids=["lossless", "h264"])
@pytest.mark.parametrize(
    "timing",
    [[2] * 8, [3] * 6, [4] * 5, [2, 3, 4, 1, 1, 2, 4, 3]],
    ids=["on2s", "on3s", "on4s", "mixed"],
)
def test_held_drawings_become_keyframes_and_pairs(
    write_shotlist: WriteList, tmp_path: Path, timing: list[int], lossless: bool
) -> None:
    anim = animate(timing, seed=len(timing))
    shot = _video_shot(write_shotlist, tmp_path, anim.frames, lossless=lossless)
    plan = detect_shot(shot, tmp_path / "store")
    assert [k.frame for k in plan.keyframes] == anim.keyframes
    assert plan.cuts == []
    assert plan.pairs == _pairs(anim.keyframes, [])
    assert (plan.first_frame, plan.frame_count, plan.width, plan.height) == (0, len(anim.frames), 128, 80)
    assert plan.last_frame == len(anim.frames) - 1


@pytest.mark.parametrize("lossless", [True, False], ids=["lossless", "h264"])
def test_no_pair_crosses_a_hard_cut(write_shotlist: WriteList, tmp_path: Path, lossless: bool) -> None:
    anim = animate([2, 3, 4, 2, 3, 2], cut_at=9, seed=11)
    shot = _video_shot(write_shotlist, tmp_path, anim.frames, lossless=lossless)
    plan = detect_shot(shot, tmp_path / "store")
    assert plan.to_json() == {
        "code": "sh0010",
        "cuts": [9],
        "keyframes": [0, 2, 5, 9, 11, 14],
        "pairs": [
            {"a": 0, "b": 2, "inbetweens": 1},
            {"a": 2, "b": 5, "inbetweens": 2},
            {"a": 9, "b": 11, "inbetweens": 1},
            {"a": 11, "b": 14, "inbetweens": 2},
        ],
    }
    assert anim.cuts == plan.cuts and anim.keyframes == [k.frame for k in plan.keyframes]


def test_a_small_local_change_is_a_new_drawing(write_shotlist: WriteList, tmp_path: Path) -> None:
    """A blink-sized change: the frame-wide content score stays under its threshold, the local score does not."""
    anim = animate([12], seed=3)
    blink = anim.frames[0].copy()
    cv2.circle(blink, (20, 20), 2, (10, 10, 10), -1)
    frames = anim.frames[:4] + [blink] * 4 + anim.frames[:4]
    shot = _video_shot(write_shotlist, tmp_path, frames, lossless=False)
    assert [k.frame for k in detect_shot(shot, tmp_path / "store").keyframes] == [0, 4, 8]
    blind = DetectConfig(local_threshold=1e9)
    assert [k.frame for k in detect_shot(shot, tmp_path / "store", blind).keyframes] == [0]


@pytest.mark.parametrize("lossless", [True, False], ids=["lossless", "h264"])
def test_keyframe_pngs_hold_the_decoded_source_pixels(
    write_shotlist: WriteList, tmp_path: Path, decode_all: Decode, lossless: bool
) -> None:
    anim = animate([2, 3, 2], seed=4)
    shot = _video_shot(write_shotlist, tmp_path, anim.frames, lossless=lossless)
    plan = detect_shot(shot, tmp_path / "store")
    decoded = decode_all(shot.source.video or Path())
    for key in plan.keyframes:
        assert key.path == tmp_path / "store" / "keyframes" / f"{key.pixel_hash}.png"
        stored = read_frame(key.path)
        assert np.array_equal(stored, decoded[key.frame])
        assert pixel_hash(stored) == key.pixel_hash
        if lossless:
            assert np.array_equal(stored, anim.frames[key.frame])


def test_same_pixels_same_hash_whatever_the_file(write_shotlist: WriteList, tmp_path: Path) -> None:
    anim = animate([3, 3, 3], seed=8)
    write_video(anim.frames, tmp_path / "one.mp4", 24, lossless=True)
    write_video(anim.frames, tmp_path / "two_renamed.mp4", 24, lossless=True)
    one, two = write_shotlist(
        [{"code": "one", "source": "one.mp4"}, {"code": "two", "source": "two_renamed.mp4"}], defaults={"fps": 24}
    ).shots
    store = tmp_path / "store"
    first, second = detect_shot(one, store), detect_shot(two, store)
    assert [k.pixel_hash for k in first.keyframes] == [k.pixel_hash for k in second.keyframes]
    assert [k.pixel_hash for k in first.keyframes] == [pixel_hash(anim.frames[f]) for f in (0, 3, 6)]
    stored = sorted(p.name for p in (store / "keyframes").iterdir())
    assert stored == sorted(f"{k.pixel_hash}.png" for k in first.keyframes)
    mtimes = [k.path.stat().st_mtime_ns for k in first.keyframes]
    detect_shot(one, store)
    assert [k.path.stat().st_mtime_ns for k in first.keyframes] == mtimes  # existing keyframes are not rewritten


# ----------------------------------------------------------------------------- frame ranges and layout


def test_a_frame_range_keeps_source_frame_numbers(write_shotlist: WriteList, tmp_path: Path) -> None:
    anim = animate([2, 3, 4, 2, 3, 2], cut_at=9, seed=2)  # drawings at 0 2 5 9 11 14, 16 frames
    shot = _video_shot(write_shotlist, tmp_path, anim.frames, lossless=False, start=3, end=12)
    plan = detect_shot(shot, tmp_path / "store")
    assert (plan.first_frame, plan.frame_count, plan.last_frame) == (3, 10, 12)
    assert plan.to_json() == {
        "code": "sh0010",
        "cuts": [9],
        "keyframes": [3, 5, 9, 11],
        "pairs": [{"a": 3, "b": 5, "inbetweens": 1}, {"a": 9, "b": 11, "inbetweens": 1}],
    }
    # The range's first keyframe is the drawing showing there (drawn at frame 2), as decoded at frame 3.
    assert plan.keyframes[0].pixel_hash == pixel_hash(read_frame(plan.keyframes[0].path))
    layout = frame_layout(plan)
    assert len(layout) == plan.frame_count
    assert layout == [
        KeySlot(0), InbetweenSlot(0, 0),           # 3, 4
        KeySlot(1), HoldSlot(1), HoldSlot(1),      # 5 .. 8: last drawing of the first scene, held to the cut
        HoldSlot(1),
        KeySlot(2), InbetweenSlot(1, 0),           # 9, 10
        KeySlot(3), HoldSlot(3),                   # 11, 12: held to the range's end
    ]  # fmt: skip


def test_a_fixed_inbetween_count_respaces_the_timeline(write_shotlist: WriteList, tmp_path: Path) -> None:
    anim = animate([2, 4, 3], seed=6)
    shot = _video_shot(write_shotlist, tmp_path, anim.frames, lossless=True, render={"inbetweens": 3})
    plan = detect_shot(shot, tmp_path / "store")
    assert plan.pairs == [Pair(0, 2, 3), Pair(2, 6, 3)]
    assert plan.pairs[0].times == pytest.approx((0.25, 0.5, 0.75))
    layout = frame_layout(plan)
    assert layout == [KeySlot(0)] + [InbetweenSlot(0, j) for j in range(3)] + [KeySlot(1)] + [
        InbetweenSlot(1, j) for j in range(3)
    ] + [KeySlot(2), HoldSlot(2), HoldSlot(2)]


def test_layout_follows_the_source_timeline(write_shotlist: WriteList, tmp_path: Path) -> None:
    anim = animate([2, 3, 4, 1, 2], cut_at=9, seed=9)
    shot = _video_shot(write_shotlist, tmp_path, anim.frames, lossless=True)
    plan = detect_shot(shot, tmp_path / "store")
    layout = frame_layout(plan)
    assert len(layout) == plan.frame_count == len(anim.frames)
    for frame, slot in enumerate(layout):
        if isinstance(slot, KeySlot):
            assert plan.keyframes[slot.keyframe].frame == frame
        elif isinstance(slot, InbetweenSlot):
            pair = plan.pairs[slot.pair]
            assert pair.a + 1 + slot.index == frame < pair.b
            # the in-between's time is where the true pose lies between the two drawings
            assert anim.smooth[pair.a] + pair.times[slot.index] * (anim.smooth[pair.b] - anim.smooth[pair.a]) == (
                pytest.approx(anim.smooth[frame])
            )
        else:
            assert plan.keyframes[slot.keyframe].frame < frame
            assert np.array_equal(anim.frames[frame], anim.frames[plan.keyframes[slot.keyframe].frame])


def test_pair_times() -> None:
    assert Pair(0, 1, 0).times == ()
    assert Pair(0, 4, 3).times == (0.25, 0.5, 0.75)
    assert Pair(4, 7, 2).times == pytest.approx((1 / 3, 2 / 3))


# ----------------------------------------------------------------------------- image sources


def test_image_sources_give_the_same_plan(write_shotlist: WriteList, tmp_path: Path) -> None:
    anim = animate([2, 3, 4, 2, 3], cut_at=9, seed=12)
    written = write_keyframe_images(anim.frames, anim.keyframes, tmp_path / "keys")
    images = [{"frame": k, "image": p.relative_to(tmp_path).as_posix()} for k, p in written]
    full, ranged = write_shotlist(
        [
            {"code": "full", "source": {"images": images, "cuts": [9]}, "end": 13},
            {"code": "ranged", "source": {"images": images, "cuts": [9]}, "start": 3, "end": 10},
        ],
        defaults={"fps": 24},
    ).shots
    plan = detect_shot(full, tmp_path / "store")
    assert plan.to_json() == {
        "code": "full",
        "cuts": [9],
        "keyframes": [0, 2, 5, 9, 11],
        "pairs": [
            {"a": 0, "b": 2, "inbetweens": 1},
            {"a": 2, "b": 5, "inbetweens": 2},
            {"a": 9, "b": 11, "inbetweens": 1},
        ],
    }
    assert (plan.first_frame, plan.frame_count, plan.width, plan.height) == (0, 14, 128, 80)
    assert [k.pixel_hash for k in plan.keyframes] == [pixel_hash(anim.frames[k]) for k in anim.keyframes]
    assert len(frame_layout(plan)) == 14
    plan = detect_shot(ranged, tmp_path / "store")
    assert plan.to_json()["keyframes"] == [3, 5, 9] and plan.cuts == [9] and plan.frame_count == 8
    assert plan.keyframes[0] == Keyframe(3, pixel_hash(anim.frames[2]), plan.keyframes[0].path)


def test_image_source_without_end_stops_at_its_last_image(write_shotlist: WriteList, tmp_path: Path) -> None:
    anim = animate([4, 4])
    written = write_keyframe_images(anim.frames, anim.keyframes, tmp_path)
    images = [{"frame": k, "image": p.name} for k, p in written]
    shot = write_shotlist([{"code": "a", "fps": 24, "source": images}]).shots[0]
    plan = detect_shot(shot, tmp_path / "store")
    assert (plan.to_json()["pairs"], plan.frame_count) == ([{"a": 0, "b": 4, "inbetweens": 3}], 5)


# ----------------------------------------------------------------------------- bad media


def test_missing_unreadable_and_empty_videos(write_shotlist: WriteList, tmp_path: Path) -> None:
    anim = animate([2, 2])
    write_video(anim.frames, tmp_path / "good.mp4", 24)
    (tmp_path / "garbage.mp4").write_bytes(np.random.default_rng(0).bytes(4096))
    (tmp_path / "empty.mp4").write_bytes(b"")
    data = (tmp_path / "good.mp4").read_bytes()
    (tmp_path / "truncated.mp4").write_bytes(data[: len(data) // 2])
    shots = write_shotlist(
        [{"code": n, "source": f"{n}.mp4"} for n in ("missing", "garbage", "empty", "truncated", "good")],
        defaults={"fps": 24},
    ).shots
    listing = tmp_path / "shots.yaml"
    expected = [
        f"{listing}: shots[0].source: missing.mp4: video file not found",
        f"{listing}: shots[1].source: garbage.mp4: not a readable video",
        f"{listing}: shots[2].source: empty.mp4: not a readable video",
        f"{listing}: shots[3].source: truncated.mp4: not a readable video",
    ]
    for shot, message in zip(shots, expected, strict=False):
        with pytest.raises(MediaError) as info:
            detect_shot(shot, tmp_path / "store")
        assert str(info.value).startswith(message) and "\n" not in str(info.value)
    assert len(detect_shot(shots[4], tmp_path / "store").keyframes) == 2  # one bad shot does not stop the others


def test_a_range_outside_the_video_names_the_field(write_shotlist: WriteList, tmp_path: Path) -> None:
    write_video(animate([2, 2]).frames, tmp_path / "a.mp4", 24)
    late_start, late_end = write_shotlist(
        [{"code": "s", "source": "a.mp4", "start": 4}, {"code": "e", "source": "a.mp4", "start": 1, "end": 9}],
        defaults={"fps": 24},
    ).shots
    listing = tmp_path / "shots.yaml"
    with pytest.raises(MediaError, match=rf"^{listing}: shots\[0\].start: frame 4 is after the last frame 3 of a.mp4$"):
        detect_shot(late_start, tmp_path / "store")
    with pytest.raises(MediaError, match=rf"^{listing}: shots\[1\].end: frame 9 is after the last frame 3 of a.mp4$"):
        detect_shot(late_end, tmp_path / "store")


def test_bad_keyframe_images_name_the_image_field(write_shotlist: WriteList, tmp_path: Path) -> None:
    anim = animate([2, 2, 2])
    write_keyframe_images(anim.frames, anim.keyframes, tmp_path)
    cv2.imwrite(str(tmp_path / "small.png"), np.zeros((40, 64, 3), np.uint8))
    (tmp_path / "broken.png").write_bytes(b"not a png")
    good = [{"frame": 0, "image": "key_0000.png"}, {"frame": 2, "image": "key_0002.png"}]
    shots = write_shotlist(
        [
            {"code": "size", "source": [*good, {"frame": 4, "image": "small.png"}]},
            {"code": "gone", "source": [*good, {"frame": 4, "image": "gone.png"}]},
            {"code": "broken", "source": {"images": [*good, {"frame": 4, "image": "broken.png"}]}},
            {"code": "early", "source": good, "start": 0, "end": 8},
            {"code": "before", "source": good[1:], "start": 1},
            {"code": "endless", "source": good[1:], "end": 1},
        ],
        defaults={"fps": 24},
    ).shots
    listing = tmp_path / "shots.yaml"
    expected = [
        "shots[0].source.images[2].image: small.png: size 64x40 differs from key_0000.png's 128x80",
        "shots[1].source.images[2].image: gone.png: image file not found",
        "shots[2].source.images[2].image: broken.png: not a readable image (supported: PNG, JPEG, TIFF, TGA, BMP)",
        None,
        "shots[4].start: no keyframe image at or before frame 1",
        "shots[5].end: frame 1 comes before the first keyframe image, at frame 2",
    ]
    for shot, message in zip(shots, expected, strict=True):
        if message is None:
            assert detect_shot(shot, tmp_path / "store").frame_count == 9
            continue
        with pytest.raises(MediaError) as info:
            detect_shot(shot, tmp_path / "store")
        assert str(info.value) == f"{listing}: {message}"


def test_detect_config_refuses_crossed_thresholds() -> None:
    with pytest.raises(ValueError, match="drawing_threshold < cut_threshold"):
        DetectConfig(drawing_threshold=30.0)
    with pytest.raises(ValueError, match="analysis_width"):
        DetectConfig(analysis_width=-1)


# ----------------------------------------------------------------------------- real footage (skipped without it)


@pytest.mark.skipif(not (SHARED / "counter.mp4").is_file(), reason="PySceneDetect's counter.mp4 is not here")
def test_real_h264_footage_every_numbered_frame_is_a_drawing(tmp_path: Path) -> None:
    """counter.mp4: 30 frames at 1920x1080, each showing its own number; the background changes at 10 and 20."""
    shot = Shot(code="counter", source=Source(video=SHARED / "counter.mp4"), fps=10)
    plan = detect_shot(shot, tmp_path / "store")
    assert [k.frame for k in plan.keyframes] == list(range(30))
    assert plan.cuts == [10, 20] and (plan.width, plan.height) == (1920, 1080)


@pytest.mark.slow
@pytest.mark.skipif(not (SHARED / "testvideo.mp4").is_file(), reason="PySceneDetect's testvideo.mp4 is not here")
def test_real_footage_hard_cuts_match_pyscenedetect(tmp_path: Path) -> None:
    """testvideo.mp4 (720 frames, 1280x720): the hard cuts ContentDetector finds with its defaults."""
    shot = Shot(code="testvideo", source=Source(video=SHARED / "testvideo.mp4"), fps=30)
    plan = detect_shot(shot, tmp_path / "store")
    assert plan.cuts == [30, 180, 394] and plan.frame_count == 720


def test_a_scan_is_remembered_by_the_videos_content(
    write_shotlist: WriteList, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import tasks.detect as detect

    anim = animate([2, 3, 2], seed=4)
    shot = _video_shot(write_shotlist, tmp_path, anim.frames, lossless=True)
    first = detect_shot(shot, tmp_path / "store")
    scans: list[Path] = []
    real_scan = detect._scan_video
    monkeypatch.setattr(detect, "_scan_video", lambda shot, video, *a: scans.append(video) or real_scan(shot, video, *a))
    assert detect_shot(shot, tmp_path / "store") == first and scans == []  # remembered: nothing decoded

    first.keyframes[1].path.unlink()  # a lost keyframe file: scanned again, and stored again
    assert detect_shot(shot, tmp_path / "store") == first and len(scans) == 1 and first.keyframes[1].path.is_file()

    frames = [f.copy() for f in anim.frames]
    frames[2][:10] = 255  # same file name, new content
    write_video(frames, shot.source.video, 24, lossless=True)
    changed = detect_shot(shot, tmp_path / "store")
    assert len(scans) == 2 and changed.keyframes[1].pixel_hash != first.keyframes[1].pixel_hash
