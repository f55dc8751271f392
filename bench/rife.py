"""RIFE backend speed and memory: seconds per in-between and peak RSS, printed as JSON lines.

    .venv/bin/python bench/rife.py                      # 512x320 and 1024x576, 1 and 3 in-betweens
    .venv/bin/python bench/rife.py --sizes 1920x1088 --times 1 --threads 2

Each case runs in a fresh process so its peak RSS is its own. The machine is shared: the figure is the
minimum over repeats, and the 1-minute load average is reported beside it. Other benches import
`measure_rife`.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from typing import Any

import numpy as np


DISCS = ((0.3, 0.5, 0.12), (0.65, 0.4, 0.08), (0.5, 0.7, 0.06))  # (centre x, centre y) / size, radius / height


def bench_pair(
    width: int, height: int, discs: tuple[tuple[float, float, float], ...] = DISCS, move: float = 0.04
) -> tuple[np.ndarray, np.ndarray]:
    """Two flat-colour frames with inked discs; disc i moves (i + 1) / 2 * `move` of the width."""
    y, x = np.mgrid[0:height, 0:width]
    frames = []
    for shift in (0.0, move * width):
        img = np.full((height, width, 3), (236, 228, 208), np.uint8)
        img[y > 0.8 * height] = (96, 160, 96)
        for i, (cx, cy, r) in enumerate(discs):
            d = np.hypot(x - cx * width - shift * (i + 1) / 2, y - cy * height) / (r * height)
            img[d < 1.08] = (20, 18, 24)
            img[d < 1.0] = ((214, 64, 48), (60, 90, 200), (240, 200, 40))[i]
        frames.append(img)
    return frames[0], frames[1]


def measure_rife(
    width: int,
    height: int,
    n_times: int,
    repeats: int = 5,
    *,
    threads: int | None = None,
    times_per_pass: int | None = None,
    backend: Any = None,
) -> dict[str, Any]:
    """Time `repeats` interpolations of one pair into `n_times` in-betweens (after one warm-up).

    `backend` reuses a loaded RifeBackend; `times_per_pass` overrides its batching. peak_rss_mb is the
    process's peak so far (run one case per process for a per-case figure).
    """
    import torch

    from tooncrafter_model.rife import RifeBackend, pad_multiple

    if backend is None:
        backend = RifeBackend(threads=threads)
    elif threads is not None:
        torch.set_num_threads(threads)
    if times_per_pass is not None:  # set on the instance, so the class default stays as it is
        mult = pad_multiple(backend.scale)
        backend.BATCH_PIXELS = times_per_pass * (-(-height // mult) * mult) * (-(-width // mult) * mult)
    a, b = bench_pair(width, height)
    times = [(i + 1) / (n_times + 1) for i in range(n_times)]
    start = time.perf_counter()
    frames = backend.interpolate(a, b, times)
    warmup = time.perf_counter() - start
    runs = []
    for _ in range(repeats):
        start = time.perf_counter()
        backend.interpolate(a, b, times)
        runs.append(time.perf_counter() - start)
    return {
        "bench": "rife",
        "width": width,
        "height": height,
        "n_times": n_times,
        "seconds_per_inbetween": round(min(runs) / n_times, 4),
        "seconds_per_pair_min": round(min(runs), 4),
        "seconds_per_pair_median": round(statistics.median(runs), 4),
        "warmup_seconds": round(warmup, 4),
        "repeats": repeats,
        "threads": torch.get_num_threads(),
        "times_per_pass": frames.meta["times_per_pass"],
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "load_avg_1m": round(os.getloadavg()[0], 2),
        "cpus": os.cpu_count(),
    }


def _size(text: str) -> tuple[int, int]:
    w, h = text.lower().split("x")
    return int(w), int(h)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sizes", default="512x320,1024x576", help="comma-separated WxH")
    p.add_argument("--times", default="1,3", help="comma-separated in-betweens per pair")
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--times-per-pass", type=int, default=None, help="override the backend's batching")
    p.add_argument("--one", action="store_true", help="run the single case given, in this process")
    args = p.parse_args(argv)
    cases = [(_size(s), int(n)) for s in args.sizes.split(",") for n in args.times.split(",")]
    if args.one:
        (w, h), n = cases[0]
        row = measure_rife(w, h, n, args.repeats, threads=args.threads, times_per_pass=args.times_per_pass)
        print(json.dumps(row), flush=True)
        return
    for (w, h), n in cases:
        cmd = [sys.executable, os.path.abspath(__file__), "--one", "--sizes", f"{w}x{h}", "--times", str(n)]
        cmd += ["--repeats", str(args.repeats)]
        if args.threads is not None:
            cmd += ["--threads", str(args.threads)]
        if args.times_per_pass is not None:
            cmd += ["--times-per-pass", str(args.times_per_pass)]
        run = subprocess.run(cmd, capture_output=True, text=True)
        if run.returncode != 0:
            tail = (run.stderr.strip().splitlines() or ["no output"])[-1]
            print(json.dumps({"bench": "rife", "width": w, "height": h, "n_times": n, "error": tail}), flush=True)
        else:
            print(run.stdout.strip(), flush=True)


if __name__ == "__main__":
    main()
