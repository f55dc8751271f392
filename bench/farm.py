"""Farm scaling and per-pair overhead on a local Ray, printed as JSON lines.

    .venv/bin/python bench/farm.py                          # 1, 2, 4, 8 actors; 1,000-pair overhead
    .venv/bin/python bench/farm.py --actors 1,2 --pairs-per-actor 4 --overhead-pairs 200

Scaling uses the SIMULATED GPU backend on FAKE GPUs: each actor books one of 8 declared GPUs (Ray
bookkeeping only) and a fifth of a CPU (it only sleeps), and every pair sleeps `--seconds`. Each actor
count renders `--pairs-per-actor` pairs per actor, so the ideal wall time is pairs-per-actor x seconds;
GPU efficiency is ideal / actual and speedup is throughput over the 1-actor throughput
(targets: efficiency >= 0.95, speedup >= 0.9 x actors). Pool start-up (process spawn + model load) is
timed apart: a farm pays it once per night, not per pair.

Overhead renders `--overhead-pairs` pairs with the zero-cost cross-fade backend on 16x16 frames: wall
time per pair is what the pool, Ray and the worker's file I/O cost (target <= 10 ms per pair).
The machine is shared: the 1-minute load average is printed beside every figure.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from cluster.config import PoolConfig, WorkerConfig
from cluster.connect import connect
from cluster.jobs import PairJob
from cluster.pool import ActorPool
from tooncrafter_model.frames import write_frame

FAKE_GPUS = 8


def emit(record: dict[str, Any]) -> None:
    record["load_1m"] = round(os.getloadavg()[0], 2)
    print(json.dumps(record), flush=True)


def make_jobs(root: Path, tag: str, count: int, size: int, times: tuple[float, ...]) -> list[PairJob]:
    keys = root / "keys"
    if not keys.exists():
        a = np.full((size, size, 3), 20, np.uint8)
        b = np.full((size, size, 3), 235, np.uint8)
        write_frame(keys / "a.png", a)
        write_frame(keys / "b.png", b)
    return [
        PairJob(
            render_key=f"{tag}-{i:05d}",
            shot=f"bench/{tag}/sh{i % 10:03d}",
            frame_a=str(keys / "a.png"),
            frame_b=str(keys / "b.png"),
            times=times,
            out_dir=str(root / "renders" / tag / f"{i:05d}"),
        )
        for i in range(count)
    ]


def run_pool(pool_cfg: PoolConfig, worker: WorkerConfig, jobs: list[PairJob]) -> dict[str, Any]:
    t0 = time.perf_counter()
    with ActorPool(pool_cfg, worker) as pool:
        t1 = time.perf_counter()
        results = list(pool.run(jobs))
        t2 = time.perf_counter()
        stats = pool.stats()
    return {
        "start_s": round(t1 - t0, 3),
        "wall_s": round(t2 - t1, 4),
        "failed": sum(not r.ok for r in results),
        "model_loads": sum(stats.model_loads().values()),
        "pairs_per_actor": sorted(stats.pairs_per_worker().values()),
        "max_in_flight": stats.max_in_flight,
    }


def scaling(root: Path, actor_counts: list[int], per_actor: int, seconds: float) -> None:
    worker = WorkerConfig(
        backend="simulated-gpu",
        backend_settings={"seconds": seconds},
        num_cpus=0.2,
        num_gpus=1,
        reason="simulated GPU work only sleeps: a fifth of a CPU each lets 8 actors share 2 cores",
    )
    base = None
    for n in actor_counts:
        jobs = make_jobs(root, f"scale{n}", n * per_actor, 16, (0.5,))
        got = run_pool(PoolConfig(actors=n), worker, jobs)
        throughput = len(jobs) / got["wall_s"]
        base = base or throughput / n  # per-actor throughput of the first (1-actor) run
        ideal = per_actor * seconds
        emit({
            "bench": "farm_scaling",
            "backend": "simulated-gpu (fake GPUs)",
            "actors": n,
            "pairs": len(jobs),
            "seconds_per_pair": seconds,
            **got,
            "pairs_per_s": round(throughput, 4),
            "speedup": round(throughput / base, 3),
            "speedup_target": round(0.9 * n, 2),
            "gpu_efficiency": round(ideal / got["wall_s"], 4),
            "efficiency_target": 0.95,
            "overhead_ms_per_pair_per_actor": round((got["wall_s"] - ideal) / per_actor * 1000, 2),
        })


def overhead(root: Path, pairs: int, actors: int) -> None:
    worker = WorkerConfig(backend="crossfade", num_cpus=0.5, reason="zero-cost backend: orchestration only")
    jobs = make_jobs(root, f"overhead{actors}", pairs, 16, (0.5,))
    got = run_pool(PoolConfig(actors=actors), worker, jobs)
    emit({
        "bench": "farm_overhead",
        "backend": "crossfade 16x16, 1 in-between",
        "actors": actors,
        "pairs": pairs,
        **{k: got[k] for k in ("start_s", "wall_s", "failed", "max_in_flight")},
        "ms_per_pair": round(got["wall_s"] / pairs * 1000, 3),
        "target_ms_per_pair": 10.0,
    })


def main(argv: list[str] | None = None) -> None:
    """Run the scaling and overhead benchmarks on a private local Ray."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--actors", default="1,2,4,8", help="actor counts, comma-separated (at most 8)")
    parser.add_argument("--pairs-per-actor", type=int, default=6)
    parser.add_argument("--seconds", type=float, default=1.0, help="simulated GPU seconds per pair")
    parser.add_argument("--overhead-pairs", type=int, default=1000)
    args = parser.parse_args(argv)
    counts = [int(x) for x in args.actors.split(",") if x]
    if not counts or max(counts) > FAKE_GPUS or min(counts) < 1:
        parser.error(f"--actors: each count must be between 1 and {FAKE_GPUS}, got {args.actors}")
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")  # a private throwaway instance on loopback
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    work = Path(tempfile.mkdtemp(prefix="tfr-bench-", dir="/tmp"))
    try:
        with connect(num_cpus=2, num_gpus=FAKE_GPUS, temp_dir=str(work / "ray")):
            scaling(work, counts, args.pairs_per_actor, args.seconds)
            for actors in (1, 2):
                overhead(work, args.overhead_pairs, actors)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
