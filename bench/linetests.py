"""Held-drawing detection on captured line tests: the score margin at each noise level, as JSON lines.

    .venv/bin/python bench/linetests.py

Each clip is `tasks.synthetic.line_test` (512x320, holds on 1s to 4s, a blink and a 4-degree arm swing among
the changes) with sensor grain, exposure flicker and H.264 compression at a CRF, for three seeds. A line per
clip: the threshold the clip's own noise chose, the strongest hold's score, the weakest change's, their
ratio, and whether every drawing was found (`exact`); a last line sums it up per compression.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

TIMING = [2, 2, 4, 1, 3, 2, 4, 2, 1, 1, 2, 4, 2, 2, 3, 1, 2, 4]
NOISE = [(0.0, 0.0), (2.0, 0.02), (4.0, 0.03), (6.0, 0.05), (8.0, 0.06)]


def main() -> None:
    from tasks.detect import detect_shot
    from tasks.shotlist import Shot, Source
    from tasks.synthetic import Capture, line_test, write_video

    summary: dict[str, list[bool]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for crf in (18, 30, 35):
            for grain, flicker in NOISE:
                for seed in (0, 1, 2):
                    anim = line_test(TIMING, width=512, height=320, seed=seed, capture=Capture(grain=grain, flicker=flicker))
                    video = write_video(anim.frames, Path(tmp) / f"lt{crf}_{grain}_{seed}.mp4", 24, crf=crf)
                    plan = detect_shot(Shot(code="lt", source=Source(video=video), fps=24), Path(tmp) / "store")
                    exact = [k.frame for k in plan.keyframes] == anim.keyframes
                    summary.setdefault(f"crf{crf}", []).append(exact)
                    margin = plan.ingest.margin
                    assert margin is not None
                    print(json.dumps({"crf": crf, "grain": grain, "flicker": flicker, "seed": seed, **margin.as_dict(),
                                      "drawings": len(anim.keyframes), "found": len(plan.keyframes), "exact": exact}),
                          flush=True)  # fmt: skip
    print(json.dumps({"exact": {k: f"{sum(v)}/{len(v)}" for k, v in summary.items()}}))


if __name__ == "__main__":
    main()
