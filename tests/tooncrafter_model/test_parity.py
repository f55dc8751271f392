"""Replays the reference implementation's golden tensors (parity harness, T=8 64x64, 4 DDIM steps) against our
Adapter, stage by stage, with the harness's tolerances; and runs the harness itself when /work/shared exists."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

from tooncrafter_model.config import CLIP_ARCHS
from tooncrafter_model.parity import Adapter, infer_clip

REPO = Path(__file__).resolve().parents[2]
SHARED_PARITY = REPO.parent / "shared" / "tooncrafter" / "parity"

# (max_abs, max_rel) per stage prefix, as in the harness's compare.py; a tensor passes if either holds
TOLERANCES = {
    "schedule": (1e-6, 1e-6), "ddim": (1e-6, 1e-6), "text": (1e-4, 1e-4), "image_embed": (1e-4, 1e-4),
    "image_proj": (1e-4, 1e-4), "vae_encode": (1e-4, 1e-4), "vae_decode": (1e-4, 1e-4), "unet": (1e-4, 1e-4),
    "interpolate": (1e-3, 1e-3), "z": (1e-5, 1e-5), "ref_context": (1e-4, 1e-4), "context": (1e-4, 1e-4),
    "c_concat": (1e-5, 1e-5),
}  # fmt: skip


def tolerance(name: str) -> tuple[float, float]:
    return next((tol for prefix, tol in TOLERANCES.items() if name.startswith(prefix)), (1e-4, 1e-4))


def leaves(prefix: str, x: object) -> Iterator[tuple[str, torch.Tensor]]:
    if isinstance(x, torch.Tensor):
        yield prefix, x
    elif isinstance(x, dict):
        for k, v in x.items():
            yield from leaves(f"{prefix}.{k}" if prefix else str(k), v)
    elif isinstance(x, (list, tuple)):
        for i, v in enumerate(x):
            yield from leaves(f"{prefix}[{i}]", v)


def run_stages(ad: Adapter, inp: dict, steps: int) -> dict:
    """Every stage, fed exactly as the harness feeds the reference (golden.py's order and wiring)."""
    out: dict = {
        "schedule": ad.schedule(),
        "ddim_trailing": ad.ddim(steps, 1.0, "uniform_trailing"),
        "ddim_trailing50": ad.ddim(50, 1.0, "uniform_trailing"),
        "ddim_uniform50_eta0": ad.ddim(50, 0.0, "uniform"),
    }
    text = out["text"] = ad.text(inp["prompts"] + [""])
    videos = inp["videos"]
    t = videos.shape[2]
    first = videos[:, :, 0]
    out["image_embed"] = ad.image_embed(first)
    out["image_embed_other"] = ad.image_embed(inp["img_other"])
    proj = out["image_proj"] = ad.image_proj(out["image_embed"])
    proj0 = out["image_proj_uncond"] = ad.image_proj(ad.image_embed(torch.zeros_like(first)))
    mean, logvar, hidden = ad.vae_encode(videos[0].permute(1, 0, 2, 3).contiguous())
    out["vae_encode"] = {"mean": mean, "logvar": logvar}
    z = (0.18215 * (mean + torch.exp(0.5 * logvar) * inp["noise_vae"])).permute(1, 0, 2, 3)[None]
    refs = [torch.stack([h[0], h[-1]], 1)[None] for h in hidden]
    out["z"], out["ref_context"] = z, refs
    out["vae_decode"] = ad.vae_decode(z, refs)
    out["vae_decode_short"] = ad.vae_decode(z[:, :, [i for i in range(t) if i not in (1, t - 2)]], refs)
    c_concat = torch.zeros_like(z)
    c_concat[:, :, 0], c_concat[:, :, -1] = z[:, :, 0], z[:, :, -1]
    ctx, ctx_u = torch.cat([text[:1], proj], 1), torch.cat([text[1:2], proj0], 1)
    out["context"], out["context_uncond"], out["c_concat"] = ctx, ctx_u, c_concat
    unet = {}
    for step in inp["unet_t"].tolist():
        unet[f"cond_t{step}"] = ad.unet(inp["unet_x"], torch.tensor([step]), c_concat, ctx, inp["fs"])
        unet[f"uncond_t{step}"] = ad.unet(inp["unet_x"], torch.tensor([step]), c_concat, ctx_u, inp["fs"])
    unet["cond_t517_fsNone"] = ad.unet(inp["unet_x"], torch.tensor([517]), c_concat, ctx, None)
    out["unet"] = unet
    noises = {"vae": inp["noise_vae"], "x_T": inp["x_T"], "steps": inp["noise_steps"]}
    out["interpolate"] = ad.interpolate(videos, inp["prompts"], steps, 1.0, 7.5, 0.7, 10, noises)
    return out


def test_seeded_weights_match_the_golden_digest(golden_t8: dict, seeded_weights, weights_digest) -> None:
    shapes, seed = golden_t8["param_shapes"], golden_t8["seed"]
    assert weights_digest(seeded_weights(shapes, seed)) == golden_t8["param_digest"]
    assert weights_digest(seeded_weights(shapes, seed + 1)) != golden_t8["param_digest"]


def test_every_stage_matches_the_reference(golden_t8: dict, seeded_weights) -> None:
    sd = seeded_weights(golden_t8["param_shapes"], golden_t8["seed"])
    ad = Adapter(golden_t8["cfg"], sd)
    assert ad.state_dict_keys() == {k: tuple(v) for k, v in golden_t8["state_dict_keys"].items()}
    got = dict(leaves("", run_stages(ad, golden_t8["inputs"], golden_t8["steps"])))
    expected = dict(leaves("", golden_t8["outputs"]))
    assert set(got) == set(expected)
    failures = []
    for name, ref in expected.items():
        diff = (got[name].double() - ref.double()).abs().max().item()
        rel = diff / max(ref.double().abs().max().item(), 1e-12)
        tol_abs, tol_rel = tolerance(name)
        if got[name].shape != ref.shape or not (diff <= tol_abs or rel <= tol_rel):
            failures.append(f"{name}: abs {diff:.3e} rel {rel:.3e}")
    assert not failures, failures


def test_a_wrong_weight_is_caught(golden_t8: dict, seeded_weights) -> None:
    """The replay is sensitive: one perturbed decoder tensor moves the decode far past tolerance."""
    sd = seeded_weights(golden_t8["param_shapes"], golden_t8["seed"])
    key = "first_stage_model.decoder.conv_out.time_mix_conv.bias"
    sd[key] = sd[key] + 0.01
    ad = Adapter(golden_t8["cfg"], sd)
    out = golden_t8["outputs"]
    got = ad.vae_decode(out["z"], out["ref_context"])
    assert (got - out["vae_decode"]).abs().max().item() > 1e-3


def _compare(golden: str) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, str(SHARED_PARITY / "compare.py"), "--golden", str(SHARED_PARITY / "golden" / golden),
           "--adapter", "tooncrafter_model.parity:Adapter", "--threads", "1"]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=900)


@pytest.mark.skipif(not SHARED_PARITY.is_dir(), reason="the shared parity harness is not on this machine")
def test_harness_passes_t8() -> None:
    run = _compare("tc_golden_T8_64x64_s4.pt")
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-2000:]
    assert run.stdout.strip().endswith("PARITY PASS")


@pytest.mark.slow
@pytest.mark.skipif(not SHARED_PARITY.is_dir(), reason="the shared parity harness is not on this machine")
def test_harness_passes_t16_non_square() -> None:
    run = _compare("tc_golden_T16_64x128_s2.pt")
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-2000:]
    assert run.stdout.strip().endswith("PARITY PASS")


def test_an_unknown_openclip_arch_is_sized_from_the_weights(golden_t8: dict) -> None:
    cfg = {**golden_t8["cfg"], "params": {**golden_t8["cfg"]["params"]}}
    cfg["params"]["cond_stage_config"] = {"params": {"arch": "tc-other"}}
    shapes = {k: torch.empty(v, device="meta") for k, v in golden_t8["param_shapes"].items()}
    clip = infer_clip(cfg, shapes)
    assert (clip.arch, clip.embed_dim) == ("tc-other", 32)
    assert (clip.text.width, clip.text.layers, clip.text.context_length, clip.text.vocab_size) == (32, 3, 77, 49408)
    assert (clip.vision.width, clip.vision.layers, clip.vision.patch_size, clip.vision.image_size) == (64, 2, 32, 224)
    assert infer_clip(golden_t8["cfg"], shapes) == CLIP_ARCHS["tc-tiny"]
