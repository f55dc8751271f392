"""Pipeline overhead and RIFE speed, printed as JSON lines.

    .venv/bin/python bench/pipeline.py                 # overhead over 100 and 600 pairs, RIFE at 512x320
    .venv/bin/python bench/pipeline.py --pairs 100 1100 --skip-rife

Per-pair orchestration overhead is the marginal cost of one more pair through the whole batch flow
(Prefect tasks, PySceneDetect, render keys, shot DB, Ray actors, frame files, assembly, versions) with
the zero-cost cross-fade backend on tiny frames: (T_large - T_small) / (N_large - N_small). Fixed costs
(Prefect's API, Ray start-up, actor start) cancel out. Target: at most 10 ms per pair.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import yaml


def _shotlist(folder: Path, pairs: int, per_shot: int = 25) -> Path:
    """Shots of `per_shot` pairs each (animated on 2s, 32x32 frames) adding up to `pairs`."""
    from tasks.synthetic import animate, make_character, write_video

    entries = []
    for i in range(pairs // per_shot):
        anim = animate([2] * (per_shot + 1), width=32, height=32, character=make_character(i))
        write_video(anim.frames, folder / f"sh{i:04d}.mkv", fps=24, lossless=True)
        entries.append({"code": f"sh{i:04d}", "source": f"sh{i:04d}.mkv"})
    path = folder / "shots.yaml"
    path.write_text(yaml.safe_dump({"defaults": {"fps": 24, "backend": "crossfade"}, "shots": entries}))
    return path


def overhead(pair_counts: list[int], actors: int) -> dict[str, object]:
    """Run the batch flow at each pair count (fresh outputs each time) and fit the marginal cost."""
    from flows.render_batch import render_batch
    from tasks.settings import Settings

    timings = {}
    with tempfile.TemporaryDirectory(prefix="tfbench-") as tmp:
        for n in [25, *pair_counts]:  # the first, untimed, run starts Prefect's API: a fixed cost
            folder = Path(tmp) / f"n{n}"
            folder.mkdir()
            shotlist = _shotlist(folder, n)
            settings = Settings(output_root=folder / "out", actors=actors, actor_cpus=1)
            t0 = time.perf_counter()
            batch = render_batch(str(shotlist), settings)
            assert batch.ok and batch.rendered == n - n % 25, batch.summary
            timings[n] = time.perf_counter() - t0
    timings.pop(25)
    (n0, t0), (n1, t1) = sorted(timings.items())[0], sorted(timings.items())[-1]
    return {
        "bench": "pipeline_overhead",
        "backend": "crossfade",
        "frame": "32x32",
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
