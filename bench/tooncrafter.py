"""ToonCrafter backend speed, VRAM and fp16 fidelity, printed as JSON lines.

    .venv/bin/python bench/tooncrafter.py                    # tiny config on this CPU (4 and 50 steps)
    python bench/tooncrafter.py --device cuda --cache-dir DIR   # + full size 16x320x512 on the GPU

CPU lines: one parity-tiny interpolation (T=8, 64x64, seeded random weights) with 4 and with 50 DDIM steps,
the minimum and median over `--repeats` after a warm-up, with the thread count and the load average beside
it (on a shared machine the minimum is the figure to quote).

GPU lines (only with `--device cuda` and a CUDA device; otherwise one line says why they were skipped): the
official config (T=16, 320x512, 2.6 B parameters) with SEEDED RANDOM WEIGHTS, which time and size exactly like
the checkpoint but make noise, so the frames mean nothing. For fp32 and for fp16 (weights cast, autocast): seconds
per 50-step interpolation (after a 2-step warm-up), peak VRAM (torch.cuda.max_memory_allocated) over the whole
interpolation and up to the last DDIM step (the rest is the VAE decode), then the PSNR of the fp16 frames
against the fp32 frames for the same seed and noise. Targets: PSNR >= 40 dB, fp16 peak <= 12 GB (the
reference needs about 27 GB).

Memory measures in the backend: the text and image towers wait on the CPU and visit the GPU only while
they encode (`offload`, 1.04 B parameters); fp16 weights (half the UNet's 5.8 GB); SDPA everywhere (memory-
efficient kernels, so attention needs no manual chunking: the largest, the decoder's fusion attention, has
10,240 queries over 20,480 keys per frame). The decoder's frame chunk is NOT a memory knob: each decoder call
adds keyframe A's features to its first frame and B's to its last, so chunks shorter than the clip change the
frames (tests/tooncrafter_model/test_toon_backend.py shows it); it stays at T.

The tokenizer's vocabulary comes from the model cache (`--cache-dir`, default ~/.cache/toonfarm/models);
a machine without network needs a copy of openclip-bpe_simple_vocab_16e6.txt.gz there.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import statistics
import time
from typing import Any

import numpy as np

TARGET_PSNR_DB = 40.0
TARGET_VRAM_GB = 12.0


def emit(record: dict[str, Any]) -> None:
    print(json.dumps(record), flush=True)


def cartoon_pair(height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    """Flat-colour keyframes with an inked disc that moves a tenth of the width."""
    y, x = np.mgrid[0:height, 0:width]
    frames = []
    for shift in (0.0, 0.1 * width):
        img = np.full((height, width, 3), (236, 228, 208), np.uint8)
        img[y > 0.8 * height] = (96, 160, 96)
        d = np.hypot(x - 0.35 * width - shift, y - 0.5 * height) / (0.15 * height)
        img[d < 1.08] = (20, 18, 24)
        img[d < 1.0] = (214, 64, 48)
        frames.append(img)
    return frames[0], frames[1]


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return float("inf") if mse == 0 else float(10.0 * np.log10(255.0**2 / mse))


def bench_cpu(steps_list: list[int], repeats: int, threads: int | None, cache_dir: str | None) -> None:
    """Parity-tiny interpolation time on the CPU for each step count."""
    import torch

    from tooncrafter_model.toon import ToonBackend

    backend = ToonBackend(config="parity_tiny", random_weights_seed=0, threads=threads, cache_dir=cache_dir)
    a, b = cartoon_pair(64, 64)
    times = [0.25, 0.5, 0.75]
    backend.interpolate(a, b, times, params={"steps": 2})  # warm-up: allocator, first-call dispatch
    for steps in steps_list:
        runs = []
        for _ in range(repeats):
            start = time.perf_counter()
            backend.interpolate(a, b, times, seed=1, params={"steps": steps})
            runs.append(time.perf_counter() - start)
        emit({
            "bench": "toon_tiny_cpu", "config": "parity_tiny T=8 64x64", "steps": steps,
            "seconds_min": round(min(runs), 4), "seconds_median": round(statistics.median(runs), 4),
            "seconds": [round(r, 4) for r in runs],
            "threads": torch.get_num_threads(), "load_avg_1m": round(os.getloadavg()[0], 2),
            "weights": "seeded random (noise)",
        })


def run_full(dtype: str, steps: int, cache_dir: str | None, times: list[float]) -> tuple[np.ndarray, dict[str, Any]]:
    """One official-size interpolation on CUDA after a 2-step warm-up: the frames and their JSON record."""
    import torch

    from tooncrafter_model.toon import ToonBackend

    a, b = cartoon_pair(320, 512)
    start = time.perf_counter()
    backend = ToonBackend(random_weights_seed=0, device="cuda", dtype=dtype, offload=True, cache_dir=cache_dir)
    build_s = time.perf_counter() - start
    sampling_peak: list[int] = []

    def on_step(event: dict[str, Any]) -> None:
        if event["step"] == event["total"] - 1:  # everything but the decode has run
            sampling_peak.append(torch.cuda.max_memory_allocated())

    try:
        backend.interpolate(a, b, [0.5], params={"steps": 2})  # warm-up: cuDNN plans, allocator
        torch.cuda.synchronize()
        start = time.perf_counter()
        out = backend.interpolate(a, b, times, seed=123, params={"steps": steps}, on_step=on_step)
        torch.cuda.synchronize()
        seconds = time.perf_counter() - start
    finally:
        del backend
        gc.collect()
        torch.cuda.empty_cache()
    peak = int(str(out.meta["peak_vram_bytes"]))
    return np.stack(list(out)), {
        "bench": "toon_full_gpu", "config": "official_512 T=16 320x512", "dtype": dtype, "steps": steps,
        "seconds": round(seconds, 2), "peak_vram_gb": round(peak / 1e9, 2),
        "peak_vram_until_last_step_gb": round(sampling_peak[-1] / 1e9, 2) if sampling_peak else None,
        "build_s": round(build_s, 1), "offload_towers": True, "device": torch.cuda.get_device_name(),
        "torch": torch.__version__, "weights": "seeded random: timing and memory only, the frames are noise",
    }


def bench_gpu(steps: int, cache_dir: str | None) -> None:
    """Official-size interpolation on CUDA in fp32 and fp16: seconds, peak VRAM, fp16-vs-fp32 PSNR."""
    import torch

    if not torch.cuda.is_available():
        emit({"bench": "toon_full_gpu", "skipped": "torch sees no CUDA device"})
        return
    times = [i / 15 for i in range(1, 15)]  # every interior frame of the 16
    outputs: dict[str, np.ndarray] = {}
    peaks: dict[str, float] = {}
    for dtype in ("fp32", "fp16"):
        try:
            outputs[dtype], record = run_full(dtype, steps, cache_dir, times)
        except (RuntimeError, ValueError) as exc:  # out of memory, or non-finite fp16 values
            emit({"bench": "toon_full_gpu", "dtype": dtype, "error": str(exc).splitlines()[0][:300]})
            continue
        peaks[dtype] = record["peak_vram_gb"]
        emit(record)
    if len(outputs) == 2:
        db = psnr(outputs["fp16"], outputs["fp32"])
        emit({"bench": "toon_fp16_vs_fp32", "psnr_db": round(db, 2), "target_db": TARGET_PSNR_DB,
              "meets_target": db >= TARGET_PSNR_DB, "frames": len(times), "weights": "seeded random"})
    if "fp16" in peaks:
        emit({"bench": "toon_fp16_vram", "peak_vram_gb": peaks["fp16"], "target_gb": TARGET_VRAM_GB,
              "meets_target": peaks["fp16"] <= TARGET_VRAM_GB})


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", choices=("cpu", "cuda"), default="cpu", help="cuda adds the full-size GPU lines")
    p.add_argument("--steps", type=int, default=50, help="DDIM steps of the full-size GPU runs")
    p.add_argument("--repeats", type=int, default=3, help="timed runs per CPU case")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    p.add_argument("--cache-dir", default=None, help="model cache holding the tokenizer vocabulary")
    args = p.parse_args(argv)
    bench_cpu([4, 50], args.repeats, args.threads, args.cache_dir)
    if args.device == "cuda":
        bench_gpu(args.steps, args.cache_dir)
    else:
        emit({"bench": "toon_full_gpu", "skipped": "run with --device cuda for the full-size GPU lines"})


if __name__ == "__main__":
    main()
