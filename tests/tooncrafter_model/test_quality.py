"""Quality scores of in-betweens: hard problems, each score on clean and spoiled frames, the evaluation set
against its targets (a small version of bench/quality.py)."""

from __future__ import annotations

import importlib.util
import sys
from dataclasses import replace
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

from tasks.synthetic import InbetweenCase, inbetween_case
from tooncrafter_model.backend import CrossfadeBackend
from tooncrafter_model.defects import DEFECTS, inject
from tooncrafter_model.quality import SCORES, QAThresholds, hard_problems, judge, score_pair

A = np.zeros((6, 8, 3), np.uint8) + 40
B = np.zeros((6, 8, 3), np.uint8) + 200
BENCH = Path(__file__).resolve().parents[2] / "bench" / "quality.py"


def crossfade(t: float) -> np.ndarray:
    return np.clip((1 - t) * A.astype(np.float32) + t * B + 0.5, 0, 255).astype(np.uint8)


@pytest.fixture(scope="module")
def case() -> InbetweenCase:
    """A pair that moves a few pixels per in-between at the analysis size, three in-betweens."""
    return inbetween_case(0.25, 3, start=0.3, width=256, height=160, seed=4)


@pytest.fixture(scope="module")
def bench() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_quality", BENCH)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


# ----------------------------------------------------------------------------- hard problems


def test_hard_checks_accept_a_cross_fade() -> None:
    times = (0.25, 0.5, 0.75)
    assert hard_problems(A, B, times, [crossfade(t) for t in times]) == []


def test_hard_checks_flag_black_copies_count_and_size() -> None:
    times = (0.25, 0.5, 0.75)
    frames = [np.zeros_like(A), A.copy(), B.copy()]
    assert hard_problems(A, B, times, frames) == [
        "frame 0001 (t=0.25): all black",
        "frame 0002 (t=0.5): identical to keyframe A",
        "frame 0003 (t=0.75): identical to keyframe B",
    ]
    assert hard_problems(A, B, times, frames[:2]) == ["expected 3 frames, got 2"]
    small = np.zeros((3, 4, 3), np.uint8) + 9
    assert hard_problems(A, B, (0.5,), [small]) == ["frame 0001 (t=0.5): expected uint8 (6, 8, 3), got uint8 (3, 4, 3)"]


def test_hard_checks_allow_what_the_keyframes_explain() -> None:
    black = np.zeros_like(A)
    assert hard_problems(black, black, (0.5,), [black.copy()]) == []  # a fade held on black
    near = A.copy()
    near[0, 0, 0] += 1  # a one-level difference: every in-between legitimately rounds to a keyframe
    assert hard_problems(A, near, (0.25, 0.75), [A.copy(), near.copy()]) == []


def test_a_pair_with_the_wrong_count_or_size_is_not_scored() -> None:
    quality = score_pair(A, B, (0.25, 0.5), [crossfade(0.25)])
    assert quality.problems == ("expected 2 frames, got 1",) and quality.frames == () and quality.flagged


# ----------------------------------------------------------------------------- the scores


def test_exact_inbetweens_are_clean(case: InbetweenCase) -> None:
    quality = score_pair(case.key_a, case.key_b, case.times, case.truth)
    assert not quality.flagged, quality.flags
    assert [f.index for f in quality.frames] == [1, 2, 3] and [f.t for f in quality.frames] == list(case.times)
    assert all(f.lines is not None and f.motion is not None and f.motion > 1.0 for f in quality.frames)


@pytest.mark.parametrize("defect", DEFECTS)
def test_each_defect_raises_its_own_score(case: InbetweenCase, defect: str) -> None:
    clean = score_pair(case.key_a, case.key_b, case.times, case.truth)
    frames = inject(defect, case.key_a, case.key_b, case.times, case.truth, seed=2)
    spoiled = score_pair(case.key_a, case.key_b, case.times, frames)
    limit = getattr(QAThresholds(), defect)
    worst = max(getattr(f, defect) or 0.0 for f in spoiled.frames)
    assert worst > limit >= max(getattr(f, defect) or 0.0 for f in clean.frames)
    assert any(line.split(": ")[1].startswith(f"{defect} ") for line in spoiled.flags), spoiled.flags


def test_frames_given_out_of_time_order_keep_their_order_and_scores(case: InbetweenCase) -> None:
    ordered = score_pair(case.key_a, case.key_b, case.times, case.truth)
    order = [2, 0, 1]
    shuffled = score_pair(case.key_a, case.key_b, [case.times[i] for i in order], [case.truth[i] for i in order])
    assert [f.t for f in shuffled.frames] == [case.times[i] for i in order]
    for f in shuffled.frames:
        assert replace(f, index=0) == replace(ordered.frames[order[f.index - 1]], index=0)


def test_a_colour_changing_in_place_is_not_a_ghost_or_a_drift(case: InbetweenCase) -> None:
    # a light change and a fade to black: the cross-fade is the true in-between there
    warmer = np.clip(case.key_a * np.array([1.1, 0.9, 0.7]), 0, 255).astype(np.uint8)
    for key_b in (warmer, np.zeros_like(case.key_a)):
        fade = CrossfadeBackend().interpolate(case.key_a, key_b, case.times)
        assert not score_pair(case.key_a, key_b, case.times, fade).flagged


def test_a_cross_fade_over_a_real_move_is_a_ghost() -> None:
    wide = inbetween_case(1.0, 1, width=256, height=160, seed=4)
    fade = CrossfadeBackend().interpolate(wide.key_a, wide.key_b, wide.times)
    (frame,) = score_pair(wide.key_a, wide.key_b, wide.times, fade).frames
    assert frame.ghost > 0.5


@pytest.mark.parametrize(("h", "w"), [(1, 1), (8, 8), (12, 300), (600, 40)])
def test_any_frame_size_is_scored(h: int, w: int) -> None:
    rng = np.random.default_rng(0)
    a, b = rng.integers(0, 255, (h, w, 3), dtype=np.uint8), rng.integers(0, 255, (h, w, 3), dtype=np.uint8)
    quality = score_pair(a, b, (0.5,), [a // 2 + b // 2])
    (frame,) = quality.frames
    assert all(isinstance(getattr(frame, s), float) for s in SCORES if s != "lines")
    assert (frame.lines is None) == (min(h, w) < 16)


def test_thresholds_are_checked_and_decide_the_flags(case: InbetweenCase) -> None:
    with pytest.raises(ValueError, match=r"QAThresholds.ghost: must be a number > 0, got -1"):
        QAThresholds(ghost=-1)
    strict = QAThresholds(flicker=1e-6)
    quality = score_pair(case.key_a, case.key_b, case.times, case.truth, strict)
    assert quality.flagged and all(": flicker " in line for line in quality.flags)
    record = quality.as_json()
    assert record["flags"] == list(quality.flags) and len(record["frames"]) == 3  # type: ignore[arg-type]


def test_a_recorded_pair_is_judged_again_under_other_thresholds(case: InbetweenCase) -> None:
    """What a re-run does: the scores a worker recorded, flagged under the shot's thresholds, not the worker's."""
    ghosted = inject("ghost", case.key_a, case.key_b, case.times, case.truth, strength=0.4, seed=1)
    quality = score_pair(case.key_a, case.key_b, case.times, ghosted)
    record = quality.as_json()
    flags, severity = judge(record, QAThresholds())

    def named(lines: tuple[str, ...]) -> list[str]:  # "frame 0002 (t=0.5): ghost" (values are rounded in JSON)
        return [line.rsplit(" ", 3)[0] for line in lines]

    assert named(flags) == named(quality.flags) and any(": ghost" in f for f in flags)
    ratios = [getattr(f, s) / getattr(QAThresholds(), s) for f in quality.frames for s in SCORES if getattr(f, s)]
    assert severity == pytest.approx(max(ratios), rel=1e-3) and severity > 1.0
    lenient = QAThresholds(**{s: 100.0 for s in SCORES})
    largest = max(getattr(f, s) for f in quality.frames for s in SCORES if getattr(f, s))
    assert judge(record, lenient) == ((), pytest.approx(largest / 100, rel=1e-3))  # same scores, no flags
    assert judge(None, QAThresholds()) == ((), 0.0)  # rendered without scores: unmeasured
    assert judge({"error": "ValueError: broken"}, QAThresholds()) == ((), 0.0)


# ----------------------------------------------------------------------------- the evaluation set


@pytest.mark.slow
def test_the_evaluation_set_with_rife_meets_its_targets(bench: ModuleType) -> None:
    from tooncrafter_model.rife import RifeBackend

    cases = bench.synthetic_cases(256, 160, 2, gaps=(0.05, 0.25, 1.0), rife=RifeBackend(threads=1))
    assert [c.source for c in cases].count("rife") == 4 and len(cases) == 10
    rows = bench.evaluate(cases)
    by_defect = {(r["defect"], r["strength"]): r for r in rows if r["set"] == "defect"}
    assert len(by_defect) == 15 and all(r["pairs"] > 0 for r in by_defect.values())
    clean = next(r for r in rows if r["set"] == "clean" and r["source"] == "rife")
    assert clean["false_positive_rate"] <= bench.TARGET_FALSE_POSITIVES
    summary = rows[-1]
    assert summary["meets_targets"], rows
