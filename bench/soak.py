"""Soak: one batch of many pairs through the whole farm (plan, Ray actors, shot DB, publish), watching the
driver. An overnight batch must not grow the driver with every pair it settles.

    .venv/bin/python bench/soak.py                      # 10 shots x 100 pairs = 1,000 pairs
    .venv/bin/python bench/soak.py --shots 20 --pairs 100

The zero-cost cross-fade backend renders tiny keyframe images (64x32, one in-between per pair), so what is
measured is the farm's own cost. Every `--every` pairs it prints, as a JSON line: pairs settled, the
driver's current and peak RSS (MiB), and the wall time per pair over the last `--every` pairs. Flat means:
RSS at 1,000 pairs close to RSS at 100, and the per-pair time not rising. The machine is shared: the
1-minute load average is printed beside every figure.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import resource
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from tooncrafter_model.frames import write_frame

W, H = 64, 32


def rss_mib() -> float:
    """The process's resident memory now."""
    pages = int(Path("/proc/self/statm").read_text().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


def peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def write_shots(folder: Path, shots: int, pairs: int) -> Path:
    """`shots` shots of `pairs` + 1 keyframe images each, two frames apart: every pair a distinct render."""
    entries = []
    for s in range(shots):
        images = []
        for k in range(pairs + 1):
            frame = np.full((H, W, 3), 255, np.uint8)
            frame[4 + k % 24 : 8 + k % 24, (3 * s + k) % (W - 4) : (3 * s + k) % (W - 4) + 4] = (k * 7 % 200, s * 11 % 200, 40)
            path = write_frame(folder / "keys" / f"s{s:03d}" / f"k{k:04d}.png", frame)
            images.append({"frame": 2 * k, "image": path.relative_to(folder).as_posix()})
        entries.append({"code": f"sh{s:03d}", "source": images})
    doc = {"defaults": {"fps": 24, "backend": "crossfade", "deliver": ["png"]}, "shots": entries}
    path = folder / "soak.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


class Watch(logging.Handler):
    """Counts settled pairs from the farm's progress events and samples the driver every `every` pairs."""

    def __init__(self, every: int) -> None:
        super().__init__(logging.DEBUG)
        self.every, self.pairs, self.mark = every, 0, time.perf_counter()
        self.samples: list[dict[str, Any]] = []

    def emit(self, record: logging.LogRecord) -> None:
        event = getattr(record, "toonfarm", {})
        if event.get("event") != "pair":
            return
        self.pairs += 1
        if self.pairs % self.every == 0:
            now = time.perf_counter()
            sample = {"pairs": self.pairs, "rss_mib": round(rss_mib(), 1), "peak_rss_mib": round(peak_mib(), 1),
                      "ms_per_pair": round((now - self.mark) / self.every * 1000, 2),
                      "load_1m": round(os.getloadavg()[0], 2)}  # fmt: skip
            self.mark = now
            self.samples.append(sample)
            print(json.dumps(sample), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--shots", type=int, default=10)
    parser.add_argument("--pairs", type=int, default=100, help="pairs per shot")
    parser.add_argument("--every", type=int, default=100, help="sample the driver every N pairs")
    parser.add_argument("--actors", type=int, default=2)
    args = parser.parse_args()

    from flows.cli.options import runtime_defaults, serverless

    runtime_defaults()  # as `toonfarm render` runs it
    from flows.render_batch import render_batch
    from tasks.settings import Settings

    folder = Path(tempfile.mkdtemp(prefix="toonfarm-soak-"))
    try:
        shotlist = write_shots(folder, args.shots, args.pairs)
        settings = Settings(output_root=folder / "out", actors=args.actors, actor_cpus=0.5)
        watch = Watch(args.every)
        progress = logging.getLogger("toonfarm.progress")
        progress.addHandler(watch)
        progress.setLevel(logging.DEBUG)
        progress.propagate = False  # counted here, not printed
        print(json.dumps({"start_rss_mib": round(rss_mib(), 1), "shots": args.shots, "pairs": args.shots * args.pairs}))
        started = time.perf_counter()
        with serverless():
            batch = render_batch(str(shotlist), settings)
        wall = time.perf_counter() - started
        first, last = watch.samples[0], watch.samples[-1]
        print(json.dumps({
            "summary": batch.summary, "wall_s": round(wall, 1), "pairs_settled": watch.pairs,
            f"rss_mib_at_{first['pairs']}": first["rss_mib"], f"rss_mib_at_{last['pairs']}": last["rss_mib"],
            f"peak_rss_mib_at_{first['pairs']}": first["peak_rss_mib"], f"peak_rss_mib_at_{last['pairs']}": last["peak_rss_mib"],
            "ms_per_pair_first": first["ms_per_pair"], "ms_per_pair_last": last["ms_per_pair"],
            "peak_rss_mib_end": round(peak_mib(), 1),
        }), flush=True)  # fmt: skip
    finally:
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
