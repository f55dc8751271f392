"""Pipeline overhead and RIFE speed, printed as JSON lines.

    .venv/bin/python bench/pipeline.py                 # overhead over 100 and 600 pairs, RIFE at 512x320
    .venv/bin/python bench/pipeline.py --pairs 100 1100 --skip-rife

Per-pair orchestration overhead is the marginal cost of one more pair through the whole batch flow
(PySceneDetect, render keys, shot DB, Ray actors, frame files, assembly, versions) with the zero-cost
cross-fade backend on tiny frames: (T_large - T_small) / (N_large - N_small), with the same number of
shots in both runs. Fixed costs (Prefect's API, Ray start-up, actor start, per-shot tasks) cancel out.
Target: at most 10 ms per pair.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import yaml


def _drawing(i: int, shot: int) -> np.ndarray:
    """Drawing i of bench shot `shot`: a flat 64x64 frame (its colour says the shot) with an ink dot
    whose place encodes i, so every drawing differs a little from the last (a new drawing, not a cut)."""
    frame = np.full((64, 64, 3), (236 - 8 * shot, 228, 208), np.uint8)
    y, x = divmod(i, 15)
    frame[4 * y : 4 * y + 4, 4 * x : 4 * x + 4] = (20, 18, 24)
    return frame


def _shotlist(folder: Path, pairs_per_shot: int, shots: int) -> Path:
    """`shots` shots animated on 2s with `pairs_per_shot` pairs each."""
    from tasks.synthetic import write_video

    entries = []
    for i in range(shots):
        frames = [_drawing(d, i) for d in range(pairs_per_shot + 1) for _ in range(2)]
        write_video(frames, folder / f"sh{i:04d}.mkv", fps=24, lossless=True)
        entries.append({"code": f"sh{i:04d}", "source": f"sh{i:04d}.mkv"})
    path = folder / "shots.yaml"
    path.write_text(yaml.safe_dump({"defaults": {"fps": 24, "backend": "crossfade"}, "shots": entries}))
    return path


def overhead(pair_counts: list[int], actors: int, shots: int = 5) -> dict[str, object]:
    """Run the batch flow at each pair count (fresh outputs each time, the same number of shots, so
    per-shot costs cancel too) and fit the marginal cost of a pair."""
    from flows.render_batch import render_batch
    from tasks.settings import Settings

    timings = {}
    with tempfile.TemporaryDirectory(prefix="tfbench-") as tmp:
        for n in [shots, *pair_counts]:  # the first, untimed, run starts Prefect's API: a fixed cost
            folder = Path(tmp) / f"n{n}"
            folder.mkdir()
            shotlist = _shotlist(folder, n // shots, shots)
            settings = Settings(output_root=folder / "out", actors=actors, actor_cpus=1)
            t0 = time.perf_counter()
            batch = render_batch(str(shotlist), settings)
            assert batch.ok and batch.rendered == n - n % shots, batch.summary
            timings[n] = time.perf_counter() - t0
    timings.pop(shots)
    (n0, t0), (n1, t1) = sorted(timings.items())[0], sorted(timings.items())[-1]
    return {
        "bench": "pipeline_overhead",
        "backend": "crossfade",
        "frame": "64x64",
        "shots": shots,
        "actors": actors,
        "runs": {str(n): round(t, 3) for n, t in timings.items()},
        "ms_per_pair": round(1000 * (t1 - t0) / (n1 - n0), 2),
        "target_ms": 10,
        "load_avg_1m": round(os.getloadavg()[0], 2),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pairs", type=int, nargs=2, default=[100, 600], metavar=("SMALL", "LARGE"))
    ap.add_argument("--actors", type=int, default=2)
    ap.add_argument("--skip-rife", action="store_true")
    a = ap.parse_args()
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
    print(json.dumps(overhead(a.pairs, a.actors)), flush=True)
    if not a.skip_rife:
        # RIFE is timed by its own bench, one fresh process per case, after Ray and Prefect have exited
        sys.path.insert(0, str(Path(__file__).resolve().parent))
        from rife import main as rife_bench

        print(json.dumps({"bench": "rife_speed", "target_s_per_inbetween": 0.15}), flush=True)
        rife_bench(["--sizes", "512x320", "--times", "1,3", "--threads", "2", "--repeats", "7"])


if __name__ == "__main__":
    main()
