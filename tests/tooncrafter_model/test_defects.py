"""Defects put in on purpose: each does what its table says, at the strength asked, the same way for a seed."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from tasks.synthetic import InbetweenCase, inbetween_case
from tooncrafter_model.defects import DEFECTS, check_defect, inject


@pytest.fixture(scope="module")
def case() -> InbetweenCase:
    return inbetween_case(0.25, 3, start=0.3, width=128, height=80, seed=5)


def lab(frame: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(frame.astype(np.float32) / 255, cv2.COLOR_RGB2Lab)


def changed(case: InbetweenCase, frames: list[np.ndarray]) -> list[int]:
    return [i for i, (f, g) in enumerate(zip(frames, case.truth, strict=True)) if not np.array_equal(f, g)]


def test_tone_shifts_every_inbetween_by_the_strength_in_delta_e(case: InbetweenCase) -> None:
    frames = inject("tone", case.key_a, case.key_b, case.times, case.truth, strength=6.0, seed=1)
    assert changed(case, frames) == [0, 1, 2]
    for f, g in zip(frames, case.truth, strict=True):
        shift = np.linalg.norm(lab(f) - lab(g), axis=2)
        assert abs(float(np.median(shift)) - 6.0) < 1.0  # sRGB rounding and clipping aside


def test_flicker_and_lines_spoil_one_inbetween_ghost_and_vanish_all(case: InbetweenCase) -> None:
    assert len(changed(case, inject("flicker", case.key_a, case.key_b, case.times, case.truth, seed=3))) == 1
    assert len(changed(case, inject("lines", case.key_a, case.key_b, case.times, case.truth, seed=3))) == 1
    assert changed(case, inject("ghost", case.key_a, case.key_b, case.times, case.truth, seed=3)) == [0, 1, 2]
    assert changed(case, inject("vanish", case.key_a, case.key_b, case.times, case.truth, seed=3)) == [0, 1, 2]


def test_flicker_blends_toward_grey_and_ghost_toward_the_farther_keyframe(case: InbetweenCase) -> None:
    flash = inject("flicker", case.key_a, case.key_b, case.times, case.truth, strength=0.5, seed=0)
    (k,) = changed(case, flash)
    want = (case.truth[k].astype(np.float32) + 128) / 2
    assert np.abs(flash[k] - want).max() <= 1.0
    ghost = inject("ghost", case.key_a, case.key_b, case.times, case.truth, strength=0.5)
    far = [case.key_b, case.key_a, case.key_a]  # t = 0.25, 0.5 (A on a tie), 0.75
    for f, g, k_far in zip(ghost, case.truth, far, strict=True):
        assert np.abs(f - (g.astype(np.float32) + k_far) / 2).max() <= 1.0


def test_lines_move_pixels_by_at_most_the_strength(case: InbetweenCase) -> None:
    frames = inject("lines", case.key_a, case.key_b, case.times, case.truth, strength=0.05, seed=7)
    (k,) = changed(case, frames)
    # every moved pixel finds its colour within the largest shift (5% of 80 px = 4 px) in the clean frame
    r = 5
    near = cv2.dilate(case.truth[k], np.ones((2 * r + 1, 2 * r + 1), np.uint8))
    assert (frames[k] <= near + 1).all()


def test_vanish_removes_a_part_both_keyframes_show(case: InbetweenCase) -> None:
    frames = inject("vanish", case.key_a, case.key_b, case.times, case.truth, strength=1.0, seed=0)
    for f, g in zip(frames, case.truth, strict=True):
        gone = np.linalg.norm(lab(f) - lab(g), axis=2) > 10
        assert 0.003 * gone.size < gone.sum() < 0.2 * gone.size  # a part, not the frame
    flat = np.full_like(case.key_a, 90)
    assert inject("vanish", flat, flat, (0.5,), [flat])[0] is not flat  # copies, even when nothing is removed
    assert np.array_equal(inject("vanish", flat, flat, (0.5,), [flat])[0], flat)


def test_the_same_seed_gives_the_same_defect(case: InbetweenCase) -> None:
    for defect in DEFECTS:
        one = inject(defect, case.key_a, case.key_b, case.times, case.truth, seed=11)
        two = inject(defect, case.key_a, case.key_b, case.times, case.truth, seed=11)
        assert all(np.array_equal(f, g) for f, g in zip(one, two, strict=True)), defect


def test_bad_defects_and_strengths_are_named() -> None:
    with pytest.raises(ValueError, match=r"unknown defect 'blur'; choose one of tone, flicker, ghost, lines, vanish"):
        check_defect("blur", 1.0)
    with pytest.raises(ValueError, match=r"defect_strength for ghost must be in \(0, 1\], got 1.5"):
        check_defect("ghost", 1.5)
    with pytest.raises(ValueError, match=r"defect_strength for tone must be in \(0, 100\], got 0"):
        check_defect("tone", 0)
