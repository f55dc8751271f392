"""QA scores on an evaluation set: detection per defect, false positives, scoring cost against RIFE's.

Detection rate per defect and strength, false-positive rate on clean frames, and the seconds to score a
pair against RIFE's seconds to make it, printed as JSON lines.

    .venv/bin/python bench/quality.py                          # 256x160, 12 characters
    .venv/bin/python bench/quality.py --size 512x320 --characters 6
    .venv/bin/python bench/quality.py --data /path/to/data     # adds Lottie triplets (local evaluation only)
    .venv/bin/python bench/quality.py --size 1024x576 --characters 2 --cost-only

The clean in-betweens are the synthetic cartoon's exact drawings (tasks/synthetic.py) at several motions,
and RIFE's output on the small ones; the defective ones are the clean ones with each defect of
tooncrafter_model/defects.py put in at several strengths. A pair counts as detected when QA flags it
(any score over its threshold, or a hard problem); a clean frame counts as a false positive when it is
flagged. The `scores` rows give, per score, the clean frames' distribution and the smallest values its
own defect reaches: the thresholds in tooncrafter_model/quality.py were chosen between the two.
tests/tooncrafter_model/test_quality.py runs a small version of this set against the targets.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from tasks.synthetic import inbetween_case, make_character
from tooncrafter_model.defects import DEFECTS, inject
from tooncrafter_model.frames import Frame, read_frame
from tooncrafter_model.quality import SCORES, PairQuality, QAThresholds, score_pair

GAPS = (0.05, 0.1, 0.25, 0.5, 1.0)  # share of the character's whole move between the two keyframes
RIFE_GAPS = (0.05, 0.1, 0.25)  # small motions, where RIFE's output is a good in-between
STRENGTHS: dict[str, tuple[float, ...]] = {
    "tone": (3.0, 6.0, 12.0),  # ΔE76 offset
    "flicker": (0.1, 0.2, 0.4),  # weight of the grey
    "ghost": (0.25, 0.4, 0.6),  # opacity of the farther keyframe
    "lines": (0.02, 0.04, 0.06),  # largest shift, share of the short side
    "vanish": (0.6, 0.8, 1.0),  # opacity of the removal
}
TARGET_DETECTION = 0.95
TARGET_FALSE_POSITIVES = 0.05


@dataclass(frozen=True)
class Case:
    """Clean in-betweens of one keyframe pair, with where they came from."""

    source: str  # "truth" (exact drawings), "rife" (RIFE's output), "lottie" (local data)
    name: str
    key_a: Frame
    key_b: Frame
    times: tuple[float, ...]
    frames: tuple[Frame, ...]
    seed: int
    gap: float | None = None


def synthetic_cases(
    width: int, height: int, characters: int, *, gaps: Sequence[float] = GAPS, rife: Any = None,
    rife_gaps: Sequence[float] = RIFE_GAPS,
) -> list[Case]:
    """Clean cases of `characters` synthetic characters at every gap, three in-betweens for even seeds and
    one for odd ones, plus RIFE's output on the small gaps when a loaded RIFE backend is given."""
    cases = []
    for seed in range(characters):
        character = make_character(seed)
        for gap in gaps:
            n = 3 if seed % 2 == 0 else 1
            start = random.Random(seed * 1000 + round(gap * 100)).uniform(0.0, 1.0 - gap)
            c = inbetween_case(gap, n, start=start, width=width, height=height, character=character)
            name = f"char{seed}_gap{gap:g}_n{n}"
            cases.append(Case("truth", name, c.key_a, c.key_b, c.times, tuple(c.truth), seed, gap))
            if rife is not None and gap in rife_gaps:
                made = rife.interpolate(c.key_a, c.key_b, c.times)
                cases.append(Case("rife", name, c.key_a, c.key_b, c.times, tuple(made), seed, gap))
    return cases


def lottie_cases(folder: Path) -> list[Case]:
    """The Lottie triplets (`<anim>_n<start>_k<gap>_{a,gt_mid,b}_f<frame>.png`): exact middle frames."""
    cases = []
    for i, mid in enumerate(sorted(folder.glob("*_gt_mid_*.png"))):
        stem = mid.name.split("_gt_mid_")[0]
        (a,), (b,) = folder.glob(f"{stem}_a_*.png"), folder.glob(f"{stem}_b_*.png")
        cases.append(Case("lottie", stem, read_frame(a), read_frame(b), (0.5,), (read_frame(mid),), i))
    return cases


def with_defect(case: Case, defect: str, strength: float) -> Case | None:
    """`case` with `defect` put in, or None when it cannot be (no shared part to remove)."""
    frames = inject(defect, case.key_a, case.key_b, case.times, case.frames, strength=strength, seed=case.seed)
    if all(np.array_equal(f, g) for f, g in zip(frames, case.frames, strict=True)):
        return None
    return replace(case, frames=tuple(frames))


def _score(case: Case, thresholds: QAThresholds) -> PairQuality:
    return score_pair(case.key_a, case.key_b, case.times, case.frames, thresholds)


def _flagged_by(q: PairQuality, score: str, thresholds: QAThresholds) -> bool:
    limit = getattr(thresholds, score)
    return any((getattr(f, score) or 0.0) > limit for f in q.frames)


def evaluate(
    cases: Iterable[Case], thresholds: QAThresholds | None = None, *, data: str = "synthetic",
    dump: Path | None = None,
) -> list[dict[str, Any]]:
    """Score the clean cases and every defect at every strength; return the bench's rows, each naming
    the `data` they are about (and append every frame's scores to `dump`, for choosing thresholds)."""
    limits = thresholds or QAThresholds()
    scored: list[dict[str, Any]] = []

    def keep(case: Case, defect: str | None, strength: float | None, q: PairQuality) -> PairQuality:
        if dump is not None:
            scored.append({"source": case.source, "case": case.name, "gap": case.gap, "defect": defect,
                           "strength": strength, **q.as_json()})
        return q

    rows: list[dict[str, Any]] = []
    by_source: dict[str, list[PairQuality]] = {}
    found: dict[tuple[str, float], list[PairQuality]] = {}
    skipped: dict[str, int] = {}
    clean_list = list(cases)
    for case in clean_list:
        by_source.setdefault(case.source, []).append(keep(case, None, None, _score(case, limits)))
        for defect in DEFECTS:
            for strength in STRENGTHS[defect]:
                bad = with_defect(case, defect, strength)
                if bad is None:
                    skipped[defect] = skipped.get(defect, 0) + 1
                    continue
                found.setdefault((defect, strength), []).append(keep(case, defect, strength, _score(bad, limits)))
    all_clean = [q for qs in by_source.values() for q in qs]
    for source, qs in [*by_source.items(), ("all", all_clean)]:
        frames = [(f, q) for q in qs for f in q.frames]
        flagged_frames = sum(1 for f, _ in frames if f.over(limits))
        rows.append({
            "bench": "quality", "set": "clean", "source": source, "pairs": len(qs), "frames": len(frames),
            "frames_flagged": flagged_frames,
            "false_positive_rate": round(flagged_frames / max(1, len(frames)), 4),
            "pairs_flagged": sum(1 for q in qs if q.flagged),
            "flags": sorted({line.split(": ", 1)[1].split()[0] for q in qs for line in q.flags}),
        })
    total = detected = 0
    for defect in DEFECTS:
        for strength in STRENGTHS[defect]:
            qs = found.get((defect, strength), [])
            hits = sum(1 for q in qs if q.flagged)
            total, detected = total + len(qs), detected + hits
            rows.append({
                "bench": "quality", "set": "defect", "defect": defect, "strength": strength, "pairs": len(qs),
                "detected": hits, "detection_rate": round(hits / max(1, len(qs)), 4),
                "own_score_rate": round(sum(1 for q in qs if _flagged_by(q, defect, limits)) / max(1, len(qs)), 4),
                "skipped": skipped.get(defect, 0) // len(STRENGTHS[defect]),
            })
    for score in SCORES:  # each defect is named after the score meant to find it
        clean = [v for q in all_clean for f in q.frames if (v := getattr(f, score)) is not None]
        own = [
            max(measured)
            for strength in STRENGTHS[score] for q in found.get((score, strength), [])
            if (measured := [v for f in q.frames if (v := getattr(f, score)) is not None])
        ]
        rows.append({
            "bench": "quality", "set": "scores", "score": score, "threshold": getattr(limits, score),
            "clean_p50": _q(clean, 50), "clean_p99": _q(clean, 99), "clean_max": _q(clean, 100),
            "own_defect_p5": _q(own, 5), "own_defect_min": _q(own, 0),
            "unmeasured_frames": sum(1 for q in all_clean for f in q.frames if getattr(f, score) is None),
        })
    if dump is not None:
        with dump.open("a") as out:
            out.writelines(json.dumps(row) + "\n" for row in scored)
    fp = next(r for r in rows if r["set"] == "clean" and r["source"] == "all")
    rows.append({
        "bench": "quality", "set": "summary", "detection_rate": round(detected / max(1, total), 4),
        "false_positive_rate": fp["false_positive_rate"], "defective_pairs": total, "clean_frames": fp["frames"],
        "meets_targets": (
            detected / max(1, total) >= TARGET_DETECTION and fp["false_positive_rate"] <= TARGET_FALSE_POSITIVES
        ),
    })
    return [{"bench": "quality", "data": data, **{k: v for k, v in row.items() if k != "bench"}} for row in rows]


def _q(values: Sequence[float], pct: float) -> float | None:
    return round(float(np.percentile(values, pct)), 4) if len(values) else None


def cost_row(cases: Sequence[Case], rife: Any, width: int, height: int) -> dict[str, Any]:
    """Seconds to score a pair against RIFE's seconds to make it: each of the RIFE pairs made again and
    scored right after, so both see the same load on a shared machine."""
    rife_s, scoring_s = [], []
    for case in (c for c in cases if c.source == "rife"):
        started = time.perf_counter()
        made = rife.interpolate(case.key_a, case.key_b, case.times)
        rife_s.append(time.perf_counter() - started)
        started = time.perf_counter()
        score_pair(case.key_a, case.key_b, case.times, list(made))
        scoring_s.append(time.perf_counter() - started)
    return {
        "bench": "quality", "set": "cost", "width": width, "height": height, "pairs": len(rife_s),
        "scoring_s_per_pair": round(statistics.median(scoring_s), 4),
        "rife_s_per_pair": round(statistics.median(rife_s), 4),
        "scoring_share_of_rife": round(statistics.median(q / r for q, r in zip(scoring_s, rife_s, strict=True)), 4),
        "load_avg_1m": round(os.getloadavg()[0], 2), "torch_threads": _torch_threads(),
    }


def _torch_threads() -> int:
    import torch

    return int(torch.get_num_threads())


def _size(text: str) -> tuple[int, int]:
    w, h = text.lower().split("x")
    return int(w), int(h)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    p.add_argument("--size", default="256x160", help="WxH of the synthetic frames")
    p.add_argument("--characters", type=int, default=12, help="synthetic characters (seeds)")
    p.add_argument("--no-rife", action="store_true", help="leave RIFE's outputs out (no cost row either)")
    p.add_argument("--cost-only", action="store_true", help="print the cost row only")
    p.add_argument("--data", type=Path, default=None, help="shared data folder: adds lottie/triplets")
    p.add_argument("--dump", type=Path, default=None, help="also write every frame's scores here (JSON lines)")
    args = p.parse_args(argv)
    width, height = _size(args.size)
    rife = None
    if not args.no_rife:
        from tooncrafter_model.rife import RifeBackend

        rife = RifeBackend()
    cases = synthetic_cases(width, height, args.characters, rife=rife)
    if rife is not None:
        print(json.dumps(cost_row(cases, rife, width, height)), flush=True)
    if args.cost_only:
        return
    for row in evaluate(cases, data=f"synthetic {width}x{height}", dump=args.dump):
        print(json.dumps(row), flush=True)
    if args.data is not None:
        for row in evaluate(lottie_cases(args.data / "lottie" / "triplets"), data="lottie", dump=args.dump):
            print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
