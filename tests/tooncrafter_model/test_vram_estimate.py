"""bench/tooncrafter.py's VRAM estimate (the real pipeline on fake tensors) at a reduced config: it counts the
resident weights exactly, sees half precision halve them, and sees the decoder's frame slices lower the peak."""

from __future__ import annotations

import importlib.util
from dataclasses import replace
from pathlib import Path
from types import ModuleType

import pytest
import torch

from tooncrafter_model.config import ToonCrafterConfig, VAEConfig
from tooncrafter_model.pipeline import TOWERS, build_model

BENCH = Path(__file__).resolve().parents[2] / "bench" / "tooncrafter.py"


@pytest.fixture(scope="module")
def bench() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_tooncrafter", BENCH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
def test_estimate_counts_weights_and_activations(bench: ModuleType) -> None:
    # the tiny UNet and towers with the official VAE: its float32 norm transients in half precision are what
    # the decoder's frame slices bound at full size
    cfg = replace(ToonCrafterConfig.parity_tiny(image_hw=(128, 128)), vae=VAEConfig())
    model = build_model(cfg, device="meta")
    sizes = {name: sum(t.numel() * 4 for t in (*net.parameters(), *net.buffers())) for name, net in
             model.named_children()}
    towers = sum(sizes[name] for name in TOWERS)
    resident = sum(sizes.values()) - towers
    full = bench.estimate_vram("fp32", config=cfg)
    assert full["weights_bytes"] == resident
    assert full["peak_bytes"] > resident  # activations on top of the weights
    assert full["peak_in"].startswith("first_stage_model/") and full["tflop_per_step"] > 0
    assert set(full["phase_peaks_gb"]) == {"encode", "sampling", "decode"}
    sliced = bench.estimate_vram("fp16", offload=False, config=cfg, decode_frames=1)
    assert sliced["weights_bytes"] == (resident + towers) // 2
    whole = bench.estimate_vram("fp16", offload=False, config=cfg, decode_frames=None)
    assert whole["peak_bytes"] > sliced["peak_bytes"]
    assert not torch.is_autocast_enabled("cpu")  # nothing leaks out of the fake run
