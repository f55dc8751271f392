"""ToonCrafter backend speed, VRAM and fp16 fidelity, printed as JSON lines.

    .venv/bin/python bench/tooncrafter.py                    # this CPU: tiny config, precision, VRAM estimate
    python bench/tooncrafter.py --device cuda --cache-dir DIR   # + measured full size 16x320x512 on the GPU

CPU lines: one parity-tiny interpolation (T=8, 64x64, seeded random weights) with 4 and with 50 DDIM steps,
the minimum and median over `--repeats` after a warm-up, with the thread count and the load average beside
it (on a shared machine the minimum is the figure to quote). Then the same 50-step interpolation in fp16 and
bf16 against fp32 (PSNR): a small-width proxy for the full-size fp16 line.

Estimate lines (no GPU needed, about 15 s each): the official config at full size, fp32 and fp16, run through
the real pipeline on FAKE tensors (shapes and dtypes only), with CUDA's autocast policy, counting the bytes
alive after every op: peak, where it happens, the largest tensors then, and the FLOPs per DDIM step and per
50-step interpolation. It is what torch.cuda.max_memory_allocated would show less the allocator's rounding
and cuDNN's workspaces; the GPU lines measure the real thing.

GPU lines (only with `--device cuda` and a CUDA device; otherwise one line says why they were skipped): the
official config (T=16, 320x512, 2.6 B parameters) with SEEDED RANDOM WEIGHTS, which time and size exactly like
the checkpoint but make noise, so the frames mean nothing. For fp32 and for fp16 (weights cast, autocast): seconds
per 50-step interpolation (after a 2-step warm-up), peak VRAM (torch.cuda.max_memory_allocated) over the whole
interpolation and up to the last DDIM step (the rest is the VAE decode), then the PSNR of the fp16 frames
against the fp32 frames for the same seed and noise. Targets: PSNR >= 40 dB, fp16 peak <= 12 GB (the
reference needs about 27 GB).

Memory measures in the backend: the text and image towers wait on the CPU and visit the GPU only while
they encode (`offload`, 1.04 B parameters); fp16 weights (half the UNet's 5.8 GB); SDPA everywhere (fused
kernels, so attention needs no manual chunking: the largest, the decoder's fusion attention, has 10,240
queries over 20,480 keys per frame). The decode's peak is set by the decoder's full-resolution levels, where
float32 GroupNorm outputs of 16 frames at 320x512 are 1.3-2.7 GB each: their per-frame layers take
`decode_frames` (4) frames at a time, the temporal blocks' norms make one contiguous float32 copy, not two, and
SiLU, swish and the mix run in place (the estimate went from 12.7 to 8.7 GB in fp16). The decoder's frame
CHUNK is not a memory knob: each decoder call adds keyframe A's features to its first frame and B's to its
last, so chunks shorter than the clip change the frames (tests/tooncrafter_model/test_toon_backend.py shows
it); it stays at T.

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
    """Flat-colour keyframes with one inked disc that moves a tenth of the width."""
    from rife import bench_pair  # bench/rife.py, beside this script

    return bench_pair(width, height, discs=((0.35, 0.5, 0.15),), move=0.2)


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


def bench_cpu_precision(steps: int, threads: int | None, cache_dir: str | None) -> None:
    """fp16 and bf16 against fp32 at the reduced config on this CPU: PSNR of all interior frames, same noise.

    A proxy until a GPU run gives the full-size figure: seeded random weights, 32-channel widths.
    """
    from tooncrafter_model.toon import ToonBackend

    a, b = cartoon_pair(64, 64)
    times = [i / 7 for i in range(1, 7)]  # the six interior frames of T=8
    frames: dict[str, np.ndarray] = {}
    for dtype in ("fp32", "fp16", "bf16"):
        backend = ToonBackend(config="parity_tiny", random_weights_seed=0, dtype=dtype, threads=threads,
                              cache_dir=cache_dir)
        start = time.perf_counter()
        frames[dtype] = np.stack(list(backend.interpolate(a, b, times, seed=1, params={"steps": steps})))
        seconds = time.perf_counter() - start
        if dtype != "fp32":
            db = psnr(frames[dtype], frames["fp32"])
            emit({"bench": "toon_tiny_cpu_precision", "dtype": dtype, "steps": steps, "psnr_vs_fp32_db": round(db, 2),
                  "target_db": TARGET_PSNR_DB, "seconds": round(seconds, 1), "config": "parity_tiny T=8 64x64",
                  "weights": "seeded random: a proxy for the full-size GPU line"})


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


# ---------------------------------------------------------------------------------------------------
# Full-size VRAM estimate without a GPU: the real code path on fake tensors, counting the bytes alive
# ---------------------------------------------------------------------------------------------------


def estimate_vram(
    dtype: str, offload: bool = True, steps: int = 2, config: Any = None, decode_frames: int | None = 4
) -> dict[str, Any]:
    """Peak bytes alive during one interpolation (official size by default), run on fake tensors (no GPU, no memory).

    FakeTensorMode runs every op of the pipeline's code path for shapes and dtypes only. A dispatch mode adds
    the bytes of each storage an op creates and a finalizer takes them off when it dies, which is what
    torch.cuda.max_memory_allocated counts, less the allocator's 512-byte rounding, cuDNN workspaces and the
    CUDA context. The fake device is the CPU (a CPU-only torch cannot index fake CUDA tensors), so CUDA's
    autocast lists are applied by hand: matmuls, convs and attention in half precision; norms, softmax, exp and
    pow in float32 (CPU autocast would keep norms in half and understate the decoder). SDPA then takes the fused
    CPU kernel, which like an H100's flash and memory-efficient kernels never materializes the attention matrix.
    Offloaded towers count only while they encode, as in the backend.
    """
    import weakref
    from collections.abc import Iterator
    from contextlib import contextmanager

    import torch
    import torch.nn.functional as F
    from torch import nn
    from torch._subclasses.fake_tensor import FakeTensor, FakeTensorMode
    from torch.overrides import TorchFunctionMode
    from torch.utils._python_dispatch import TorchDispatchMode, _disable_current_modes
    from torch.utils._pytree import tree_flatten, tree_map
    from torch.utils.flop_counter import FlopCounterMode, sdpa_flop_count

    from tooncrafter_model.config import ToonCrafterConfig
    from tooncrafter_model.ddim import schedule_arrays
    from tooncrafter_model.pipeline import TOWERS, SamplingNoise, ToonCrafterPipeline, build_model
    from tooncrafter_model.toon import DTYPES

    class LiveBytes(TorchDispatchMode):
        """Fake bytes alive now and at most; the module running at the peak and the largest tensors then."""

        def __init__(self) -> None:
            super().__init__()
            self.live = self.peak = 0
            self.tracked: dict[int, int] = {}
            self.where = ["-"]
            self.peak_where, self.peak_largest = "-", list[int]()
            self.phases: dict[str, tuple[int, str, list[int]]] = {}

        def add(self, n: int) -> None:
            self.live += n
            if self.live > self.peak:
                self.peak, self.peak_where = self.live, self.where[-1]
                self.peak_largest = sorted(self.tracked.values(), reverse=True)[:4]

        def close(self, phase: str) -> None:
            """Record the peak since the last phase ended, and start the next phase from the bytes alive now."""
            self.phases[phase] = (self.peak, self.peak_where, self.peak_largest)
            self.peak, self.peak_where, self.peak_largest = self.live, self.where[-1], []

        def track(self, t: object) -> None:
            if not isinstance(t, FakeTensor):
                return
            storage = t.untyped_storage()
            key, n = id(storage), storage.nbytes()
            if key not in self.tracked:
                self.tracked[key] = n
                self.add(n)
                weakref.finalize(storage, self._free, key, n)

        def _free(self, key: int, n: int) -> None:
            self.tracked.pop(key, None)
            self.live -= n

        def __torch_dispatch__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
            tensors = [t for t in tree_flatten((args, kwargs))[0] if isinstance(t, torch.Tensor)]
            if tensors and not any(isinstance(t, FakeTensor) for t in tensors):
                with _disable_current_modes():  # the sampler's scalar tables stay real: int(t), float(sigma)
                    return func(*args, **(kwargs or {}))
            out = func(*args, **(kwargs or {}))
            for t in tree_flatten(out)[0]:
                self.track(t)
            return out

    half_ops = {torch.conv1d, torch.conv2d, torch.conv3d, F.linear, torch.matmul, torch.Tensor.matmul,
                torch.Tensor.__matmul__, torch.mm, torch.bmm, torch.baddbmm, torch.addmm,
                F.scaled_dot_product_attention}
    float_ops = {F.group_norm, F.layer_norm, torch.softmax, torch.Tensor.softmax, F.softmax, torch.exp,
                 torch.Tensor.exp, torch.pow, torch.Tensor.pow, torch.Tensor.__pow__, torch.rsqrt, torch.sum,
                 torch.Tensor.sum, torch.norm, torch.Tensor.norm, F.normalize, torch.cumsum}

    class CudaAutocast(TorchFunctionMode):
        def __torch_function__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
            to = DTYPES[dtype] if func in half_ops else torch.float32 if func in float_ops else None
            if to is not None:
                cast = lambda t: t.to(to) if isinstance(t, torch.Tensor) and t.is_floating_point() else t  # noqa: E731
                args, kwargs = tree_map(cast, args), tree_map(cast, kwargs or {})
            return func(*args, **(kwargs or {}))

    cfg = config or ToonCrafterConfig.official_512()
    weights = DTYPES[dtype]
    model = build_model(cfg, device="meta")
    for name, value in schedule_arrays(cfg.sampler).items():  # the sampler reads the real schedule
        setattr(model, name, value)
    no_vocab = lambda prompts: torch.zeros(len(prompts), 77, dtype=torch.long)  # noqa: E731  (ids don't size)
    pipe = ToonCrafterPipeline(model, no_vocab, decode_frames=decode_frames)
    s = pipe.settings(steps=steps)
    noise = SamplingNoise.draw(torch.Generator().manual_seed(0), cfg.frames, cfg.latent_size, steps)

    def sdpa_flops(q: Any, k: Any, v: Any, *_: Any, out_shape: Any = None, **__: Any) -> int:
        return int(sdpa_flop_count(q, k, v))  # the fused CPU kernel is not in torch's table

    fused_cpu_sdpa = {torch.ops.aten._scaled_dot_product_flash_attention_for_cpu: sdpa_flops}
    tally, flops = LiveBytes(), FlopCounterMode(display=False, custom_mapping=fused_cpu_sdpa)

    with FakeTensorMode(allow_non_fake_inputs=True):
        for top, net in model.named_children():
            for module in net.modules():
                for key, p in list(module._parameters.items()):
                    if p is not None:
                        fake = torch.empty(p.shape, dtype=weights if p.is_floating_point() else p.dtype)
                        module._parameters[key] = nn.Parameter(fake, requires_grad=False)
                for key, b in list(module._buffers.items()):
                    if b is not None:
                        module._buffers[key] = torch.empty(b.shape, dtype=b.dtype)
                label = f"{top}/{type(module).__name__}"
                module.register_forward_pre_hook(lambda *_, n=label: tally.where.append(n))
                module.register_forward_hook(lambda *_: tally.where.pop() and None)
        net_bytes = {top: sum(t.nbytes for t in (*net.parameters(), *net.buffers())) for top, net in
                     model.named_children()}
        tower_bytes = sum(net_bytes[t] for t in TOWERS)
        resident = sum(net_bytes.values()) - (tower_bytes if offload else 0)

        @contextmanager
        def towers_visit() -> Iterator[None]:
            tally.add(tower_bytes)
            try:
                yield
            finally:
                tally.live -= tower_bytes

        denoise = pipe.denoise

        def denoise_phase(*args: Any, **kwargs: Any) -> Any:
            tally.close("encode")
            out = denoise(*args, **kwargs)
            tally.close("sampling")
            return out

        step_flops: list[int] = []
        if offload:
            pipe._towers_on_device = towers_visit  # type: ignore[method-assign]
        pipe.denoise = denoise_phase  # type: ignore[method-assign]
        for t in (*model.parameters(), *model.buffers()):  # counted by network above, not again as op views
            tally.tracked[id(t.untyped_storage())] = 0
        with tally, flops, CudaAutocast():
            tally.add(resident)
            video = torch.empty(1, 3, cfg.frames, *cfg.image_size)
            pipe.generate(video, "", s, noise, lambda _: step_flops.append(flops.get_total_flops()))
            tally.close("decode")
    gb = lambda n: round(n / 1e9, 2)  # noqa: E731
    per_step = step_flops[-1] - step_flops[-2]  # one batched-CFG UNet call and its DDIM update
    rest = flops.get_total_flops() - steps * per_step  # encoders and both decodes
    top_phase = max(tally.phases, key=lambda name: tally.phases[name][0])
    peak, where, largest = tally.phases[top_phase]
    return {
        "bench": "toon_full_vram_estimate", "config": f"T={cfg.frames} {cfg.image_size[0]}x{cfg.image_size[1]}",
        "dtype": dtype, "offload_towers": offload, "decode_frames": pipe.decode_frames,
        "weights_gb": gb(resident), "peak_gb": gb(peak),
        "phase_peaks_gb": {name: gb(value[0]) for name, value in tally.phases.items()},
        "peak_in": where, "largest_at_peak_gb": [gb(n) for n in largest], "peak_bytes": peak,
        "weights_bytes": resident, "tflop_per_step": round(per_step / 1e12, 2),
        "tflop_encode_decode": round(rest / 1e12, 2), "tflop_50_steps": round((rest + 50 * per_step) / 1e12, 1),
        "estimate": "fake tensors: bytes alive per op; no allocator rounding, workspaces or CUDA context",
    }


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", choices=("cpu", "cuda"), default="cpu", help="cuda adds the full-size GPU lines")
    p.add_argument("--steps", type=int, default=50, help="DDIM steps of the full-size GPU runs")
    p.add_argument("--repeats", type=int, default=3, help="timed runs per CPU case")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    p.add_argument("--cache-dir", default=None, help="model cache holding the tokenizer vocabulary")
    p.add_argument("--no-estimate", action="store_true", help="skip the full-size VRAM estimate on fake tensors")
    args = p.parse_args(argv)
    bench_cpu([4, 50], args.repeats, args.threads, args.cache_dir)
    bench_cpu_precision(50, args.threads, args.cache_dir)
    if not args.no_estimate:
        for dtype in ("fp32", "fp16"):
            emit(estimate_vram(dtype))
    if args.device == "cuda":
        bench_gpu(args.steps, args.cache_dir)
    else:
        emit({"bench": "toon_full_gpu", "skipped": "run with --device cuda for the full-size GPU lines"})


if __name__ == "__main__":
    main()
