"""Line tests as a camera or scanner hands them over: held drawings found through grain, exposure flicker,
paper tone and heavy compression, across noise levels and seeds; clean exports and drawings on 1s stay exact.

The margins (weakest change / strongest hold) these clips give are printed by `bench/linetests.py`.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from tasks.detect import DetectConfig, detect_shot
from tasks.scores import adaptive_threshold
from tasks.shotlist import ShotList
from tasks.synthetic import Capture, animate, line_test, write_video

WriteList = Callable[..., ShotList]
# Holds on 1s, 2s, 3s and 4s; every third drawing a blink, every third an arm swung 4 degrees further.
TIMING = [2, 2, 4, 1, 3, 2, 4, 2, 1, 1, 2, 4, 2, 2, 3, 1, 2, 4]


@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize(
    ("grain", "flicker"), [(2.0, 0.02), (4.0, 0.03), (6.0, 0.04)], ids=["light", "camera", "heavy"]
)
def test_a_captured_line_test_gives_the_animators_drawings(
    write_shotlist: WriteList, tmp_path: Path, grain: float, flicker: float, seed: int
) -> None:
    anim = line_test(TIMING, width=512, height=320, seed=seed, capture=Capture(grain=grain, flicker=flicker))
    write_video(anim.frames, tmp_path / "linetest.mp4", 24, crf=30)
    shot = write_shotlist([{"code": "lt", "source": "linetest.mp4", "fps": 24}]).shots[0]
    plan = detect_shot(shot, tmp_path / "store")
    assert [k.frame for k in plan.keyframes] == anim.keyframes
    assert plan.cuts == []
    margin = plan.ingest.margin
    assert margin is not None and margin.hold is not None and margin.change is not None
    assert margin.hold < margin.threshold <= margin.change
    assert margin.ratio >= 1.5 and plan.ingest.warnings == ()  # a clear margin: nothing to warn about


def test_fixed_thresholds_split_flicker_into_drawings_where_the_adaptive_one_does_not(
    write_shotlist: WriteList, tmp_path: Path
) -> None:
    """The issue's clip: every flicker became a drawing with a fixed content threshold."""
    anim = line_test(TIMING, width=512, height=320, seed=3, capture=Capture(grain=6.0, flicker=0.05))
    write_video(anim.frames, tmp_path / "linetest.mp4", 24, crf=30)
    shot = write_shotlist([{"code": "lt", "source": "linetest.mp4", "fps": 24}]).shots[0]
    fixed = DetectConfig(content_factor=0.0, noise_factor=0.0, clean_noise=1e9)  # content 1.0 and local 12 alone
    assert len(detect_shot(shot, tmp_path / "fixed", fixed).keyframes) > len(anim.keyframes) + 5
    assert [k.frame for k in detect_shot(shot, tmp_path / "store").keyframes] == anim.keyframes


def test_a_thin_margin_is_reported(write_shotlist: WriteList, tmp_path: Path) -> None:
    anim = line_test(TIMING, width=256, height=160, seed=0, capture=Capture(grain=8.0, flicker=0.06))
    write_video(anim.frames, tmp_path / "linetest.mp4", 24, crf=35)
    shot = write_shotlist([{"code": "lt", "source": "linetest.mp4", "fps": 24}]).shots[0]
    plan = detect_shot(shot, tmp_path / "store")
    assert plan.ingest.margin is not None and plan.ingest.margin.ratio < 1.5
    (warning,) = plan.ingest.warnings
    assert warning.startswith("thin detection margin: strongest hold ") and "exposure sheet (xsheet:)" in warning


@pytest.mark.parametrize("lossless", [True, False], ids=["lossless", "h264"])
def test_clean_drawings_on_1s_stay_exact(write_shotlist: WriteList, tmp_path: Path, lossless: bool) -> None:
    anim = animate([1] * 12, seed=5)
    write_video(anim.frames, tmp_path / "ones.mp4", 24, lossless=lossless)
    shot = write_shotlist([{"code": "ones", "source": "ones.mp4", "fps": 24}]).shots[0]
    plan = detect_shot(shot, tmp_path / "store")
    assert [k.frame for k in plan.keyframes] == list(range(12))
    assert plan.ingest.margin is not None and plan.ingest.margin.hold is None  # no holds at all


def test_a_line_test_on_1s_keeps_every_drawing(write_shotlist: WriteList, tmp_path: Path) -> None:
    anim = line_test([1] * 12, width=512, height=320, seed=2, capture=Capture(grain=4.0, flicker=0.03))
    write_video(anim.frames, tmp_path / "ones.mp4", 24, crf=30)
    shot = write_shotlist([{"code": "ones", "source": "ones.mp4", "fps": 24}]).shots[0]
    assert [k.frame for k in detect_shot(shot, tmp_path / "store").keyframes] == list(range(12))


@pytest.mark.parametrize(
    ("scores", "expected"),
    [
        ([0.0] * 10 + [40.0, 90.0, 200.0], 12.0),  # clean: the floor
        ([25.0, 40.0, 31.0, 120.0], 12.0),  # every frame a new drawing: the floor
        # noisy holds 3-9: at least 3x their median (18), then settled into the gap between 9 and 20
        ([3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0, 20.0, 24.0, 60.0, 200.0], pytest.approx(13.49, abs=0.01)),
        ([1.0, 1.5, 2.0, 3.0, 5.0, 6.0, 9.0, 18.0, 22.0, 70.0, 200.0], pytest.approx(12.78, abs=0.01)),
    ],
    ids=["clean", "on1s", "noisy", "gap-near-threshold"],
)
def test_the_threshold_follows_the_clips_own_noise(scores: list[float], expected: float) -> None:
    threshold = adaptive_threshold(scores, floor=12.0, factor=3.0)
    assert threshold == expected
    holds, changes = [s for s in scores if s < threshold], [s for s in scores if s >= threshold]
    assert max(holds, default=0.0) < threshold <= min(changes)


def test_a_noise_raised_threshold_is_reported(write_shotlist: WriteList, tmp_path: Path) -> None:
    """Grain 8 at crf 35: holds score up to 33, so the threshold rises where a blink would hide."""
    anim = line_test(TIMING, width=512, height=320, seed=1, capture=Capture(grain=8.0, flicker=0.06))
    write_video(anim.frames, tmp_path / "linetest.mp4", 24, crf=35)
    shot = write_shotlist([{"code": "lt", "source": "linetest.mp4", "fps": 24}]).shots[0]
    plan = detect_shot(shot, tmp_path / "store")
    assert plan.ingest.margin is not None and plan.ingest.margin.threshold > 24.0
    (warning,) = plan.ingest.warnings
    assert warning.startswith("noisy source: its noise raised the detection threshold to ")
